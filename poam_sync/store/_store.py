"""The canonical store: items, the hash-chained change log, and the sync engine's state.

:class:`Store` owns the engine; :meth:`Store.begin` opens one transaction as a :class:`StoreTx`,
through which every write goes. An item's new value, its change-log rows and any sync state
written in the same ``begin()`` block commit together or not at all.

Appends to the change log are serialized so that the chain stays linear with several writers:
SQLite write transactions start with ``BEGIN IMMEDIATE`` (one writer at a time); on PostgreSQL the
first write of a transaction takes ``pg_advisory_xact_lock(CHAIN_LOCK_KEY)``, held until commit,
before it reads the chain head.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from alembic.util import CommandError

from poam_sync.errors import (
    ChainBroken,
    ConfigError,
    DuplicateItem,
    ItemNotFound,
    StoreError,
    UsageError,
)
from poam_sync.model import TRACKED_FIELDS, JsonValue, PoamItem
from poam_sync.store._chain import (
    GENESIS,
    canonical_row,
    format_at,
    parse_at,
    row_encoder,
    row_hash,
)
from poam_sync.store._engine import CHAIN_LOCK_KEY, WRITE_OPTION, create_engine, migrate
from poam_sync.store._rows import (
    ChangeRow,
    ConflictRow,
    ImportOutcome,
    IntentRow,
    LinkRow,
    ProblemRow,
    VerifyResult,
)
from poam_sync.store._schema import (
    baselines,
    chain_head,
    change_log,
    conflicts,
    dump_json,
    dump_object_fields,
    intents,
    links,
    problems,
    watermarks,
)
from poam_sync.store._schema import items as items_t

log = structlog.get_logger(__name__)

_HEAD_ID = 1
_CHUNK = 500  # ids per IN (...) query
_URL_HINT = (
    "give a URL like sqlite:///poam-sync.db or postgresql+psycopg://user@host:5432/dbname "
    "(--db or POAM_SYNC_DATABASE_URL)"
)
_EMPTY: tuple[JsonValue, ...] = (None, "", [], {})


# one change-log row to append: item_uuid, system, poam_id, field, old value, new value, and the
# two values' canonical JSON text when already known (None: encoded on append)
_Entry = tuple[str, str, str, str, JsonValue, JsonValue, str | None, str | None]


def _now() -> datetime:
    return datetime.now(UTC)


def _safe_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        # not parseable: keep only the scheme so that nothing secret is echoed
        return url.split("://", 1)[0] + "://..." if "://" in url else "<unparseable URL>"


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _tracked_diff(
    old: Mapping[str, JsonValue] | None, new: Mapping[str, JsonValue]
) -> dict[str, tuple[JsonValue, JsonValue]]:
    """:func:`poam_sync.model.diff_items` on already dumped items (one dump per item, not two)."""
    if old is None:
        return {k: (None, new[k]) for k in TRACKED_FIELDS if new[k] not in _EMPTY}
    return {k: (old[k], new[k]) for k in TRACKED_FIELDS if old[k] != new[k]}


def _stored_values(data: str) -> dict[str, JsonValue]:
    """A stored item's canonical JSON; re-validated if it predates a field of the model."""
    values: dict[str, JsonValue] = json.loads(data)
    if any(name not in values for name in TRACKED_FIELDS):
        values = PoamItem.model_validate(values).model_dump(mode="json")
    return values


def _item_row(
    item: PoamItem, data: str, now: datetime, *, uuid: str, system: str
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "system": system,
        "poam_id": item.poam_id,
        "status": item.status.value,
        "due_date": item.due_date,
        "owner_email": item.owner.email if item.owner else None,
        "updated_at": now,
        "data": data,
    }


class StoreTx:
    """One database transaction of the store (get one from :meth:`Store.begin`)."""

    def __init__(self, conn: sa.Connection, *, clock: Callable[[], datetime] = _now) -> None:
        self._conn = conn
        self._clock = clock
        self._postgres = conn.dialect.name == "postgresql"
        self._chain_locked = False

    # ----------------------------------------------------------------- items
    def get(self, system: str, poam_id: str) -> PoamItem | None:
        data = self._conn.execute(
            sa.select(items_t.c.data).where(
                items_t.c.system == system, items_t.c.poam_id == poam_id
            )
        ).scalar_one_or_none()
        return None if data is None else PoamItem.model_validate_json(data)

    def get_by_uuid(self, uuid: str) -> PoamItem | None:
        data = self._conn.execute(
            sa.select(items_t.c.data).where(items_t.c.uuid == uuid)
        ).scalar_one_or_none()
        return None if data is None else PoamItem.model_validate_json(data)

    def items(self, system: str | None = None) -> list[PoamItem]:
        """Items ordered by (system, poam_id); of one system when given."""
        query = sa.select(items_t.c.data).order_by(items_t.c.system, items_t.c.poam_id)
        if system is not None:
            query = query.where(items_t.c.system == system)
        return [PoamItem.model_validate_json(d) for d in self._conn.execute(query).scalars()]

    def all_items(self) -> list[PoamItem]:
        return self.items()

    def find(self, poam_id: str) -> list[PoamItem]:
        """Items with this POA&M ID in any system, ordered by system."""
        query = (
            sa.select(items_t.c.data).where(items_t.c.poam_id == poam_id).order_by(items_t.c.system)
        )
        return [PoamItem.model_validate_json(d) for d in self._conn.execute(query).scalars()]

    def save(
        self,
        item: PoamItem,
        *,
        source: str,
        actor: str | None,
        reason: str | None = None,
        batch_id: str | None = None,
    ) -> list[ChangeRow]:
        """Insert or update ``item``; one change-log row per changed tracked field.

        An item already stored under the same (system, poam_id) keeps its stored uuid. Nothing
        changed (provenance aside) means nothing written and ``[]``.
        """
        self._lock_chain()
        now = self._clock()
        existing = self._conn.execute(
            sa.select(items_t.c.uuid, items_t.c.data).where(
                items_t.c.system == item.system, items_t.c.poam_id == item.poam_id
            )
        ).one_or_none()
        if existing is None:
            if self._uuid_taken(item.uuid):
                fresh = str(uuid_module.uuid4())
                log.warning(
                    "store.uuid_taken", poam_id=item.poam_id, system=item.system, new_uuid=fresh
                )
                item = item.model_copy(update={"uuid": fresh})
            dumped = item.model_dump(mode="json")
            changes = _tracked_diff(None, dumped)
            data, texts = dump_object_fields(dumped)
            self._conn.execute(
                sa.insert(items_t), [_item_row(item, data, now, uuid=item.uuid, system=item.system)]
            )
        else:
            if item.uuid != existing.uuid:
                item = item.model_copy(update={"uuid": existing.uuid})
            dumped = item.model_dump(mode="json")
            changes = _tracked_diff(_stored_values(existing.data), dumped)
            if not changes:
                return []
            data, texts = dump_object_fields(dumped)
            row = _item_row(item, data, now, uuid=item.uuid, system=item.system)
            del row["uuid"]
            self._conn.execute(sa.update(items_t).where(items_t.c.uuid == item.uuid).values(**row))
        return self._append(
            self._entries(item.uuid, item.system, item.poam_id, changes, texts),
            source=source,
            actor=actor,
            reason=reason,
            batch_id=batch_id,
            now=now,
        )

    def log_event(
        self,
        *,
        item_uuid: str,
        field: str,
        old: JsonValue,
        new: JsonValue,
        source: str,
        actor: str | None,
        reason: str | None,
        batch_id: str | None = None,
    ) -> ChangeRow:
        """A change-log row that changes no item (e.g. a conflict settled for the local value)."""
        self._lock_chain()
        found = self._conn.execute(
            sa.select(items_t.c.system, items_t.c.poam_id).where(items_t.c.uuid == item_uuid)
        ).one_or_none()
        if found is None:
            raise ItemNotFound(
                f"cannot log an event for item {item_uuid}: no item has that uuid",
                hint="log events only for items that are in the store",
            )
        entry: _Entry = (item_uuid, found.system, found.poam_id, field, old, new, None, None)
        rows = self._append(
            [entry], source=source, actor=actor, reason=reason, batch_id=batch_id, now=None
        )
        return rows[0]

    def import_items(
        self,
        items: Sequence[PoamItem],
        *,
        system: str,
        actor: str | None,
        batch_id: str,
        dry_run: bool = False,
        reason: str | None = None,
    ) -> ImportOutcome:
        """Import a file's items into ``system`` (source ``import``); see docs/store.md.

        Items are matched by POA&M ID within ``system`` (their own ``system`` is replaced). Items
        of the system absent from ``items`` are reported as ``missing`` and never deleted.
        ``reason`` defaults to "imported from <file>" when the item's provenance names a file.
        """
        seen: dict[str, int] = {}
        for item in items:
            seen[item.poam_id] = seen.get(item.poam_id, 0) + 1
        duplicates = sorted(pid for pid, n in seen.items() if n > 1)
        if duplicates:
            raise DuplicateItem(
                f"the import into system {system!r} holds POA&M ID(s) more than once: "
                f"{', '.join(duplicates[:20])}" + (" ..." if len(duplicates) > 20 else ""),
                hint="give each item its own POA&M ID; nothing was imported",
            )
        self._lock_chain()
        now = self._clock()
        stored = {
            row.poam_id: (row.uuid, row.data)
            for row in self._conn.execute(
                sa.select(items_t.c.poam_id, items_t.c.uuid, items_t.c.data).where(
                    items_t.c.system == system
                )
            )
        }
        fresh_uuids = [item.uuid for item in items if item.poam_id not in stored]
        taken = self._uuids_taken(fresh_uuids)

        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        entries: list[_Entry] = []
        reasons: list[str | None] = []
        for item in items:
            # the item's own system and uuid are replaced in its JSON (no model copies: this
            # loop runs once per imported item)
            poam_id = item.poam_id
            dumped = item.model_dump(mode="json")
            dumped["system"] = system
            known = stored.get(poam_id)
            if known is None:
                uuid = item.uuid
                if uuid in taken:
                    uuid = str(uuid_module.uuid4())
                taken.add(uuid)
                dumped["uuid"] = uuid
                changes = _tracked_diff(None, dumped)
                data, texts = dump_object_fields(dumped)
                inserts.append(_item_row(item, data, now, uuid=uuid, system=system))
                created.append(poam_id)
            else:
                uuid, stored_data = known
                dumped["uuid"] = uuid
                changes = _tracked_diff(_stored_values(stored_data), dumped)
                if not changes:
                    unchanged.append(poam_id)
                    continue
                data, texts = dump_object_fields(dumped)
                row = _item_row(item, data, now, uuid=uuid, system=system)
                updates.append({f"b_{k}": v for k, v in row.items()})
                updated.append(poam_id)
            why = reason
            if why is None and item.provenance is not None and item.provenance.file:
                why = f"imported from {item.provenance.file}"
            new_entries = self._entries(uuid, system, poam_id, changes, texts)
            entries.extend(new_entries)
            reasons.extend([why] * len(new_entries))
        outcome = ImportOutcome(
            created=created,
            updated=updated,
            unchanged=unchanged,
            missing=sorted(pid for pid in stored if pid not in seen),
            changes=len(entries),
            dry_run=dry_run,
        )
        if not dry_run:
            if inserts:
                self._conn.execute(sa.insert(items_t), inserts)
            if updates:
                self._conn.execute(
                    sa.update(items_t)
                    .where(items_t.c.uuid == sa.bindparam("b_uuid"))
                    .values(
                        {
                            col: sa.bindparam(f"b_{col}")
                            for col in (
                                "status",
                                "due_date",
                                "owner_email",
                                "updated_at",
                                "data",
                            )
                        }
                    ),
                    updates,
                )
            if entries:
                self._append(
                    entries,
                    source="import",
                    actor=actor,
                    reason=reasons,
                    batch_id=batch_id,
                    now=now,
                    collect=False,
                )
        log.info(
            "store.import",
            system=system,
            batch_id=batch_id,
            dry_run=dry_run,
            created=len(outcome.created),
            updated=len(outcome.updated),
            unchanged=len(outcome.unchanged),
            missing=len(outcome.missing),
            changes=outcome.changes,
        )
        return outcome

    # ------------------------------------------------------------ change log
    def log(self, *, item_uuid: str | None = None, limit: int | None = None) -> list[ChangeRow]:
        """Change-log rows in sequence order; with ``limit``, the last ``limit`` of them."""
        query = sa.select(change_log)
        if item_uuid is not None:
            query = query.where(change_log.c.item_uuid == item_uuid)
        if limit is not None:
            query = query.order_by(change_log.c.seq.desc()).limit(limit)
            rows = list(self._conn.execute(query))
            rows.reverse()
        else:
            rows = list(self._conn.execute(query.order_by(change_log.c.seq)))
        return [_change_row(r) for r in rows]

    def verify_log(self) -> VerifyResult:
        """Recompute the hash chain from the first row; name the first row that does not fit."""
        head = self._conn.execute(
            sa.select(chain_head.c.seq, chain_head.c.hash).where(chain_head.c.id == _HEAD_ID)
        ).one_or_none()
        expected_seq = 1
        prev = GENESIS
        checked = 0
        c = change_log.c
        result = self._conn.execution_options(yield_per=5000).execute(
            sa.select(
                c.seq,
                c.at,
                c.item_uuid,
                c.system,
                c.poam_id,
                c.field,
                c.old_value,
                c.new_value,
                c.source,
                c.actor,
                c.reason,
                c.batch_id,
                c.prev_hash,
                c.hash,
            ).order_by(c.seq)
        )
        try:
            for (
                seq,
                at,
                item_uuid,
                system,
                poam_id,
                field,
                old_value,
                new_value,
                source,
                actor,
                reason,
                batch_id,
                prev_hash,
                digest,
            ) in result:
                problem = None
                if seq != expected_seq:
                    if seq > expected_seq:
                        missing = (
                            f"row {expected_seq} is missing"
                            if seq == expected_seq + 1
                            else f"rows {expected_seq} to {seq - 1} are missing"
                        )
                        problem = (expected_seq, f"{missing} (the next row is {seq})")
                    else:
                        problem = (seq, f"row {seq} is out of sequence")
                elif prev_hash != prev:
                    problem = (seq, f"row {seq} does not point at the hash of row {seq - 1}")
                elif digest != row_hash(
                    prev,
                    canonical_row(
                        seq=seq,
                        at=at,
                        item_uuid=item_uuid,
                        system=system,
                        poam_id=poam_id,
                        field=field,
                        old_json=old_value,
                        new_json=new_value,
                        source=source,
                        actor=actor,
                        reason=reason,
                        batch_id=batch_id,
                    ),
                ):
                    problem = (
                        seq,
                        f"row {seq} was altered: its content no longer matches its hash",
                    )
                if problem is not None:
                    return _broken(checked, problem[0], problem[1])
                checked += 1
                prev = digest
                expected_seq += 1
        finally:
            result.close()
        last_seq = expected_seq - 1
        if head is None:
            if checked:
                return _broken(checked, None, "the chain head record is missing")
        elif head.seq > last_seq:
            missing = (
                f"row {head.seq} is missing"
                if head.seq == last_seq + 1
                else f"rows {last_seq + 1} to {head.seq} are missing"
            )
            return _broken(checked, last_seq + 1, f"{missing} at the end of the log")
        elif head.seq != last_seq or head.hash != prev:
            return _broken(
                checked, None, "the chain head record does not match the last row of the log"
            )
        return VerifyResult(
            ok=True,
            rows_checked=checked,
            first_bad_seq=None,
            message=f"{checked} change-log row(s) verified",
        )

    # ------------------------------------------------------------------ links
    def link(self, item_uuid: str, connector: str) -> LinkRow | None:
        row = self._conn.execute(
            sa.select(links).where(links.c.item_uuid == item_uuid, links.c.connector == connector)
        ).one_or_none()
        return None if row is None else _link_row(row)

    def links(self, connector: str) -> list[LinkRow]:
        query = sa.select(links).where(links.c.connector == connector).order_by(links.c.item_uuid)
        return [_link_row(r) for r in self._conn.execute(query)]

    def all_links(self, *, state: str | None = None) -> list[LinkRow]:
        """Links of every connector (of one state, e.g. "broken", when given), for reports."""
        query = sa.select(links).order_by(links.c.connector, links.c.item_uuid)
        if state is not None:
            query = query.where(links.c.state == state)
        return [_link_row(r) for r in self._conn.execute(query)]

    def link_by_remote(self, connector: str, remote_id: str) -> LinkRow | None:
        row = self._conn.execute(
            sa.select(links).where(links.c.connector == connector, links.c.remote_id == remote_id)
        ).one_or_none()
        return None if row is None else _link_row(row)

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
        self._conn.execute(
            sa.insert(links),
            [
                {
                    "item_uuid": r.item_uuid,
                    "connector": r.connector,
                    "remote_id": r.remote_id,
                    "remote_key": r.remote_key,
                    "remote_version": r.remote_version,
                    "url": r.url,
                    "state": r.state,
                    "broken_reason": r.broken_reason,
                    "updated_at": now,
                }
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
    def baselines(self, item_uuid: str, connector: str) -> dict[str, JsonValue]:
        """The values this connector and the canonical record last agreed on, by field."""
        query = sa.select(baselines.c.field, baselines.c.value).where(
            baselines.c.item_uuid == item_uuid, baselines.c.connector == connector
        )
        return {r.field: r.value for r in self._conn.execute(query)}

    def all_baselines(self, connector: str) -> dict[str, dict[str, JsonValue]]:
        """Every baseline of one connector: ``{item_uuid: {field: value}}`` (one query)."""
        # Read the JSON as text and decode it here: this runs over every baseline row of a
        # connector once per sync cycle. Scalars repeat a lot (statuses, dates, owners), so
        # each distinct one is decoded once; lists and objects are decoded per row, unshared.
        query = sa.select(
            baselines.c.item_uuid, baselines.c.field, sa.type_coerce(baselines.c.value, sa.Text)
        ).where(baselines.c.connector == connector)
        scalars: dict[str, JsonValue] = {}
        out: dict[str, dict[str, JsonValue]] = {}
        for item_uuid, field, text in self._conn.execute(query):
            if text[:1] in ("[", "{"):
                value = json.loads(text)
            else:
                try:
                    value = scalars[text]
                except KeyError:
                    value = scalars[text] = json.loads(text)
            out.setdefault(item_uuid, {})[field] = value
        return out

    def set_baselines(
        self, item_uuid: str, connector: str, values: Mapping[str, JsonValue]
    ) -> None:
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

    def set_many_baselines(
        self, connector: str, values: Mapping[str, Mapping[str, JsonValue]]
    ) -> None:
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
        rows = [
            {"item_uuid": u, "connector": connector, "field": f, "value": v}
            for u, fields in values.items()
            for f, v in fields.items()
        ]
        if rows:
            self._conn.execute(sa.insert(baselines), rows)

    # ---------------------------------------------------------------- intents
    def add_intent(self, item_uuid: str, connector: str, token: str) -> int:
        """Announce a remote create before making it; returns the intent's id."""
        self._require_item(item_uuid, f"announce a {connector} create")
        done = self._conn.execute(
            sa.insert(intents).values(
                item_uuid=item_uuid, connector=connector, token=token, created_at=self._clock()
            )
        )
        key = done.inserted_primary_key
        assert key is not None
        return int(key[0])

    def pending_intents(self, connector: str) -> list[IntentRow]:
        query = (
            sa.select(intents)
            .where(intents.c.connector == connector, intents.c.finished_at.is_(None))
            .order_by(intents.c.id)
        )
        return [
            IntentRow(
                id=r.id,
                item_uuid=r.item_uuid,
                connector=r.connector,
                token=r.token,
                created_at=r.created_at,
            )
            for r in self._conn.execute(query)
        ]

    def finish_intents(self, intent_ids: Sequence[int]) -> None:
        """Mark many intents done (idempotent)."""
        if intent_ids:
            self._conn.execute(
                sa.update(intents)
                .where(intents.c.id.in_(list(intent_ids)), intents.c.finished_at.is_(None))
                .values(finished_at=self._clock())
            )

    def finish_intent(self, intent_id: int) -> None:
        """Mark an intent done (idempotent)."""
        done = self._conn.execute(
            sa.update(intents)
            .where(intents.c.id == intent_id, intents.c.finished_at.is_(None))
            .values(finished_at=self._clock())
        )
        if done.rowcount == 0:
            exists = self._conn.execute(
                sa.select(intents.c.id).where(intents.c.id == intent_id)
            ).scalar_one_or_none()
            if exists is None:
                raise ItemNotFound(f"no intent with id {intent_id}")

    # ------------------------------------------------------------- watermarks
    def watermark(self, connector: str) -> datetime | None:
        value: datetime | None = self._conn.execute(
            sa.select(watermarks.c.value).where(watermarks.c.connector == connector)
        ).scalar_one_or_none()
        return value

    def set_watermark(self, connector: str, value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("a watermark must be a timezone-aware datetime")
        done = self._conn.execute(
            sa.update(watermarks).where(watermarks.c.connector == connector).values(value=value)
        )
        if done.rowcount == 0:
            self._conn.execute(sa.insert(watermarks).values(connector=connector, value=value))

    # -------------------------------------------------------------- conflicts
    def open_conflict(
        self,
        *,
        item_uuid: str,
        connector: str,
        field: str,
        baseline: JsonValue,
        local: JsonValue,
        remote: JsonValue,
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
        self, conflict_id: int, *, value: JsonValue, taken_from: str, by: str, reason: str
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
    ) -> None:
        """Record a problem, or refresh it (``last_seen``, message) if already reported."""
        now = self._clock()
        match = (
            problems.c.item_uuid.is_not_distinct_from(item_uuid),
            problems.c.connector == connector,
            problems.c.field.is_not_distinct_from(field),
            problems.c.code == code,
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
                )
            )
            return
        values: dict[str, Any] = {"message": message, "last_seen": now, "active": True}
        if not row.active:  # it had been cleared: this is a new occurrence
            values["first_seen"] = now
        self._conn.execute(sa.update(problems).where(problems.c.id == row.id).values(**values))

    def clear_problems(self, item_uuid: str, connector: str, field: str | None = None) -> None:
        """Mark an item's problems at a connector as gone (of one field when given)."""
        query = sa.update(problems).where(
            problems.c.item_uuid == item_uuid,
            problems.c.connector == connector,
            problems.c.active.is_(True),
        )
        if field is not None:
            query = query.where(problems.c.field == field)
        self._conn.execute(query.values(active=False))

    def problems(self, *, active: bool | None = True) -> list[ProblemRow]:
        """Active problems (``active=True``), cleared ones (``False``) or all (``None``)."""
        query = (
            sa.select(problems, items_t.c.poam_id)
            .select_from(problems.outerjoin(items_t, problems.c.item_uuid == items_t.c.uuid))
            .order_by(problems.c.id)
        )
        if active is not None:
            query = query.where(problems.c.active.is_(active))
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
            )
            for r in self._conn.execute(query)
        ]

    # --------------------------------------------------------------- internal
    def _require_item(self, item_uuid: str, doing: str) -> None:
        if not self._uuid_taken(item_uuid):
            raise ItemNotFound(
                f"cannot {doing} for item {item_uuid}: no item has that uuid",
                hint="save the item first",
            )

    def _uuid_taken(self, uuid: str) -> bool:
        found = self._conn.execute(
            sa.select(items_t.c.uuid).where(items_t.c.uuid == uuid)
        ).scalar_one_or_none()
        return found is not None

    def _uuids_taken(self, uuids: Sequence[str]) -> set[str]:
        taken: set[str] = set()
        for start in range(0, len(uuids), _CHUNK):
            chunk = list(uuids[start : start + _CHUNK])
            taken.update(
                self._conn.execute(
                    sa.select(items_t.c.uuid).where(items_t.c.uuid.in_(chunk))
                ).scalars()
            )
        return taken

    def _lock_chain(self) -> None:
        """Serialize change-log appends (SQLite: already, by BEGIN IMMEDIATE)."""
        if self._postgres and not self._chain_locked:
            self._conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
        self._chain_locked = True

    @staticmethod
    def _entries(
        uuid: str,
        system: str,
        poam_id: str,
        changes: Mapping[str, tuple[JsonValue, JsonValue]],
        texts: Mapping[str, str] | None = None,
    ) -> list[_Entry]:
        return [
            (
                uuid,
                system,
                poam_id,
                name,
                old,
                new,
                "null" if old is None else dump_json(old),
                texts[name] if texts is not None else None,
            )
            for name, (old, new) in changes.items()
        ]

    def _head(self) -> tuple[int, str, bool]:
        row = self._conn.execute(
            sa.select(chain_head.c.seq, chain_head.c.hash).where(chain_head.c.id == _HEAD_ID)
        ).one_or_none()
        if row is not None:
            return int(row.seq), str(row.hash), True
        if self._conn.execute(sa.select(sa.func.count()).select_from(change_log)).scalar_one():
            raise ChainBroken("the change log has rows but its chain head record is missing")
        return 0, GENESIS, False

    def _append(
        self,
        entries: Sequence[_Entry],
        *,
        source: str,
        actor: str | None,
        reason: str | Sequence[str | None] | None,
        batch_id: str | None,
        now: datetime | None,
        collect: bool = True,
    ) -> list[ChangeRow]:
        """Chain and insert change-log rows; the new rows, unless ``collect`` is False."""
        self._lock_chain()
        seq, prev, has_head = self._head()
        at_text = format_at(now or self._clock())
        at = parse_at(at_text)
        out: list[ChangeRow] = []
        params: list[tuple[Any, ...]] = []
        encode = row_encoder(at=at_text, source=source, actor=actor, batch_id=batch_id)
        sha256 = hashlib.sha256
        for index, (uuid, system, poam_id, field, old, new, old_json, new_json) in enumerate(
            entries
        ):
            seq += 1
            why = reason if reason is None or isinstance(reason, str) else reason[index]
            if old_json is None:
                old_json = dump_json(old)
            if new_json is None:
                new_json = dump_json(new)
            canonical = encode(seq, uuid, system, poam_id, field, old_json, new_json, why)
            # row_hash(), inlined: this loop runs once per change-log row
            digest = sha256(f"{prev}\n{canonical}".encode()).hexdigest()
            if collect:
                out.append(
                    ChangeRow(
                        seq=seq,
                        at=at,
                        item_uuid=uuid,
                        system=system,
                        poam_id=poam_id,
                        field=field,
                        old_value=old,
                        new_value=new,
                        source=source,
                        actor=actor,
                        reason=why,
                        batch_id=batch_id,
                        prev_hash=prev,
                        hash=digest,
                    )
                )
            params.append(
                (
                    seq,
                    at_text,
                    uuid,
                    system,
                    poam_id,
                    field,
                    old_json,
                    new_json,
                    source,
                    actor,
                    why,
                    batch_id,
                    prev,
                    digest,
                )
            )
            prev = digest
        if not params:
            return out
        # straight to the driver: SQLAlchemy's per-row parameter handling would cost more than
        # hashing (10,000 imported items make about 170,000 rows); COPY on PostgreSQL
        if self._postgres:
            self._copy_log_rows(params)
        else:
            self._conn.exec_driver_sql(self._insert_log_sql(), params)
        if has_head:
            self._conn.execute(
                sa.update(chain_head).where(chain_head.c.id == _HEAD_ID).values(seq=seq, hash=prev)
            )
        else:
            self._conn.execute(sa.insert(chain_head).values(id=_HEAD_ID, seq=seq, hash=prev))
        return out

    def _copy_log_rows(self, params: Sequence[tuple[Any, ...]]) -> None:
        columns = ", ".join(c.name for c in change_log.columns)
        # psycopg 3's COPY, on this transaction's own connection
        raw: Any = self._conn.connection.dbapi_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {change_log.name} ({columns}) FROM STDIN") as copy,
        ):
            for row in params:
                copy.write_row(row)

    def _insert_log_sql(self) -> str:
        # built from our own table definition only: no outside text reaches this SQL
        columns = [c.name for c in change_log.columns]
        mark = "?" if self._conn.dialect.paramstyle == "qmark" else "%s"
        return (
            f"INSERT INTO {change_log.name} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join([mark] * len(columns))})"
        )


def _broken(checked: int, seq: int | None, message: str) -> VerifyResult:
    return VerifyResult(ok=False, rows_checked=checked, first_bad_seq=seq, message=message)


def _lenient_json(text: str) -> JsonValue:
    """A stored JSON value; text that is not JSON (edited by hand) is shown as it is."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _change_row(r: sa.Row[Any]) -> ChangeRow:
    return ChangeRow(
        seq=int(r.seq),
        at=parse_at(r.at),
        item_uuid=r.item_uuid,
        system=r.system,
        poam_id=r.poam_id,
        field=r.field,
        old_value=_lenient_json(r.old_value),
        new_value=_lenient_json(r.new_value),
        source=r.source,
        actor=r.actor,
        reason=r.reason,
        batch_id=r.batch_id,
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


def _link_row(r: sa.Row[Any]) -> LinkRow:
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


def _migrate_retrying_locks(engine: sa.Engine, attempts: int = 6) -> None:
    """Migrate; on SQLite, retry briefly when another process holds the lock.

    Two processes opening a brand-new SQLite file at once can meet "database is locked"
    straight away (switching the file to WAL takes an exclusive lock that the busy timeout does
    not always wait for); the second one simply tries again a moment later.
    """
    for attempt in range(1, attempts + 1):
        try:
            migrate(engine)
            return
        except sa.exc.OperationalError as exc:
            locked = engine.dialect.name == "sqlite" and "locked" in str(exc.orig)
            if not locked or attempt == attempts:
                raise
            time.sleep(0.1 * attempt)


class Store:
    """The canonical record. Open with :meth:`open`; write inside :meth:`begin`."""

    def __init__(self, engine: sa.Engine, *, safe_url: str) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self.url = safe_url  # without any password
        self._local = threading.local()
        self.clock: Callable[[], datetime] = _now

    @classmethod
    def open(cls, url: str) -> Store:
        """Open the database at ``url`` and migrate its schema to the newest revision."""
        safe = _safe_url(url)
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigError(f"{safe} is not a database URL", hint=_URL_HINT) from None
        if parsed.drivername in ("postgresql", "postgres"):
            # psycopg 3 is the driver we ship; SQLAlchemy would look for psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"unsupported database {safe}: poam-sync stores its record in SQLite or PostgreSQL",
                hint=_URL_HINT,
            )
        try:
            engine = create_engine(parsed)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise ConfigError(
                f"cannot use the database URL {safe}: {_scrub(str(exc), parsed.password)}",
                hint=_URL_HINT,
            ) from None
        try:
            _migrate_retrying_locks(engine)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            detail = _scrub(str(exc.orig).strip().splitlines()[0], parsed.password)
            raise StoreError(
                f"cannot open the database {safe}: {detail}",
                hint="check that the server is running and the URL is right; for SQLite, that "
                "the directory exists and is writable (--db or POAM_SYNC_DATABASE_URL)",
            ) from None
        except CommandError as exc:
            engine.dispose()
            raise StoreError(
                f"cannot migrate the database {safe}: {exc}",
                hint="the database was probably written by a newer poam-sync; upgrade poam-sync",
            ) from None
        return cls(engine, safe_url=safe)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def begin(self) -> Iterator[StoreTx]:
        """One write transaction: committed when the block ends, rolled back on an exception."""
        if getattr(self._local, "writing", False):
            # a second writer in the same thread would wait forever for the first one's lock
            raise StoreError(
                "a write transaction of this store is already open in this thread",
                hint="pass the open StoreTx along instead of calling begin() again",
            )
        self._local.writing = True
        try:
            with self._database_errors(), self._writer.begin() as conn:
                yield StoreTx(conn, clock=self.clock)
        finally:
            self._local.writing = False

    @contextmanager
    def read(self) -> Iterator[StoreTx]:
        """A transaction for reading only: one consistent view, without taking the write lock.

        On SQLite, ``begin()`` holds the database's write lock for the whole block; use this
        for long reads (planning a sync cycle, reports) so that writers are not kept waiting.
        Writing through it is not supported.
        """
        with self._database_errors(), self._engine.connect() as conn, conn.begin():
            yield StoreTx(conn, clock=self.clock)

    @contextmanager
    def _database_errors(self) -> Iterator[None]:
        """A failing database (connection lost, locked file, full disk) as a StoreError: the
        transaction is rolled back, and the caller decides (the engine retries the item)."""
        try:
            yield
        except sa.exc.DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(
                f"database error on {self.url}: {detail}",
                hint="the change was rolled back; check the database and run again",
            ) from exc

    def items(self, system: str | None = None) -> list[PoamItem]:
        with self.read() as tx:
            return tx.items(system)

    def item(self, system: str, poam_id: str) -> PoamItem:
        with self.read() as tx:
            found = tx.get(system, poam_id)
        if found is None:
            raise ItemNotFound(
                f"no item {poam_id!r} in system {system!r}",
                hint="list the items with: poam-sync items list",
            )
        return found

    def find(self, poam_id: str) -> list[PoamItem]:
        with self.read() as tx:
            return tx.find(poam_id)

    def log(self, *, item_uuid: str | None = None, limit: int | None = None) -> list[ChangeRow]:
        with self.read() as tx:
            return tx.log(item_uuid=item_uuid, limit=limit)

    def verify_log(self) -> VerifyResult:
        with self.read() as tx:
            return tx.verify_log()
