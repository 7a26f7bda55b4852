"""The "human" Python API: tests and the demo play the engineer's side of the site.

People act without the REST API's screens: an admin may jump a status, anyone may edit a field
or comment. These calls take the lock and write as a named user, so the sync sees a remote
change it did not make.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from poam_sync.simulators.jira.model import RESOLUTIONS, STATUSES, JsonDict
from poam_sync.simulators.jira.workflow import JiraWorkflow


class JiraHuman(JiraWorkflow):
    """What an engineer does by hand, for tests and the demo."""

    def issue(self, key: str) -> JsonDict:
        """The issue as ``GET /rest/api/2/issue/{key}?expand=changelog`` shows it."""
        with self.lock:
            return self.render_issue(self._find(key), "http://sim", expand="changelog")

    def human_transition(
        self,
        key: str,
        status_name: str,
        *,
        user_email: str = "alice@example.com",
        resolution: str = "Done",
    ) -> None:
        """Move an issue to a status as a person would (admins may jump; no screen checks)."""
        sid = self._status_id(status_name)
        with self.lock:
            issue = self._find(key)
            changes: dict[str, Any] = {"status": sid}
            if STATUSES[sid][1] == "done":
                rid = next(r for r, n in RESOLUTIONS.items() if n == resolution)
                changes["resolution"] = rid
            else:
                changes["resolution"] = None
            self._write(issue, self.user_by_email(user_email), changes)

    def human_assign(
        self, key: str, email: str | None, *, user_email: str = "alice@example.com"
    ) -> None:
        with self.lock:
            issue = self._find(key)
            target = self.user_by_email(email).account_id if email else None
            self._write(issue, self.user_by_email(user_email), {"assignee": target})

    def human_set_due_date(
        self, key: str, due: date | None, *, user_email: str = "alice@example.com"
    ) -> None:
        with self.lock:
            issue = self._find(key)
            value = due.isoformat() if due else None
            self._write(issue, self.user_by_email(user_email), {"duedate": value})

    def human_comment(self, key: str, body: str, *, user_email: str = "alice@example.com") -> str:
        """Add a comment; returns its id."""
        with self.lock:
            issue = self._find(key)
            return str(self._add_comment(issue, self.user_by_email(user_email), body)["id"])

    def human_edit(
        self, key: str, field_id: str, value: Any, *, user_email: str = "alice@example.com"
    ) -> None:
        """Set a field by id to a v2 request value (``"summary"``, ``{"name": "High"}``...)."""
        with self.lock:
            issue = self._find(key)
            stored = self._parse_value(field_id, value, v3=False)
            self._write(issue, self.user_by_email(user_email), {field_id: stored})

    def delete_issue(self, key: str) -> None:
        with self.lock:
            self._delete(self._find(key))
