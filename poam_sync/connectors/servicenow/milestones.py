"""Milestones as child records of the POA&M record (``sn_irm_cont_auth_milestone_task``).

Each milestone is one record of the milestone table, pointing at its parent through
``parent_field`` and carrying the canonical milestone id in ``id_field``. Writing makes the
children equal the wanted list (insert, patch what differs, delete the rest and any duplicate
of an id), so it is idempotent and safe to repeat. Children are read for a whole page of
parents at once. Editing a child does not touch its parent's ``sys_updated_on``: pull asks
:meth:`Milestones.changed_parents` as well.
"""

from __future__ import annotations

from collections.abc import Sequence

from poam_sync.connectors.base import MilestoneValue, SyncValue
from poam_sync.connectors.servicenow.client import Row, TableClient, chunks
from poam_sync.connectors.servicenow.mapping import MilestoneMapping, ServiceNowMapping
from poam_sync.connectors.servicenow.metadata import Metadata
from poam_sync.errors import ConfigError
from poam_sync.model import MilestoneStatus


class Milestones:
    """The milestone records of one table's records, as canonical milestone dicts."""

    def __init__(self, client: TableClient, mapping: ServiceNowMapping, table: str) -> None:
        assert mapping.milestones is not None
        self._client = client
        self._mapping = mapping
        self.ms: MilestoneMapping = mapping.milestones
        self.table = table

    def _fields(self) -> list[str]:
        ms = self.ms
        return [
            "sys_id",
            ms.parent_field,
            ms.id_field,
            ms.description_field,
            ms.due_date_field,
            ms.state_field,
        ]

    def rows(self, parents: Sequence[str]) -> dict[str, list[Row]]:
        """Each parent's child records; 100 parents per query."""
        ms = self.ms
        out: dict[str, list[Row]] = {p: [] for p in parents}
        if not parents:
            return out
        for chunk in chunks(list(parents), 100):
            query = f"{ms.parent_field}IN{','.join(chunk)}"
            for row in self._client.select(self.table, self._fields(), query):
                out.setdefault(row[ms.parent_field][0], []).append(row)
        return out

    def read(self, parents: Sequence[str], meta: Metadata) -> dict[str, list[MilestoneValue]]:
        """Each parent's milestones as canonical dicts (unsorted)."""
        return {p: [self.value(r, meta) for r in rows] for p, rows in self.rows(parents).items()}

    def changed_parents(self, query: str) -> set[str]:
        """The parents of child records matching ``query`` (e.g. changed since a watermark)."""
        field = self.ms.parent_field
        return {row[field][0] for row in self._client.select(self.table, [field], query)}

    def value(self, row: Row, meta: Metadata) -> MilestoneValue:
        """One child record as a canonical milestone."""
        ms = self.ms
        code, display = row[ms.state_field]
        label = meta.label(self.table, ms.state_field, code) or display
        status = ms.read_back(label) or MilestoneStatus.OPEN
        return {
            "id": row[ms.id_field][0],
            "description": row[ms.description_field][0],
            "due_date": row[ms.due_date_field][0][:10] or None,
            "status": status.value,
        }

    def write(
        self, parent: str, wanted: SyncValue, meta: Metadata, *, fresh: bool = False
    ) -> list[MilestoneValue]:
        """Make the parent's milestone records equal ``wanted`` (idempotent); the result.

        ``fresh``: the parent was just created, so it has no children to read yet.
        """
        ms = self.ms
        target = self._mapping.project_milestones(wanted, meta.lengths)
        existing: dict[str, tuple[str, MilestoneValue]] = {}
        extra: list[str] = []
        for row in [] if fresh else self.rows([parent])[parent]:
            value = self.value(row, meta)
            if value["id"] in existing:
                extra.append(row["sys_id"][0])
            else:
                existing[value["id"]] = (row["sys_id"][0], value)
        for item in target:
            columns = {
                ms.id_field: item["id"],
                ms.description_field: item["description"],
                ms.due_date_field: item["due_date"] or "",
                ms.state_field: self._code(item["status"], meta),
            }
            if item["id"] not in existing:
                self._client.insert(self.table, {ms.parent_field: parent, **columns})
                continue
            sys_id, have = existing.pop(item["id"])
            if have != item:
                self._client.patch(self.table, sys_id, columns)
        for sys_id, _ in existing.values():
            self._client.delete(self.table, sys_id)
        for sys_id in extra:
            self._client.delete(self.table, sys_id)
        return target

    def _code(self, status: str, meta: Metadata) -> str:
        ms = self.ms
        label = ms.states[MilestoneStatus(status)]
        code = meta.code(self.table, ms.state_field, label)
        if code is None:
            raise ConfigError(
                f"[{self._client.connector} mapping] milestones.states.{status} <- {label!r} "
                f"is not a choice of {self.table}.{ms.state_field}"
            )
        return code
