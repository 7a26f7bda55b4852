"""Workflows: status changes happen only through transitions, with their screens.

Some transitions need a resolution on their screen, some statuses are several hops away, and
an admin may block a status, remove a transition, add a validator or make a field required
(tests use these to provoke refusals).
"""

from __future__ import annotations

from typing import Any

from poam_sync.simulators.jira.adf import from_adf
from poam_sync.simulators.jira.issues import JiraIssues
from poam_sync.simulators.jira.model import (
    FIELD_BY_ID,
    NOT_ON_SCREEN,
    RESOLUTIONS,
    STATUSES,
    ApiError,
    JsonDict,
    SimUser,
    Transition,
)


class JiraWorkflow(JiraIssues):
    """Transitions available to an issue, carrying them out, and admin changes."""

    def available_transitions(self, issue: JsonDict) -> list[Transition]:
        current = issue["fields"]["status"]
        return [
            t
            for t in self.workflows[issue["issuetype"]]
            if (t.sources is None or current in t.sources) and t.to != current
        ]

    def _transition_json(self, t: Transition, base: str, with_fields: bool) -> JsonDict:
        out: JsonDict = {
            "id": t.id,
            "name": t.name,
            "to": self._status_json(t.to, base),
            "hasScreen": bool(t.screen),
            "isGlobal": t.sources is None,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }
        if with_fields:
            out["fields"] = {}
            for fid in t.screen:
                fdef = FIELD_BY_ID[fid]
                meta: JsonDict = {
                    "required": fid in t.required,
                    "schema": {"type": fdef.schema["type"], "system": fid},
                    "name": fdef.name,
                    "key": fid,
                    "hasDefaultValue": False,
                    "operations": ["set"],
                }
                if fid == "resolution":
                    meta["allowedValues"] = [self._resolution_json(r, base) for r in RESOLUTIONS]
                out["fields"][fid] = meta
        return out

    def _do_transition(self, issue: JsonDict, body: Any, author: SimUser, v3: bool) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("transition"), dict):
            raise ApiError(400, ["Missing 'transition' identifier."])
        tid = str(body["transition"].get("id", ""))
        chosen = next((t for t in self.available_transitions(issue) if t.id == tid), None)
        if chosen is None:
            raise ApiError(400, [f"Transition id '{tid}' is not valid for this issue."])
        fields = body.get("fields") or {}
        if chosen.validator:
            raise ApiError(400, [chosen.validator])
        errors = {fid: NOT_ON_SCREEN.format(fid) for fid in fields if fid not in chosen.screen}
        for fid in chosen.required:
            if fields.get(fid) is None and fid not in errors:
                errors[fid] = f"{FIELD_BY_ID[fid].name} is required."
        if errors:
            raise ApiError(400, errors=errors)
        changes: dict[str, Any] = {
            fid: self._parse_value(fid, value, v3) for fid, value in fields.items()
        }
        comments = []
        for op in (body.get("update") or {}).get("comment", []):
            text = (op.get("add") or {}).get("body")
            comments.append(from_adf(text) if v3 else str(text))
        changes["status"] = chosen.to
        if STATUSES[chosen.to][1] == "done":
            if chosen.auto_resolution and "resolution" not in changes:
                changes["resolution"] = chosen.auto_resolution
            changes["resolutiondate"] = self._last_ms + 1
        else:
            changes["resolution"] = None
            changes["resolutiondate"] = None
        resolution_date = changes.pop("resolutiondate")
        self._write(issue, author, changes)
        issue["fields"]["resolutiondate"] = resolution_date
        self._reindex(issue["id"])
        for text in comments:
            self._add_comment(issue, author, text)

    def block_status(self, status_name: str) -> None:
        """Remove every transition into ``status_name`` (a workflow change by an admin)."""
        sid = self._status_id(status_name)
        with self.lock:
            for transitions in self.workflows.values():
                transitions[:] = [t for t in transitions if t.to != sid]

    def remove_transition(self, transition_name: str) -> None:
        """Remove one transition by name (an admin edits the workflow)."""
        with self.lock:
            for transitions in self.workflows.values():
                transitions[:] = [t for t in transitions if t.name != transition_name]

    def add_validator(self, transition_name: str, message: str) -> None:
        """A workflow validator on a transition: Jira lists the transition but refuses it with
        400 and ``message`` (a condition or validator the sync user cannot meet, as
        UiPath/skills#1730 describes for Jira's Transition Issue failures)."""
        with self.lock:
            for transitions in self.workflows.values():
                for t in transitions:
                    if t.name == transition_name:
                        t.validator = message

    def require_field(self, transition_name: str, field_id: str) -> None:
        """Put ``field_id`` on a transition's screen as required (e.g. a custom field)."""
        with self.lock:
            for transitions in self.workflows.values():
                for t in transitions:
                    if t.name == transition_name:
                        t.required = (*t.required, field_id)
                        t.screen = (*t.screen, field_id)

    @staticmethod
    def _status_id(name: str) -> str:
        for sid, (sname, _) in STATUSES.items():
            if sname.lower() == name.lower():
                return sid
        raise KeyError(f"no status named {name!r}; known: {[s for s, _ in STATUSES.values()]}")
