"""Conflicts and problems: what a sync cycle could not settle on its own, kept for a person.

A conflict is a field changed on both sides since their baseline; a problem is something a
connector could not do for an item (an unknown user, a blocked transition, ...).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from poam_sync.errors import ItemNotFound, StoreError, UsageError
from poam_sync.model import SyncValue
from poam_sync.store._rows import ConflictRow, ProblemKind, ProblemRow
from poam_sync.store._schema import conflicts, dump_json, problems
from poam_sync.store._schema import items as items_t
from poam_sync.store._tx import TxBase


class ConflictsTx(TxBase):
    """The conflicts-and-problems part of a store transaction."""

    # -------------------------------------------------------------- conflicts
    def open_conflict(
        self,
        *,
        item_uuid: str,
        connector: str,
        field: str,
        baseline: SyncValue,
        local: SyncValue,
        remote: SyncValue,
        remote_actor: str | None,
        remote_changed_at: datetime | None,
    ) -> ConflictRow:
        """Record a conflict; while one is open for (item, connector, field) it is refreshed."""
        self._require_item(item_uuid, "record a conflict")
        values = {
            "baseline": baseline,
            "local": local,
            "remote": remote,
            "remote_actor": remote_actor,
            "remote_changed_at": remote_changed_at,
        }
        open_id = self._conn.execute(
            sa.select(conflicts.c.id).where(
                conflicts.c.item_uuid == item_uuid,
                conflicts.c.connector == connector,
                conflicts.c.field == field,
                conflicts.c.state == "open",
            )
        ).scalar_one_or_none()
        if open_id is None:
            done = self._conn.execute(
                sa.insert(conflicts).values(
                    item_uuid=item_uuid,
                    connector=connector,
                    field=field,
                    detected_at=self._clock(),
                    state="open",
                    **values,
                )
            )
            key = done.inserted_primary_key
            assert key is not None
            open_id = int(key[0])
        else:
            self._conn.execute(
                sa.update(conflicts).where(conflicts.c.id == open_id).values(**values)
            )
        return self.conflict(open_id)

    def conflicts(self, *, state: str = "open") -> list[ConflictRow]:
        """Conflicts by id; ``state`` is "open", "resolved" or "all"."""
        if state not in ("open", "resolved", "all"):
            raise UsageError(f"unknown conflict state {state!r}", hint="use open, resolved or all")
        query = _conflict_query().order_by(conflicts.c.id)
        if state != "all":
            query = query.where(conflicts.c.state == state)
        return [_conflict_row(r) for r in self._conn.execute(query)]

    def conflict(self, conflict_id: int) -> ConflictRow:
        row = self._conn.execute(
            _conflict_query().where(conflicts.c.id == conflict_id)
        ).one_or_none()
        if row is None:
            raise ItemNotFound(
                f"no conflict with id {conflict_id}",
                hint="list them with: poam-sync conflicts list",
            )
        return _conflict_row(row)

    def resolve_conflict(
        self, conflict_id: int, *, value: SyncValue, taken_from: str, by: str, reason: str
    ) -> ConflictRow:
        """Settle an open conflict. The item and the change log are the caller's to update."""
        current = self.conflict(conflict_id)
        if current.state != "open":
            raise StoreError(
                f"conflict {conflict_id} was already resolved by {current.resolved_by} "
                f"at {current.resolved_at}",
                hint="list open conflicts with: poam-sync conflicts list",
            )
        self._conn.execute(
            sa.update(conflicts)
            .where(conflicts.c.id == conflict_id)
            .values(
                state="resolved",
                resolved_at=self._clock(),
                resolution_value=dump_json(value),
                taken_from=taken_from,
                resolved_by=by,
                reason=reason,
            )
        )
        return self.conflict(conflict_id)

    # --------------------------------------------------------------- problems
    def report_problem(
        self,
        *,
        item_uuid: str | None,
        connector: str,
        field: str | None,
        code: str,
        message: str,
        hint: str | None = None,
        kind: ProblemKind = "write",
        remote_id: str | None = None,
        remote_key: str | None = None,
    ) -> bool:
        """Record a problem, or refresh it (``last_seen``, message, hint) if already reported.

        One problem per item, connector, field, code, kind and remote record. True when it is
        new (never seen, or seen again after it had been cleared)."""
        now = self._clock()
        match = (
            problems.c.item_uuid.is_not_distinct_from(item_uuid),
            problems.c.connector == connector,
            problems.c.field.is_not_distinct_from(field),
            problems.c.code == code,
            problems.c.kind == kind,
            problems.c.remote_id.is_not_distinct_from(remote_id),
        )
        row = self._conn.execute(
            sa.select(problems.c.id, problems.c.active).where(*match)
        ).one_or_none()
        if row is None:
            self._conn.execute(
                sa.insert(problems).values(
                    item_uuid=item_uuid,
                    connector=connector,
                    field=field,
                    code=code,
                    message=message,
                    first_seen=now,
                    last_seen=now,
                    active=True,
                    kind=kind,
                    hint=hint,
                    remote_id=remote_id,
                    remote_key=remote_key,
                )
            )
            return True
        values: dict[str, str | datetime | bool | None] = {
            "message": message,
            "hint": hint,
            "last_seen": now,
            "active": True,
        }
        if remote_key is not None:
            values["remote_key"] = remote_key
        if not row.active:  # it had been cleared: this is a new occurrence
            values["first_seen"] = now
        self._conn.execute(sa.update(problems).where(problems.c.id == row.id).values(**values))
        return not row.active

    def clear_problems(
        self,
        item_uuid: str | None,
        connector: str | None = None,
        field: str | None = None,
        *,
        kind: ProblemKind | None = None,
        remote_id: str | None = None,
    ) -> int:
        """Mark an item's problems as gone: at one connector, of one field, of one kind, about
        one remote record, as far as given (``item_uuid`` None: problems of no item, such as a
        record whose import failed). Returns how many were cleared."""
        query = sa.update(problems).where(
            problems.c.item_uuid.is_not_distinct_from(item_uuid),
            problems.c.active.is_(True),
        )
        if connector is not None:
            query = query.where(problems.c.connector == connector)
        if field is not None:
            query = query.where(problems.c.field == field)
        if kind is not None:
            query = query.where(problems.c.kind == kind)
        if remote_id is not None:
            query = query.where(problems.c.remote_id == remote_id)
        return self._conn.execute(query.values(active=False)).rowcount

    def problems(
        self, *, active: bool | None = True, kind: ProblemKind | None = None
    ) -> list[ProblemRow]:
        """Active problems (``active=True``), cleared ones (``False``) or all (``None``); of one
        kind when given."""
        query = (
            sa.select(problems, items_t.c.poam_id)
            .select_from(problems.outerjoin(items_t, problems.c.item_uuid == items_t.c.uuid))
            .order_by(problems.c.id)
        )
        if active is not None:
            query = query.where(problems.c.active.is_(active))
        if kind is not None:
            query = query.where(problems.c.kind == kind)
        return [
            ProblemRow(
                item_uuid=r.item_uuid,
                poam_id=r.poam_id,
                connector=r.connector,
                field=r.field,
                code=r.code,
                message=r.message,
                first_seen=r.first_seen,
                last_seen=r.last_seen,
                active=bool(r.active),
                kind=r.kind,
                hint=r.hint,
                remote_id=r.remote_id,
                remote_key=r.remote_key,
            )
            for r in self._conn.execute(query)
        ]


def _conflict_query() -> sa.Select[Any]:
    return sa.select(conflicts, items_t.c.system, items_t.c.poam_id).select_from(
        conflicts.join(items_t, conflicts.c.item_uuid == items_t.c.uuid)
    )


def _conflict_row(r: sa.Row[Any]) -> ConflictRow:
    return ConflictRow(
        id=int(r.id),
        item_uuid=r.item_uuid,
        system=r.system,
        poam_id=r.poam_id,
        connector=r.connector,
        field=r.field,
        baseline=r.baseline,
        local=r.local,
        remote=r.remote,
        remote_actor=r.remote_actor,
        remote_changed_at=r.remote_changed_at,
        detected_at=r.detected_at,
        state=r.state,
        resolved_at=r.resolved_at,
        resolution_value=None if r.resolution_value is None else json.loads(r.resolution_value),
        taken_from=r.taken_from,
        resolved_by=r.resolved_by,
        reason=r.reason,
    )
