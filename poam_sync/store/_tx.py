"""What every part of a :class:`~poam_sync.store.StoreTx` shares: its connection and clock.

The transaction's jobs (items, change log, sync state, conflicts) live in mixin classes of their
own modules; each builds on :class:`TxBase`, so all of them work on the same connection, in the
same transaction, and read the same clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from poam_sync.errors import ItemNotFound
from poam_sync.store._schema import items as items_t


def _now() -> datetime:
    return datetime.now(UTC)


class TxBase:
    """The connection, clock and chain-lock flag of one store transaction."""

    def __init__(self, conn: sa.Connection, *, clock: Callable[[], datetime] = _now) -> None:
        self._conn = conn
        self._clock = clock
        self._postgres = conn.dialect.name == "postgresql"
        self._chain_locked = False

    def _require_item(self, item_uuid: str, doing: str) -> None:
        if not self._uuid_taken(item_uuid):
            raise ItemNotFound(
                f"cannot {doing} for item {item_uuid}: no item has that uuid",
                hint="save the item first",
            )

    def _require_items(self, item_uuids: Sequence[str], doing: str) -> None:
        """:meth:`_require_item` for many, in one query per 500."""
        found: set[str] = set()
        for n in range(0, len(item_uuids), 500):
            chunk = list(item_uuids[n : n + 500])
            found |= set(
                self._conn.execute(sa.select(items_t.c.uuid).where(items_t.c.uuid.in_(chunk)))
                .scalars()
                .all()
            )
        for uuid in item_uuids:
            if uuid not in found:
                self._require_item(uuid, doing)

    def _uuid_taken(self, uuid: str) -> bool:
        found = self._conn.execute(
            sa.select(items_t.c.uuid).where(items_t.c.uuid == uuid)
        ).scalar_one_or_none()
        return found is not None
