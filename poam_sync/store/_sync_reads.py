"""The reads an incremental sync cycle makes: only the items it plans, by uuid.

A daemon's cycle plans the items that changed since its last cycle (the change log's sequence
numbers say which), those linked to the records the pull returned, and a few more
(:mod:`poam_sync.sync.working_set`); these queries load exactly those, with their links and
baselines, in chunks of ids small enough for every database's limit on bound parameters.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa

from poam_sync.model import PoamItem
from poam_sync.store._chain import parse_at
from poam_sync.store._rows import LinkRow
from poam_sync.store._schema import baselines, change_log, links
from poam_sync.store._schema import items as items_t
from poam_sync.store._sync_state import Baselines, decode_baselines
from poam_sync.store._sync_state import link_row as _link
from poam_sync.store._tx import TxBase

_CHUNK = 500  # ids per IN (...) query
_T = TypeVar("_T")


def chunks(values: Iterable[_T], size: int = _CHUNK) -> Iterator[list[_T]]:
    """``values`` in sorted lists of at most ``size`` (sorted: the same query plan each time)."""
    ordered = sorted(set(values))  # type: ignore[type-var]
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


class SyncReadsTx(TxBase):
    """The working-set reads of a store transaction (see the module docstring)."""

    def log_head(self) -> int:
        """The sequence number of the change log's last row (0 when it is empty)."""
        last = self._conn.execute(sa.select(sa.func.max(change_log.c.seq))).scalar_one_or_none()
        return int(last) if last is not None else 0

    def changed_items(self, after: int, upto: int) -> set[str]:
        """The uuids of the items with a change-log row after ``after``, up to ``upto``."""
        if upto <= after:
            return set()
        c = change_log.c
        query = sa.select(c.item_uuid).where(c.seq > after, c.seq <= upto).distinct()
        return set(self._conn.execute(query).scalars())

    def items_by_uuid(self, uuids: Collection[str]) -> list[PoamItem]:
        """The items with these uuids (those that exist), in no particular order."""
        found: list[PoamItem] = []
        for chunk in chunks(uuids):
            query = sa.select(items_t.c.data).where(items_t.c.uuid.in_(chunk))
            rows = self._conn.execute(query).scalars()
            found.extend(PoamItem.model_validate_json(d) for d in rows)
        return found

    def uuids_by_ids(self, ids: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``{(system, poam_id): uuid}`` for the pairs of ``ids`` an item has."""
        wanted = set(ids)
        found: dict[tuple[str, str], str] = {}
        for chunk in chunks(poam_id for _system, poam_id in wanted):
            query = sa.select(items_t.c.system, items_t.c.poam_id, items_t.c.uuid).where(
                items_t.c.poam_id.in_(chunk)
            )
            for system, poam_id, uuid in self._conn.execute(query):
                if (system, poam_id) in wanted:
                    found[(system, poam_id)] = uuid
        return found

    def links_for(self, connector: str, uuids: Collection[str]) -> list[LinkRow]:
        """The links of these items to ``connector``."""
        found: list[LinkRow] = []
        for chunk in chunks(uuids):
            query = sa.select(links).where(
                links.c.connector == connector, links.c.item_uuid.in_(chunk)
            )
            found.extend(_link(r) for r in self._conn.execute(query))
        return found

    def linked_uuids(self, connector: str, remote_ids: Collection[str]) -> set[str]:
        """The uuids of the items linked to these records of ``connector``."""
        found: set[str] = set()
        for chunk in chunks(remote_ids):
            query = sa.select(links.c.item_uuid).where(
                links.c.connector == connector, links.c.remote_id.in_(chunk)
            )
            found.update(self._conn.execute(query).scalars())
        return found

    def live_links(self, connector: str) -> int:
        """How many items have a link to ``connector`` that is not broken."""
        query = (
            sa.select(sa.func.count())
            .select_from(links)
            .where(links.c.connector == connector, links.c.state != "broken")
        )
        return int(self._conn.execute(query).scalar_one())

    def baselines_for(self, connector: str, uuids: Collection[str]) -> Baselines:
        """:meth:`~poam_sync.store.StoreTx.all_baselines` of these items only."""
        rows: list[tuple[str, str, str]] = []
        for chunk in chunks(uuids):
            query = sa.select(
                baselines.c.item_uuid, baselines.c.field, sa.type_coerce(baselines.c.value, sa.Text)
            ).where(baselines.c.connector == connector, baselines.c.item_uuid.in_(chunk))
            rows.extend((u, f, t) for u, f, t in self._conn.execute(query))
        return decode_baselines(rows)

    def last_changes(self, uuids: Collection[str]) -> dict[tuple[str, str], datetime]:
        """``{(item_uuid, field): when the change log last changed it}`` for these items."""
        c = change_log.c
        latest: dict[tuple[str, str], datetime] = {}
        for chunk in chunks(uuids):
            query = sa.select(c.item_uuid, c.field, c.at).where(c.item_uuid.in_(chunk))
            for item_uuid, field, at in self._conn.execute(query):
                when = parse_at(at)
                key = (item_uuid, field)
                if key not in latest or when > latest[key]:
                    latest[key] = when
        return latest
