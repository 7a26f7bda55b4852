"""Users: the owner's e-mail <-> the ``sys_user`` record ``assigned_to`` references.

The canonical record names owners by e-mail; ServiceNow references users by sys_id. Lookups go
to ``sys_user`` (active users, e-mail compared case-insensitively) and are cached both ways for
the connector's life: a sync cycle touches the same few owners again and again. An e-mail no
active user has is None here, and a field problem for the connector, never an invented user.
"""

from __future__ import annotations

from poam_sync.connectors.servicenow.client import TableClient


class UserDirectory:
    """E-mail -> sys_id and sys_id -> e-mail, through ``sys_user``, cached."""

    def __init__(self, client: TableClient) -> None:
        self._client = client
        self._user_ids: dict[str, str] = {}  # lower-case e-mail -> sys_id
        self._emails: dict[str, str] = {}  # sys_id -> lower-case e-mail ("" when it has none)

    def remember(self, sys_id: str, email: str) -> None:
        """What a read learnt for free (``assigned_to.email`` dot-walked)."""
        self._emails[sys_id] = email

    def user_id(self, email: str) -> str | None:
        """The sys_id of the active user with ``email``, or None."""
        wanted = email.strip().lower()
        if wanted in self._user_ids:
            return self._user_ids[wanted]
        if any(c in wanted for c in "^,\n") or "@" not in wanted:
            return None  # not an e-mail; "^" would even change the meaning of the query
        candidates = dict.fromkeys([email.strip(), wanted])
        for candidate in candidates:
            rows = self._client.page(
                "sys_user",
                ["sys_id", "email"],
                f"email={candidate}^active=true",
                after=None,
                size=2,
            )
            if rows:
                sys_id = rows[0]["sys_id"][0]
                self._user_ids[wanted] = sys_id
                self._emails[sys_id] = wanted
                return sys_id
        return None

    def email(self, sys_id: str) -> str | None:
        """The lower-case e-mail of user ``sys_id``, or None."""
        if not sys_id:
            return None
        if sys_id not in self._emails:
            rows = self._client.page(
                "sys_user", ["sys_id", "email"], f"sys_id={sys_id}", after=None, size=1
            )
            email = rows[0]["email"][0].strip().lower() if rows else ""
            self._emails[sys_id] = email
            if email:
                self._user_ids.setdefault(email, sys_id)
        return self._emails[sys_id] or None
