"""What the Jira connector learns about the site once: deployment, project, issue types, field ids.

Loaded on first use (or by :meth:`JiraConnector.prepare`) and kept for the connector's life:
Cloud or Data Center, the project and issue-type ids creates need, the sync user's time zone
(JQL dates are read in it), and the Jira field id behind each mapped field, found by name through
``GET /field`` so that mappings name custom fields instead of copying ``customfield_NNNNN`` ids.
A mapping that names something the site lacks is a :class:`~poam_sync.errors.ConfigError` naming
the option; so is a name several fields share (Jira allows it), naming their ids: the mapping
then gives the id, which is always taken as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from poam_sync.connectors.jira.client import JiraClient
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.errors import ConfigError

__all__ = ["FieldIds", "JiraSite", "SiteMeta"]


@dataclass(frozen=True, slots=True)
class FieldIds:
    """Jira field ids for the mapping's targets, discovered through ``/field``."""

    by_canonical: dict[str, str]
    stamp_field: str | None

    def canonical_of(self, field_id: str) -> str | None:
        return next((c for c, f in self.by_canonical.items() if f == field_id), None)


@dataclass(frozen=True, slots=True)
class SiteMeta:
    """The site's deployment and the project's ids, as creates and searches need them."""

    cloud: bool
    project_id: str
    issue_type_id: str
    subtask_type_id: str | None
    time_zone: ZoneInfo


class JiraSite:
    """The facts above for one connector, each loaded once on first use."""

    def __init__(
        self,
        client: JiraClient,
        mapping: JiraMapping,
        synced_fields: frozenset[str],
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.synced_fields = synced_fields
        self.log = log
        self._meta: SiteMeta | None = None
        self._ids: FieldIds | None = None

    def load(self) -> None:
        """Load (once) everything below."""
        self._meta = self.meta
        self._ids = self.ids

    @property
    def meta(self) -> SiteMeta:
        if self._meta is None:
            self._meta = self._load_meta()
        return self._meta

    @property
    def ids(self) -> FieldIds:
        if self._ids is None:
            self._ids = self._load_ids()
        return self._ids

    def _load_meta(self) -> SiteMeta:
        jira, call = self.client.jira, self.client.call
        cloud = jira.deploymentType == "Cloud"  # read by the client's first call
        me = call("myself", jira.myself)
        key = self.client.settings.project_key
        project = call("project", lambda: jira.project(key, expand="issueTypes").raw)
        types = {t["name"].lower(): t["id"] for t in project.get("issueTypes", [])}
        wanted = self.mapping.issue_type.lower()
        if wanted not in types:
            raise ConfigError(
                f"[mappings/jira.yaml] issue_type <- project {key} has no issue type "
                f"{self.mapping.issue_type!r} (it has {sorted(types)})"
            )
        subtask = None
        if "milestones" in self.synced_fields:
            subtask = types.get(self.mapping.milestones.issue_type.lower())
            if subtask is None:
                raise ConfigError(
                    "[mappings/jira.yaml] milestones.issue_type <- project "
                    f"{key} has no issue type {self.mapping.milestones.issue_type!r}"
                )
        try:
            tz = ZoneInfo(me.get("timeZone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo("UTC")
        self.log.info("jira.connected", cloud=cloud, time_zone=str(tz))
        return SiteMeta(
            cloud=cloud,
            project_id=str(project["id"]),
            issue_type_id=types[wanted],
            subtask_type_id=subtask,
            time_zone=tz,
        )

    def _load_ids(self) -> FieldIds:
        fields = self.client.call("field", lambda: self.client.jira.fields())
        by_id = {str(f["id"]).lower(): str(f["id"]) for f in fields}
        by_name: dict[str, list[str]] = {}
        for f in fields:
            by_name.setdefault(str(f["name"]).lower(), []).append(str(f["id"]))

        def resolve(option: str, target: str) -> str:
            if target.lower() in by_id:
                return by_id[target.lower()]  # the id itself: never ambiguous
            named = by_name.get(target.lower(), [])
            if len(named) > 1:
                # Jira does not keep field names unique: guessing could write the POA&M
                # into another team's field
                ids = ", ".join(sorted(named))
                raise ConfigError(
                    f"[mappings/jira.yaml] {option} <- Jira has {len(named)} fields named "
                    f"{target!r} ({ids}); poam-sync will not guess which one is meant",
                    hint=f"name the field by its id instead, e.g. `{option.rpartition('.')[2]}: "
                    f"{sorted(named)[0]}` (Jira's custom-field admin page shows which field "
                    "the project's screens use)",
                )
            found = named[0] if named else None
            if found is None:
                custom = sorted(f["name"] for f in fields if f.get("custom"))
                raise ConfigError(
                    f"[mappings/jira.yaml] {option} <- Jira has no field {target!r} "
                    f"(custom fields: {custom})",
                    hint="create the custom field in Jira or fix its name in the mapping",
                )
            return found

        mapped = {
            c: resolve(f"fields.{c}", t)
            for c, t in self.mapping.fields.items()
            if c in self.synced_fields
        }
        stamp_target = self.mapping.stamp.field
        stamp = resolve("stamp.field", stamp_target) if stamp_target else None
        return FieldIds(mapped, stamp)
