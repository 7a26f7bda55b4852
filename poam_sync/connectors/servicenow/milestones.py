"""Milestones as child records of the POA&M record (``sn_irm_cont_auth_milestone_task``).

Each milestone is one record of the milestone table, pointing at its parent through
``parent_field`` and carrying the canonical milestone id in ``id_field`` (``correlation_id`` by
default: the column ServiceNow keeps for the identifier of a record in an integrated system).
Writing reads the parent's children first and makes them equal the wanted list: insert what is
missing, patch what differs, tombstone what is no longer wanted. So it is idempotent and safe
to repeat: a repeat after a lost answer (the insert went through, the answer did not) reads
the child the first try made and does not insert it again. Table API reads are not served from
an index that lags, so a record inserted is read back at once.

Nothing is ever deleted. A milestone removed here is tombstoned: its record is moved to the
state mapped for ``archived`` (``Closed Skipped`` on a stock instance, the closed state of a
task nobody will do) and its ``id_field`` becomes :data:`REMOVED_PREFIX` + the milestone id, the
marker that makes every later read skip it. Two children carrying one milestone id (another
tool, or an older poam-sync) are both kept: the oldest (``sys_created_on``, then ``sys_id``) is
the milestone, the others are reported as ``duplicate`` problems for a person to settle.

At a parent's creation its children are inserted with those of the other parents of the same
round, 50 to a Batch API request (:meth:`Milestones.insert_fresh`): the Batch API takes any
REST call of the instance, each applied as on its own ("You can include any API available on
the instance in a Batch API call", ServiceNow docs "Batch API"). A new parent has no children,
so nothing is read first. A child whose answer did not come back (the request failed, or the
instance left it in ``unserviced_requests``) may or may not exist: its parent is then written by
:meth:`Milestones.write`, which reads the parent's children before inserting any.

Children are read for a whole page of parents at once. Editing a child does not touch its
parent's ``sys_updated_on``: pull lists the children changed in its window as well, and a
parent's version carries a tag of its children's (:mod:`.versions`), from their reads
(:meth:`Milestones.read_tagged`) and from the answers to their inserts
(:meth:`Milestones.insert_fresh`).
"""

from __future__ import annotations

from collections.abc import Sequence

from poam_sync.connectors.base import FieldProblem, MilestoneValue, SyncValue
from poam_sync.connectors.servicenow.client import Row, TableClient, chunks
from poam_sync.connectors.servicenow.mapping import MilestoneMapping, ServiceNowMapping
from poam_sync.connectors.servicenow.metadata import Metadata
from poam_sync.connectors.servicenow.versions import children_tag
from poam_sync.errors import ConfigError
from poam_sync.model import MilestoneStatus

#: the ``id_field`` of a tombstoned child starts with this (then the milestone id)
REMOVED_PREFIX = "poam-sync-removed:"

#: a parent's milestones as written, and its children's tag (:func:`.versions.children_tag`)
Written = tuple[list[MilestoneValue], str]


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
            "sys_created_on",
            "sys_mod_count",
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
        """Each parent's milestones as canonical dicts (unsorted; tombstones and younger
        duplicates left out)."""
        return {p: values for p, (values, _) in self.read_tagged(parents, meta).items()}

    def read_tagged(self, parents: Sequence[str], meta: Metadata) -> dict[str, Written]:
        """Each parent's milestones (as :meth:`read`) and the tag of all its child records,
        tombstones and duplicates included (:func:`.versions.children_tag`)."""
        return {
            p: (
                [self.value(r, meta) for r in self.live(rows)[0].values()],
                children_tag((r["sys_id"][0], r.get("sys_mod_count", ("", ""))[0]) for r in rows),
            )
            for p, rows in self.rows(parents).items()
        }

    def live(self, rows: Sequence[Row]) -> tuple[dict[str, Row], list[Row]]:
        """The children not tombstoned, by milestone id (the oldest of each id), and the
        younger duplicates."""
        by_id: dict[str, Row] = {}
        duplicates: list[Row] = []
        for row in sorted(rows, key=_age):
            mid = row[self.ms.id_field][0]
            if mid.startswith(REMOVED_PREFIX):
                continue
            if mid in by_id:
                duplicates.append(row)
            else:
                by_id[mid] = row
        return by_id, duplicates

    def value(self, row: Row, meta: Metadata) -> MilestoneValue:
        """One child record as a canonical milestone."""
        ms = self.ms
        code, display = row[ms.state_field]
        meta.learn(self.table, ms.state_field, code, display)
        label = meta.label(self.table, ms.state_field, code) or display
        status = ms.read_back(label) or MilestoneStatus.OPEN
        return {
            "id": row[ms.id_field][0],
            "description": row[ms.description_field][0],
            "due_date": meta.day(self.table, ms.due_date_field, row[ms.due_date_field][0]),
            "status": status.value,
        }

    def write(
        self, parent: str, wanted: SyncValue, meta: Metadata, *, fresh: bool = False
    ) -> tuple[list[MilestoneValue], list[FieldProblem]]:
        """Make the parent's milestone records equal ``wanted`` (idempotent); the result, and
        the duplicates found (reported, left as they are).

        ``fresh``: the parent was just created, so it has no children to read yet.
        """
        ms = self.ms
        target = self._mapping.project_milestones(wanted, meta.lengths)
        live, duplicates = self.live([] if fresh else self.rows([parent])[parent])
        problems = [
            FieldProblem(
                "milestones",
                "duplicate",
                f"{self.table} record {row['sys_id'][0]} repeats milestone "
                f"{row[ms.id_field][0]} of record {live[row[ms.id_field][0]]['sys_id'][0]}; "
                "it was left as it is",
                "close or delete the duplicate in ServiceNow (poam-sync never deletes)",
            )
            for row in duplicates
        ]
        existing = {mid: (row["sys_id"][0], self.value(row, meta)) for mid, row in live.items()}
        for item in target:
            columns = {
                ms.id_field: item["id"],
                ms.description_field: item["description"],
                ms.due_date_field: meta.stored_day(self.table, ms.due_date_field, item["due_date"]),
            }
            code = self._code(item["status"], meta)
            if code is not None:
                columns[ms.state_field] = code
            if item["id"] not in existing:
                row = self._client.insert(self.table, {ms.parent_field: parent, **columns})
                self._state_by_label(row["sys_id"][0], item["status"], meta)
                continue
            sys_id, have = existing.pop(item["id"])
            if have != item:
                self._client.patch(self.table, sys_id, columns)
                self._state_by_label(sys_id, item["status"], meta)
        for mid, (sys_id, _) in existing.items():
            self._client.patch(self.table, sys_id, self.tombstone(mid, meta))
            self._state_by_label(sys_id, MilestoneStatus.ARCHIVED.value, meta)
        return target, problems

    def insert_fresh(
        self, parents: Sequence[tuple[str, SyncValue]], meta: Metadata, *, size: int = 50
    ) -> dict[str, Written | None]:
        """Insert the children of parents created a moment ago, ``size`` to a Batch API request;
        by parent, the milestones written and the tag of the children as their answers show
        them, or None where that is not known (a child refused, unanswered or needing its state
        by label: the caller writes that parent again with :meth:`write`, which reads first)."""
        ms = self.ms
        targets: dict[str, list[MilestoneValue] | None] = {}
        made: dict[str, list[tuple[str, str]]] = {}
        rows: list[tuple[str, dict[str, str]]] = []
        for parent, wanted in parents:
            target = self._mapping.project_milestones(wanted, meta.lengths)
            targets[parent] = target
            made[parent] = []
            for item in target:
                code = self._code(item["status"], meta)
                if code is None:  # written by its label, one by one
                    targets[parent] = None
                    continue
                columns = {
                    ms.parent_field: parent,
                    ms.id_field: item["id"],
                    ms.description_field: item["description"],
                    ms.due_date_field: meta.stored_day(
                        self.table, ms.due_date_field, item["due_date"]
                    ),
                    ms.state_field: code,
                }
                rows.append((parent, columns))
        rows = [(p, c) for p, c in rows if targets[p] is not None]
        for chunk in chunks(rows, size):
            answers = self._client.insert_batch(self.table, [c for _, c in chunk])
            for (parent, _), answer in zip(chunk, answers, strict=True):
                if isinstance(answer, dict) and "sys_mod_count" in answer:
                    made[parent].append((answer["sys_id"][0], answer["sys_mod_count"][0]))
                else:
                    targets[parent] = None
        return {
            p: (target, children_tag(made[p])) if target is not None else None
            for p, target in targets.items()
        }

    def _state_by_label(self, sys_id: str, status: str, meta: Metadata) -> None:
        """Write the state by its label when its code is unknown (``sys_choice`` cannot be
        read), and learn the code from the answer."""
        ms = self.ms
        label = ms.states[MilestoneStatus(status)]
        if meta.code(self.table, ms.state_field, label) is not None:
            return
        row = self._client.patch_display_values(self.table, sys_id, {ms.state_field: label})
        code, shown = row.get(ms.state_field, ("", ""))
        meta.learn(self.table, ms.state_field, code, shown)

    def tombstone(self, milestone_id: str, meta: Metadata) -> dict[str, str]:
        """The columns that retire a child: the archived state and the removed marker."""
        ms = self.ms
        columns = {ms.id_field: f"{REMOVED_PREFIX}{milestone_id}"}
        code = self._code(MilestoneStatus.ARCHIVED.value, meta)
        return {**columns, ms.state_field: code} if code is not None else columns

    def _code(self, status: str, meta: Metadata) -> str | None:
        """The state code of ``status``; None when ``sys_choice`` cannot be read and no
        record showed it yet (the state is then written by its label)."""
        ms = self.ms
        label = ms.states[MilestoneStatus(status)]
        code = meta.code(self.table, ms.state_field, label)
        if code is None and meta.choices_unreadable:
            return None
        if code is None:
            raise ConfigError(
                f"[{self._client.connector} mapping] milestones.states.{status} <- {label!r} "
                f"is not a choice of {self.table}.{ms.state_field}"
            )
        return code


def _age(row: Row) -> tuple[str, str]:
    """Creation order of child records (``sys_created_on`` is UTC to the second; ``sys_id``
    breaks ties so the order is stable)."""
    created = row.get("sys_created_on", ("", ""))[0]
    return (created, row["sys_id"][0])
