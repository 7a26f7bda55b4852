"""The admin workbench: a web application where admins settle conflicts and the POA&M office
reviews its items (docs/workbench.md).

Modules: ``app`` (:func:`create_app`, the settings, who is signed in, the sign-in pages),
``security`` (signed sessions, CSRF tokens, the sign-in rate limit, security headers, the
trusted proxy header), ``accounts`` (argon2 password hashes, what a role may do), ``queries``
(what each page shows, read from the store), ``pages`` (dashboard, items, an item, exports),
``settle`` (conflicts and problems), ``charts`` (the open-item trend as SVG).
"""

from poam_sync.web.app import WebSettings, create_app

__all__ = ["WebSettings", "create_app"]
