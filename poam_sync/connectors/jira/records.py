"""Reading Jira issues: issue JSON as a :class:`~poam_sync.connectors.base.RemoteRecord`.

Each synced field is mapped to its canonical value through the
:class:`~poam_sync.connectors.jira.mapping.JiraMapping` (status from status + resolution, owner
as an e-mail, risk from the priority, milestones from the sub-tasks). The last actor is whoever
made the newest change or comment, for the change log. Our own stamp labels are never shown as
controls, even when the controls are mapped to the labels.
"""

from __future__ import annotations

from poam_sync.connectors.base import RemoteRecord, Stamp, SyncValue, parse_note
from poam_sync.connectors.jira.client import JiraJson, parse_jira_time
from poam_sync.connectors.jira.directory import JiraDirectory
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.connectors.jira.milestones import JiraMilestones
from poam_sync.connectors.jira.site import JiraSite

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
        return RemoteRecord(
            remote_id=str(raw["id"]),
            key=str(raw["key"]),
            version=str(f["updated"]),
            updated_at=parse_jira_time(f["updated"]),
            fields=self._canonical(raw, subtasks),
            stamp=self._stamp_of(raw),
            updated_by=email_of(actor),
            url=f"{self.url}/browse/{raw['key']}",
            notes=tuple(notes),
        )

    def _canonical(self, raw: JiraJson, subtasks: list[JiraJson]) -> dict[str, SyncValue]:
        f = raw["fields"]
        ids = self.site.ids.by_canonical
        out: dict[str, SyncValue] = {}
        for field in self.site.synced_fields:
            if field == "status":
                res = (f.get("resolution") or {}).get("name")
                status = self.mapping.status_for(f["status"]["name"], res)
                out["status"] = status.value if status else None
            elif field == "milestones":
                out["milestones"] = self.milestones.canonical(subtasks)
            elif field == "owner":
                out["owner"] = self.directory.email_of(f.get(ids["owner"]))
            elif field == "original_risk":
                risk = self.mapping.risk_for((f.get(ids[field]) or {}).get("name"))
                out[field] = risk.value if risk else None
            elif field in ("title", "description"):
                out[field] = f.get(ids[field]) or ""
            elif field == "controls":
                values = f.get(ids[field]) or []
                out[field] = [v for v in values if not str(v).startswith(STAMP_LABEL_PREFIX)]
            else:
                out[field] = f.get(ids[field])
        return out

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
