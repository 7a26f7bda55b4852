"""What every part of a :class:`~poam_sync.store.StoreTx` shares: its connection and clock.

The transaction's jobs (items, change log, sync state, conflicts) live in mixin classes of their
own modules; each builds on :class:`TxBase`, so all of them work on the same connection, in the
same transaction, and read the same clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

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

    def _bound(self, column: sa.Column[Any], value: object) -> object:
        """``value`` as SQLAlchemy hands it to the driver for ``column`` (its type's bind
        processing), for :meth:`_insert_rows`."""
        dialect = self._conn.dialect
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return process(value) if process is not None else value

    def _insert_rows(self, table: sa.Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert many rows straight through the driver, each a tuple of the values of every
        column of ``table`` in order, as the driver takes them (no SQLAlchemy type applied:
        text, numbers, NULL): SQLAlchemy's handling of each row's parameters costs more than
        the insert itself when a write makes thousands of rows. COPY on PostgreSQL."""
        if not rows:
            return
        columns = ", ".join(c.name for c in table.columns)
        if self._postgres:
            # psycopg 3's COPY, on this transaction's own connection
            raw: Any = self._conn.connection.dbapi_connection
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        mark = "?" if self._conn.dialect.paramstyle == "qmark" else "%s"
        marks = ", ".join([mark] * len(table.columns))
        # built from our own table definitions only: no outside text reaches this SQL
        sql = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"  # noqa: S608
        self._conn.exec_driver_sql(sql, list(rows))

    def _uuid_taken(self, uuid: str) -> bool:
        found = self._conn.execute(
            sa.select(items_t.c.uuid).where(items_t.c.uuid == uuid)
        ).scalar_one_or_none()
        return found is not None
