"""Reading Jira issues: issue JSON as a :class:`~poam_sync.connectors.base.RemoteRecord`.

Each synced field is mapped to its canonical value through the
:class:`~poam_sync.connectors.jira.mapping.JiraMapping` (status from status + resolution, owner
as an e-mail, risk from the priority, milestones from the sub-tasks). The last actor is whoever
made the newest change or comment, for the change log. Our own stamp labels are never shown as
controls, even when the controls are mapped to the labels.

A value the mapping does not know (a site's own status such as "Blocked", a priority such as
"Lowest" or "Major", a resolution that leaves the status ambiguous, an assignee nobody can name
by e-mail) is never read as empty: the field is left out of the record's ``fields`` and reported
in its ``problems`` with the value and the mapping line that would cover it. The engine then
keeps the canonical value and pushes nothing for that field.

Who changed each field, and when, comes from that field's own changelog items (``fieldId``,
or ``field`` where an item lacks it, as some do: Jellyfish-AI/jf_agent#110): alice moving the
due date and bob the status are two changes by two people, not two by whoever touched the
issue last. A field no item touches (unchanged since the create), and milestones (sub-tasks
have their own histories), fall back to the record's last actor; the engine says so in the
log. (The reporter and creation time would name the first case exactly, but reading them for
every issue costs a pull about a third more.)
"""

from __future__ import annotations

import functools
from datetime import datetime

from poam_sync.connectors.base import (
    FieldChange,
    FieldProblem,
    MilestoneValue,
    RemoteRecord,
    Stamp,
    SyncValue,
    parse_note,
)
from poam_sync.connectors.jira.client import JiraJson, parse_jira_time
from poam_sync.connectors.jira.directory import JiraDirectory
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.connectors.jira.milestones import JiraMilestones
from poam_sync.connectors.jira.site import JiraSite
from poam_sync.model import MilestoneStatus, RiskLevel, Status

__all__ = ["STAMP_LABEL_PREFIX", "JiraReader"]

STAMP_LABEL_PREFIX = "poam-sync:"  # Stamp.token

# what every read asks for, besides the mapped fields and the stamp field
_ALWAYS_READ = (
    "summary",
    "status",
    "resolution",
    "updated",
    "labels",
    "comment",
    "issuetype",
    "subtasks",
)


class JiraReader:
    """Jira issue JSON (with its sub-tasks) -> remote records in canonical values."""

    def __init__(
        self,
        site: JiraSite,
        mapping: JiraMapping,
        directory: JiraDirectory,
        milestones: JiraMilestones,
        *,
        connector: str,
        url: str,
    ) -> None:
        self.site = site
        self.mapping = mapping
        self.directory = directory
        self.milestones = milestones
        self.connector = connector
        self.url = url

    def fields(self) -> list[str]:
        """The Jira fields a read asks for: only what the mapping needs."""
        ids = self.site.ids
        wanted = {*_ALWAYS_READ, *ids.by_canonical.values()}
        if ids.stamp_field:
            wanted.add(ids.stamp_field)
        return sorted(wanted)

    def record(self, raw: JiraJson, subtasks: list[JiraJson]) -> RemoteRecord:
        f = raw["fields"]
        email_of = self.directory.email_of
        actor, latest = None, None
        for h in (raw.get("changelog") or {}).get("histories", []):
            when = parse_jira_time(h["created"])
            if latest is None or when > latest:
                actor, latest = h.get("author"), when
        notes = []
        for c in (f.get("comment") or {}).get("comments", []):
            created = parse_jira_time(c["created"])
            author = email_of(c.get("author"))
            if latest is None or created >= latest:
                actor, latest = c.get("author"), created
            notes.append(
                parse_note(
                    str(c.get("body") or ""),
                    connector=self.connector,
                    remote_id=str(c["id"]),
                    author=author,
                    created=created,
                )
            )
        fields, problems = self._canonical(raw, subtasks)
        return RemoteRecord(
            remote_id=str(raw["id"]),
            key=str(raw["key"]),
            version=str(f["updated"]),
            updated_at=parse_jira_time(f["updated"]),
            fields=fields,
            stamp=self._stamp_of(raw),
            updated_by=email_of(actor),
            url=f"{self.url}/browse/{raw['key']}",
            notes=tuple(notes),
            problems=tuple(problems),
            field_changes=self._field_changes(raw.get("changelog")),
            people=self._people(f, fields),
        )

    def _people(self, f: JiraJson, fields: dict[str, SyncValue]) -> dict[str, str]:
        """The owner as one whole person: their e-mail -> the display name Jira shows."""
        owner = fields.get("owner")
        user = f.get(self.site.ids.by_canonical["owner"]) if "owner" in fields else None
        if isinstance(owner, str) and isinstance(user, dict) and user.get("displayName"):
            return {owner: str(user["displayName"])}
        return {}

    @functools.cached_property
    def _history_keys(self) -> dict[str, set[str]]:
        """Canonical field -> the changelog ``fieldId`` / ``field`` values that change it."""
        ids = self.site.ids.by_canonical
        out: dict[str, set[str]] = {}
        for field in self.site.synced_fields:
            if field == "status":
                out[field] = {"status", "resolution"}
            elif field in ids:
                # custom fields: items name them by id (fieldId) and by name (field)
                out[field] = {ids[field].lower(), self.mapping.fields[field].lower()}
        return out

    def _field_changes(self, changelog: JiraJson | None) -> dict[str, FieldChange]:
        """Each synced field's newest change in the changelog: its own author and time."""
        if not isinstance(changelog, dict):
            return {}
        histories: list[JiraJson] = changelog.get("histories") or []
        keys = self._history_keys
        newest: dict[str, tuple[datetime, JiraJson | None]] = {}
        for h in histories:
            when = parse_jira_time(h["created"])
            for item in h.get("items") or []:
                names = {
                    str(item.get("fieldId") or "").lower(),
                    str(item.get("field") or "").lower(),
                }
                for field, wanted in keys.items():
                    if names & wanted and (field not in newest or when >= newest[field][0]):
                        newest[field] = (when, h.get("author"))
        email_of = self.directory.email_of
        return {f: FieldChange(email_of(author), when) for f, (when, author) in newest.items()}

    def _canonical(
        self, raw: JiraJson, subtasks: list[JiraJson]
    ) -> tuple[dict[str, SyncValue], list[FieldProblem]]:
        """The synced fields the mapping can read, and a problem for each it cannot."""
        f = raw["fields"]
        ids = self.site.ids.by_canonical
        out: dict[str, SyncValue] = {}
        problems: list[FieldProblem] = []
        for field in self.site.synced_fields:
            value: SyncValue | FieldProblem
            if field == "status":
                value = self._status(f)
            elif field == "milestones":
                value = self._milestones(subtasks)
            elif field == "owner":
                user = f.get(ids["owner"])
                email = self.directory.known_email(user) if user else None
                value = self.directory.unknown_user(user) if user and not email else email
            elif field == "original_risk":
                value = self._risk(f.get(ids[field]))
            elif field in ("title", "description"):
                value = f.get(ids[field]) or ""
            elif field == "controls":
                values = f.get(ids[field]) or []
                value = [v for v in values if not str(v).startswith(STAMP_LABEL_PREFIX)]
            else:
                value = f.get(ids[field])
            if isinstance(value, FieldProblem):
                problems.append(value)
            else:
                out[field] = value
        return out, problems

    def _status(self, f: JiraJson) -> str | FieldProblem:
        name = str(f["status"]["name"])
        resolution = (f.get("resolution") or {}).get("name")
        status = self.mapping.status_for(name, resolution)
        if status is not None:
            return status.value
        choices = ", ".join(s.value for s in Status)
        if self.mapping.knows_status(name):
            known = sorted(
                {
                    t.resolution or "(none)"
                    for t in self.mapping.statuses.values()
                    if t.status.lower() == name.lower()
                }
            )
            return _unknown(
                "status",
                f"Jira status {name!r} with resolution {resolution or '(none)'!r} is not in "
                f"the mapping (it knows {name!r} with {', '.join(known)}); the status is left "
                "as it was",
                f"{name} / {resolution}" if resolution else name,
                choices,
                "read_statuses",
            )
        category = (f["status"].get("statusCategory") or {}).get("name")
        kind = f" (a {category!r} status)" if category else ""
        return _unknown(
            "status",
            f"Jira status {name!r}{kind} is not in the mapping; the status is left as it was",
            name,
            choices,
            "read_statuses",
        )

    def _risk(self, priority: JiraJson | None) -> str | FieldProblem:
        name = (priority or {}).get("name")
        risk = self.mapping.risk_for(name)
        if risk is not None:
            return risk.value
        choices = ", ".join(r.value for r in RiskLevel)
        what = (
            f"Jira priority {name!r} is not in the mapping" if name else "the issue has no priority"
        )
        return _unknown(
            "original_risk",
            f"{what}; the Original Risk Rating is left as it was",
            name or "<priority>",
            choices,
            "read_priorities",
        )

    def _milestones(self, subtasks: list[JiraJson]) -> list[MilestoneValue] | FieldProblem:
        unknown = sorted(
            {
                str(sub["fields"]["status"]["name"])
                for sub in subtasks
                if self.mapping.milestone_status_for(str(sub["fields"]["status"]["name"])) is None
                and self.mapping.milestones.removed_label not in (sub["fields"].get("labels") or [])
            }
        )
        if not unknown:
            return self.milestones.canonical(subtasks)
        choices = ", ".join(m.value for m in MilestoneStatus)
        return _unknown(
            "milestones",
            f"sub-task status(es) {', '.join(map(repr, unknown))} are not in the mapping; the "
            "milestones are left as they were",
            unknown[0],
            choices,
            "milestones.read_statuses",
        )

    def _stamp_of(self, raw: JiraJson) -> Stamp | None:
        value = (raw.get("properties") or {}).get(self.mapping.stamp.property)
        if isinstance(value, dict):
            try:
                return Stamp(
                    system=str(value["system"]),
                    poam_id=str(value["poam_id"]),
                    item_uuid=str(value["item_uuid"]),
                )
            except KeyError:
                return None
        return None


def _unknown(field: str, message: str, key: str, choices: str, section: str) -> FieldProblem:
    """An ``unknown_value`` problem whose hint is the mapping line that would cover it."""
    return FieldProblem(
        field,
        "unknown_value",
        message,
        hint=f"add `{key}: <one of {choices}>` under {section}: in mappings/jira.yaml",
    )
