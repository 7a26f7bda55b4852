"""People on Jira: canonical owners are e-mails, Jira names people by ``accountId`` or ``name``.

Cloud names a person by ``accountId`` and may hide their e-mail; Data Center by ``name``
(username), e-mails visible. An e-mail is looked up in the mapping's ``users:`` directory first,
then through ``/user/search``; answers (including "nobody") are cached for the connector's life,
so a cycle asks Jira about each owner at most once.

Reading an assignee, an e-mail the API hides and ``users:`` does not list is *unknown*, never
a stand-in owner: the reader reports it and keeps the canonical owner. A Data Center site may
also *mask* e-mails (``jira.option.emailvisible``: ``bob at example dot com``): that text is
not an e-mail and is never taken for one; the person is matched by username under ``users:``
or reported as unknown, the same as a hidden e-mail.
"""

from __future__ import annotations

import re

from poam_sync.connectors.base import FieldProblem
from poam_sync.connectors.jira.client import JiraClient, JiraJson
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.connectors.jira.site import JiraSite

__all__ = ["JiraDirectory", "shown_email"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def shown_email(user: JiraJson) -> str | None:
    """The e-mail the API shows for ``user``, lower case; None when it hides it or shows it
    masked (``bob at example dot com`` is not an e-mail)."""
    shown = str(user.get("emailAddress") or "").strip()
    return shown.lower() if _EMAIL.match(shown) else None


class JiraDirectory:
    """E-mail <-> Jira user, through the mapping's directory and ``/user/search``."""

    def __init__(self, client: JiraClient, site: JiraSite, mapping: JiraMapping) -> None:
        self.client = client
        self.site = site
        self.mapping = mapping
        self._users: dict[str, str | None] = {}  # e-mail -> Jira id (None: nobody)

    def user_id(self, email: str) -> str | None:
        """The Jira id (accountId / username) for ``email``, or None when nobody matches."""
        low = email.lower()
        if low in self._users:
            return self._users[low]
        entry = self.mapping.user(email)
        cloud = self.site.meta.cloud
        found: str | None = None
        if entry is not None:
            found = entry.account_id if cloud else entry.username
        if found is None:
            # raw: JIRA.search_users adds includeActive/includeInactive and builds resources
            param = {"query": email} if cloud else {"username": email}
            users = self.client.call("user search", lambda: self.client.get("user/search", param))
            for user in users:
                if shown_email(user) == low:
                    found = user.get("accountId") if cloud else user.get("name")
                    break
        self._users[low] = found
        return found

    def known_email(self, user: JiraJson) -> str | None:
        """A Jira user's e-mail: as the API shows it, else from ``users:`` by accountId /
        username; None when neither names it (Cloud hides e-mails by a user's choice, Data
        Center by ``jira.option.emailvisible``)."""
        if (email := shown_email(user)) is not None:
            return email
        ident = user.get("accountId") or user.get("name")
        entry = self.mapping.user_by_id(str(ident)) if ident else None
        return entry.email.lower() if entry is not None else None

    def email_of(self, user: JiraJson | None) -> str | None:
        """Who a Jira user is for the change log and note authors: their e-mail, or a stable
        stand-in. Never used for the owner field, whose unknown users are reported instead
        (:meth:`known_email`)."""
        if not user:
            return None
        return self.known_email(user) or f"jira-user:{user.get('accountId') or user.get('name')}"

    def unknown_user(self, user: JiraJson) -> FieldProblem:
        """The ``unknown_user`` problem for an assignee whose e-mail nobody can tell us."""
        cloud = self.site.meta.cloud
        ident = str(user.get("accountId") if cloud else user.get("name"))
        who = f"{user.get('displayName') or ident} ({'accountId' if cloud else 'username'} {ident})"
        key = "account_id" if cloud else "username"
        shows = "shows its e-mail masked" if user.get("emailAddress") else "shows no e-mail"
        return FieldProblem(
            "owner",
            "unknown_user",
            f"the Jira assignee {who} {shows} and is not under users: in "
            "mappings/jira.yaml; the owner is left as it was",
            hint=f"add `{{email: <their e-mail>, {key}: {ident}}}` under users: in "
            "mappings/jira.yaml",
        )

    def user_ref(self, ident: str) -> JiraJson:
        """How an edit names the user ``ident`` on this deployment."""
        return {"accountId": ident} if self.site.meta.cloud else {"name": ident}
