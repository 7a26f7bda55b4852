"""What the sync engine remembers per connector: links, baselines and watermarks.

A link ties an item to its remote record; baselines are the values both sides last agreed on;
a watermark is where the next pull starts. The claims on remote creates live in
:mod:`poam_sync.store._claims`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from poam_sync.errors import ItemNotFound, StoreError
from poam_sync.model import SyncValue, SyncValues
from poam_sync.store._rows import LinkRow
from poam_sync.store._schema import baselines, dump_json, links, watermarks
from poam_sync.store._tx import TxBase

Baselines = dict[str, dict[str, SyncValue]]
"""``{item_uuid: {field: value}}``."""


class SyncStateTx(TxBase):
    """The sync-state part of a store transaction."""

    # ------------------------------------------------------------------ links
    def link(self, item_uuid: str, connector: str) -> LinkRow | None:
        row = self._conn.execute(
            sa.select(links).where(links.c.item_uuid == item_uuid, links.c.connector == connector)
        ).one_or_none()
        return None if row is None else link_row(row)

    def linked(self, connector: str, item_uuids: Sequence[str]) -> set[str]:
        """Which of ``item_uuids`` have a link to ``connector`` (one query per 500)."""
        out: set[str] = set()
        for n in range(0, len(item_uuids), 500):
            chunk = list(item_uuids[n : n + 500])
            query = sa.select(links.c.item_uuid).where(
                links.c.connector == connector, links.c.item_uuid.in_(chunk)
            )
            out |= {str(u) for u in self._conn.execute(query).scalars()}
        return out

    def links(self, connector: str) -> list[LinkRow]:
        query = sa.select(links).where(links.c.connector == connector).order_by(links.c.item_uuid)
        return [link_row(r) for r in self._conn.execute(query)]

    def all_links(self, *, state: str | None = None) -> list[LinkRow]:
        """Links of every connector (of one state, e.g. "broken", when given), for reports."""
        query = sa.select(links).order_by(links.c.connector, links.c.item_uuid)
        if state is not None:
            query = query.where(links.c.state == state)
        return [link_row(r) for r in self._conn.execute(query)]

    def links_of(self, item_uuid: str) -> list[LinkRow]:
        """The links of one item, one per connector."""
        query = sa.select(links).where(links.c.item_uuid == item_uuid).order_by(links.c.connector)
        return [link_row(r) for r in self._conn.execute(query)]

    def link_versions(self, connector: str) -> dict[str, str]:
        """``{remote_id: remote_version}`` of the connector's working links that remember a
        version (the pull leaves out records still at it: sync/echoes.py)."""
        query = sa.select(links.c.remote_id, links.c.remote_version).where(
            links.c.connector == connector,
            links.c.state != "broken",
            links.c.remote_version.is_not(None),
        )
        return {str(r.remote_id): str(r.remote_version) for r in self._conn.execute(query)}

    def link_keys(self, connector: str) -> dict[str, str]:
        """``{remote_id: remote_key}`` of the connector's working links (a pull that lists in
        key ranges bounds them by these)."""
        query = sa.select(links.c.remote_id, links.c.remote_key).where(
            links.c.connector == connector,
            links.c.state != "broken",
            links.c.remote_key.is_not(None),
        )
        return {str(r.remote_id): str(r.remote_key) for r in self._conn.execute(query)}

    def has_link_versions(self, connector: str) -> bool:
        """Whether any working link of ``connector`` remembers a version (one indexed probe,
        not a read of them all: :meth:`link_versions` is read only when a pull needs it)."""
        query = (
            sa.select(links.c.remote_id)
            .where(
                links.c.connector == connector,
                links.c.state != "broken",
                links.c.remote_version.is_not(None),
            )
            .limit(1)
        )
        return self._conn.execute(query).first() is not None

    def set_link_versions(self, connector: str, versions: Mapping[str, str | None]) -> None:
        """Set the remembered remote version of links of ``connector``: ``{item_uuid:
        version or None}`` (one statement for them all)."""
        if not versions:
            return
        statement = (
            sa.update(links)
            .where(
                links.c.connector == connector,
                links.c.item_uuid == sa.bindparam("b_item"),
            )
            .values(remote_version=sa.bindparam("b_version"), updated_at=self._clock())
        )
        self._conn.execute(statement, [{"b_item": u, "b_version": v} for u, v in versions.items()])

    def link_by_remote(self, connector: str, remote_id: str) -> LinkRow | None:
        row = self._conn.execute(
            sa.select(links).where(links.c.connector == connector, links.c.remote_id == remote_id)
        ).one_or_none()
        return None if row is None else link_row(row)

    def set_link(self, link: LinkRow) -> None:
        """Create or replace the link of (item, connector); ``updated_at`` is set to now."""
        self._require_item(link.item_uuid, f"link it to {link.connector}")
        other = self.link_by_remote(link.connector, link.remote_id)
        if other is not None and other.item_uuid != link.item_uuid:
            raise StoreError(
                f"{link.connector} record {link.remote_key or link.remote_id} is already linked "
                f"to item {other.item_uuid}; it cannot also be linked to item {link.item_uuid}",
                hint="one remote record belongs to one item: fix the link, then sync again",
            )
        values = {
            "remote_id": link.remote_id,
            "remote_key": link.remote_key,
            "remote_version": link.remote_version,
            "url": link.url,
            "state": link.state,
            "broken_reason": link.broken_reason,
            "updated_at": self._clock(),
        }
        done = self._conn.execute(
            sa.update(links)
            .where(links.c.item_uuid == link.item_uuid, links.c.connector == link.connector)
            .values(**values)
        )
        if done.rowcount == 0:
            self._conn.execute(
                sa.insert(links).values(
                    item_uuid=link.item_uuid, connector=link.connector, **values
                )
            )

    def add_links(self, new: Sequence[LinkRow]) -> None:
        """Link many items that have no link to this connector yet (records just created).

        A few statements per batch instead of several per link: an initial sync links
        thousands. The same rules as :meth:`set_link` hold; a link that already exists makes
        the whole call fail (use :meth:`set_link` to replace one).
        """
        if not new:
            return
        by_connector: dict[str, list[LinkRow]] = {}
        for link in new:
            by_connector.setdefault(link.connector, []).append(link)
        now = self._clock()
        for connector, rows in by_connector.items():
            taken = self._conn.execute(
                sa.select(links.c.remote_id, links.c.item_uuid).where(
                    links.c.connector == connector,
                    links.c.remote_id.in_([r.remote_id for r in rows]),
                )
            ).all()
            if taken:
                remote_id, owner = taken[0]
                raise StoreError(
                    f"{connector} record {remote_id} is already linked to item {owner}",
                    hint="one remote record belongs to one item: fix the link, then sync again",
                )
        # straight to the driver; the one time, as SQLAlchemy would bind it, converted once
        at = self._bound(links.c.updated_at, now)
        self._insert_rows(
            links,
            [
                (
                    r.item_uuid,
                    r.connector,
                    r.remote_id,
                    r.remote_key,
                    r.remote_version,
                    r.url,
                    r.state,
                    r.broken_reason,
                    at,
                )
                for r in new
            ],
        )

    def mark_link_broken(self, item_uuid: str, connector: str, reason: str) -> None:
        done = self._conn.execute(
            sa.update(links)
            .where(links.c.item_uuid == item_uuid, links.c.connector == connector)
            .values(state="broken", broken_reason=reason, updated_at=self._clock())
        )
        if done.rowcount == 0:
            raise ItemNotFound(
                f"item {item_uuid} has no {connector} link to mark broken",
                hint="only linked items can have a broken link",
            )

    # -------------------------------------------------------------- baselines
    def baselines(self, item_uuid: str, connector: str) -> dict[str, SyncValue]:
        """The values this connector and the canonical record last agreed on, by field."""
        query = sa.select(baselines.c.field, baselines.c.value).where(
            baselines.c.item_uuid == item_uuid, baselines.c.connector == connector
        )
        return {r.field: r.value for r in self._conn.execute(query)}

    def all_baselines(self, connector: str) -> dict[str, dict[str, SyncValue]]:
        """Every baseline of one connector: ``{item_uuid: {field: value}}`` (one query)."""
        # Read the JSON as text and decode it here: this runs over every baseline row of a
        # connector once per full sync cycle.
        query = sa.select(
            baselines.c.item_uuid, baselines.c.field, sa.type_coerce(baselines.c.value, sa.Text)
        ).where(baselines.c.connector == connector)
        return decode_baselines((u, f, t) for u, f, t in self._conn.execute(query))

    def set_baselines(self, item_uuid: str, connector: str, values: SyncValues) -> None:
        """Set the baselines of the fields given (other fields keep theirs)."""
        if not values:
            return
        self._require_item(item_uuid, f"record {connector} baselines")
        self._conn.execute(
            sa.delete(baselines).where(
                baselines.c.item_uuid == item_uuid,
                baselines.c.connector == connector,
                baselines.c.field.in_(list(values)),
            )
        )
        self._conn.execute(
            sa.insert(baselines),
            [
                {"item_uuid": item_uuid, "connector": connector, "field": f, "value": v}
                for f, v in values.items()
            ],
        )

    def set_many_baselines(self, connector: str, values: Mapping[str, SyncValues]) -> None:
        """:meth:`set_baselines` for many items at once: ``{item_uuid: {field: value}}``."""
        groups: dict[frozenset[str], list[str]] = {}
        for item_uuid, fields in values.items():
            if fields:
                groups.setdefault(frozenset(fields), []).append(item_uuid)
        for names, uuids in groups.items():
            self._conn.execute(
                sa.delete(baselines).where(
                    baselines.c.connector == connector,
                    baselines.c.item_uuid.in_(uuids),
                    baselines.c.field.in_(sorted(names)),
                )
            )
        # straight to the driver, each value as the text JsonText stores (an initial sync
        # writes about ten rows per item and connector)
        self._insert_rows(
            baselines,
            [
                (u, connector, f, dump_json(v))
                for u, fields in values.items()
                for f, v in fields.items()
            ],
        )

    # ------------------------------------------------------------- watermarks
    def watermark(self, connector: str) -> datetime | None:
        value: datetime | None = self._conn.execute(
            sa.select(watermarks.c.value).where(watermarks.c.connector == connector)
        ).scalar_one_or_none()
        return value

    def set_watermark(self, connector: str, value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("a watermark must be a timezone-aware datetime")
        # One statement, so two processes setting a new connector's first watermark at once
        # cannot both insert it (an update-then-insert lost that race on PostgreSQL).
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        statement = insert(watermarks).values(connector=connector, value=value)
        self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[watermarks.c.connector], set_={"value": statement.excluded.value}
            )
        )


def decode_baselines(rows: Iterable[tuple[str, str, str]]) -> Baselines:
    """Baseline rows ``(item_uuid, field, JSON text)`` by item and field.

    Scalars repeat a lot (statuses, dates, owners), so each distinct one is decoded once;
    lists and objects are decoded per row, unshared. Decoded as written: the store is the only
    writer of baselines (no check per row)."""
    scalars: dict[str, SyncValue] = {}
    out: Baselines = {}
    value: SyncValue
    for item_uuid, field, text in rows:
        if text[:1] in ("[", "{"):
            value = json.loads(text)
        else:
            try:
                value = scalars[text]
            except KeyError:
                value = scalars[text] = json.loads(text)
        out.setdefault(item_uuid, {})[field] = value
    return out


def link_row(r: sa.Row[Any]) -> LinkRow:
    return LinkRow(
        item_uuid=r.item_uuid,
        connector=r.connector,
        remote_id=r.remote_id,
        remote_key=r.remote_key,
        remote_version=r.remote_version,
        url=r.url,
        state=r.state,
        broken_reason=r.broken_reason,
        updated_at=r.updated_at,
    )
