"""The fixed facts of the simulated instance: credentials, users, row types, the error shape.

Plain data with no behaviour, shared by every other module of the simulator.
"""

from __future__ import annotations

from typing import Any

ADMIN_USER = "admin"
ADMIN_PASSWORD = "sim-password"
OAUTH_CLIENT_ID = "poam-sync"
OAUTH_CLIENT_SECRET = "sim-secret"
ANALYST_USER = "dave.analyst"
#: a service account: a real user record with no e-mail (scanners and integrations assign
#: issues as such accounts; sys_user.email is an optional field)
SERVICE_ACCOUNT_USER = "svc.vuln_scanner"
#: a least-privilege integration user: no admin role, so the system tables and e-mails a
#: restricted instance hides are hidden from it (see ServiceNowHuman.restrict_non_admins)
INTEGRATION_USER = "poam_sync.integration"
TOKEN_LIFETIME_S = 1800
#: the tables a least-privilege user cannot read on a stock instance ("system tables are
#: admin-only by default"): journal entries, choices, the dictionary, audit rows, properties
ADMIN_ONLY_TABLES = (
    "sys_journal_field",
    "sys_choice",
    "sys_dictionary",
    "sys_audit",
    "sys_properties",
)

Row = dict[str, str]
Json = Any


DEFAULT_USERS = (
    # (user_name, name, email, time zone)
    (ADMIN_USER, "System Administrator", "admin@example.com", "America/Los_Angeles"),
    ("alice", "Alice Adams", "alice@example.com", "Europe/Berlin"),
    ("bob", "Bob Brown", "bob@example.com", "America/New_York"),
    ("carol", "Carol Clark", "carol@example.com", "Asia/Tokyo"),
    (ANALYST_USER, "Dave Davis (GRC analyst)", "dave@example.com", "America/Chicago"),
    # e-mail as a directory sync writes it: mixed case (found by any case, see query.py)
    ("erin", "Erin Evans", "Erin.Evans@Example.com", "Europe/London"),
    (SERVICE_ACCOUNT_USER, "Vulnerability Scanner (service account)", "", "UTC"),
    # no time zone of its own: the instance's applies (a profile's default)
    (INTEGRATION_USER, "poam-sync integration", "poam-sync@example.com", ""),
)


class SimError(Exception):
    """An error response in ServiceNow's shape."""

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Json]:
        return {"error": {"message": self.message, "detail": self.detail}, "status": "failure"}
