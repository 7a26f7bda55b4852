"""The admin workbench: a web application where admins settle conflicts and the POA&M office
reviews its items (docs/workbench.md).

Modules: ``accounts`` (argon2 password hashes, what a role may do).
"""
