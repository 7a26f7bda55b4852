"""Users of the simulated site: lookups and their JSON, which differ between Cloud and DC.

Cloud names people by ``accountId`` (and may hide their e-mail); Data Center by ``name``
(username) and ``key``. Everything that turns a user into a request or response value is here.

E-mail visibility, as each deployment has it:

- Cloud: each person chooses (profile visibility; "Deprecation notice and migration guide for
  major changes to Jira Cloud REST APIs to improve user privacy",
  developer.atlassian.com/cloud/jira/platform/deprecation-notice-user-privacy-api-migration-guide/):
  a hidden e-mail is left out of ``emailAddress`` (carol, by default);
- Data Center: the site's "User email visibility" option (``jira.option.emailvisible``,
  "Configuring Jira application options", confluence.atlassian.com/adminjiraserver/): *show*;
  *hide*, where the REST API leaves ``emailAddress`` out (pycontribs/jira#170: "there is no
  emailAddress returned" on a server set to hide them); or *mask*, where it reads
  ``bob at example dot com``, which is not an e-mail and must not be taken for one. A hidden or
  masked e-mail finds nobody in ``user/search`` or JQL.

Everyone signs in with their own account: their e-mail (or, on Data Center, their username)
and the API token ``sim-token``.
"""

from __future__ import annotations

from typing import Any

from poam_sync.simulators.jira.model import JsonDict, SimUser
from poam_sync.simulators.jira.state import JiraState

EMAIL_VISIBILITY = ("show", "hide", "mask")


def masked(email: str) -> str:
    """``bob@example.com`` as a Data Center site that masks e-mails shows it."""
    return email.replace("@", " at ").replace(".", " dot ")


class JiraUsers(JiraState):
    """Finding users and showing them as Cloud or Data Center does."""

    def set_email_visibility(self, visibility: str) -> None:
        """Data Center's ``jira.option.emailvisible``: ``show``, ``hide`` or ``mask``."""
        if visibility not in EMAIL_VISIBILITY:
            raise ValueError(f"email visibility must be one of {EMAIL_VISIBILITY}")
        if self.cloud and visibility != "show":
            raise ValueError("Cloud has no site-wide e-mail visibility: each user chooses")
        with self.lock:
            self.email_visibility = visibility
            self._version += 1

    def email_shown(self, user: SimUser) -> str | None:
        """``emailAddress`` as the API shows ``user`` to someone else (None: left out)."""
        if self.cloud:
            return user.email if user.email_visible else None
        if self.email_visibility == "hide":
            return None
        return masked(user.email) if self.email_visibility == "mask" else user.email

    def email_searchable(self, user: SimUser) -> bool:
        """Whether ``user/search`` and JQL find ``user`` by e-mail."""
        return self.email_shown(user) == user.email

    def sign_in(self, login: str) -> SimUser | None:
        """The user signing in as ``login``: an e-mail, or a username on Data Center."""
        low = login.lower()
        return next(
            (
                u
                for u in self.users
                if u.email.lower() == low or (not self.cloud and u.name.lower() == low)
            ),
            None,
        )

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
        else:
            out = {
                "self": f"{base}/rest/api/2/user?username={user.name}",
                "name": user.name,
                "key": user.key,
            }
        if (shown := self.email_shown(user)) is not None:
            out["emailAddress"] = shown
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
