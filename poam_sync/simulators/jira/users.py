"""Users of the simulated site: lookups and their JSON, which differ between Cloud and DC.

Cloud names people by ``accountId`` (and may hide their e-mail); Data Center by ``name``
(username) and ``key``. Everything that turns a user into a request or response value is here.
"""

from __future__ import annotations

from typing import Any

from poam_sync.simulators.jira.model import JsonDict, SimUser
from poam_sync.simulators.jira.state import JiraState


class JiraUsers(JiraState):
    """Finding users and showing them as Cloud or Data Center does."""

    def user_by_email(self, email: str) -> SimUser:
        for user in self.users:
            if user.email.lower() == email.lower():
                return user
        raise KeyError(f"no simulated user with e-mail {email}")

    def _user_by_id(self, account_id: str | None) -> SimUser | None:
        return next((u for u in self.users if u.account_id == account_id), None)

    def _user_ref(self, ref: Any) -> SimUser | None:
        """A user from a request body: ``{"accountId"}`` on Cloud, ``{"name"}`` on DC."""
        if not isinstance(ref, dict):
            return None
        if self.cloud:
            return self._user_by_id(ref.get("accountId"))
        name = ref.get("name")
        return next((u for u in self.users if u.name == name), None)

    def user_json(self, user: SimUser, base: str) -> JsonDict:
        avatars = {s: f"{base}/avatar/{user.name}?s={s[:2]}" for s in ("48x48", "24x24")}
        avatars |= {"16x16": f"{base}/avatar/{user.name}?s=16", "32x32": f"{base}/avatar/x?s=32"}
        if self.cloud:
            out: JsonDict = {
                "self": f"{base}/rest/api/2/user?accountId={user.account_id}",
                "accountId": user.account_id,
                "accountType": "atlassian",
            }
            if user.email_visible:
                out["emailAddress"] = user.email
        else:
            out = {
                "self": f"{base}/rest/api/2/user?username={user.name}",
                "name": user.name,
                "key": user.key,
                "emailAddress": user.email,
            }
        out |= {
            "avatarUrls": avatars,
            "displayName": user.display_name,
            "active": True,
            "timeZone": user.time_zone,
        }
        return out

    def _user_string(self, user: SimUser | None) -> str | None:
        if user is None:
            return None
        return user.account_id if self.cloud else user.name
