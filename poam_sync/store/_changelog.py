"""The change log: appending hash-chained rows, reading them back, and verifying the chain.

Appends are serialized so that the chain stays linear with several writers: SQLite write
transactions start with ``BEGIN IMMEDIATE`` (one writer at a time); on PostgreSQL the first write
of a transaction takes ``pg_advisory_xact_lock(CHAIN_LOCK_KEY)``, held until commit, before it
reads the chain head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from poam_sync.errors import ChainBroken, ItemNotFound
from poam_sync.model import JsonValue
from poam_sync.store._chain import (
    GENESIS,
    canonical_row,
    format_at,
    parse_at,
    row_encoder,
    row_hash,
)
from poam_sync.store._engine import CHAIN_LOCK_KEY
from poam_sync.store._rows import ChainPoint, ChangeRow, LogQuery, StoredLogRow, VerifyResult
from poam_sync.store._schema import StoredValue, chain_head, change_log, dump_json
from poam_sync.store._schema import items as items_t
from poam_sync.store._tx import TxBase

_HEAD_ID = 1


# one change-log row to append: item_uuid, system, poam_id, field, old value, new value, and the
# two values' canonical JSON text when already known (None: encoded on append)
_Entry = tuple[str, str, str, str, StoredValue, StoredValue, str | None, str | None]
# one row's parameters for the driver: seq, then text columns (some of them NULL)
_LogParams = tuple[int | str | None, ...]


class ChangeLogTx(TxBase):
    """The change-log part of a store transaction."""

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

    def log_page(self, query: LogQuery, *, after: int = 0, size: int = 1000) -> list[ChangeRow]:
        """Up to ``size`` rows matching ``query`` with a sequence number above ``after``, oldest
        first: :meth:`Store.iter_log` pages through these by sequence (keyset), so a large log
        is read a page at a time on every database."""
        select = _matching(sa.select(change_log).where(change_log.c.seq > after), query)
        select = select.order_by(change_log.c.seq).limit(size)
        return [_change_row(r) for r in self._conn.execute(select)]

    def stream_log(self, query: LogQuery) -> Generator[StoredLogRow]:
        """The rows ``query`` asks for, oldest first, as stored (values as their canonical JSON
        text, as hashed): one query in this transaction's snapshot, fetched in batches (a
        server-side cursor on PostgreSQL), so memory stays flat on any log size."""
        c = change_log.c
        select = _matching(sa.select(*_HASHED_COLUMNS, c.prev_hash, c.hash), query)
        result = self._conn.execution_options(yield_per=5000).execute(select.order_by(c.seq))
        try:
            for row in result:
                yield cast("StoredLogRow", tuple(row))
        finally:
            result.close()

    def last_seqs(self, query: LogQuery, count: int) -> int:
        """The sequence number just before the last ``count`` rows matching ``query`` (0 when
        there are fewer): where to start for "the newest N"."""
        select = _matching(sa.select(change_log.c.seq), query)
        select = select.order_by(change_log.c.seq.desc()).offset(count).limit(1)
        found = self._conn.execute(select).scalar_one_or_none()
        return int(found) if found is not None else 0

    def verify_log(self, *, start: ChainPoint | None = None) -> VerifyResult:
        """Recompute the hash chain from the first row; name the first row that does not fit.

        ``start`` (a checkpoint's head): check only that the log still holds that row with that
        hash, and the rows after it; what comes before was checked when the checkpoint was made.
        """
        head = self._conn.execute(
            sa.select(chain_head.c.seq, chain_head.c.hash).where(chain_head.c.id == _HEAD_ID)
        ).one_or_none()
        expected_seq = 1
        prev = GENESIS
        checked = 0
        if start is not None and start.seq > 0:
            lost = self._holds(start)
            if lost is not None:
                return _broken(0, start.seq, lost)
            expected_seq, prev = start.seq + 1, start.hash
        c = change_log.c
        result = self._conn.execution_options(yield_per=5000).execute(
            sa.select(*_HASHED_COLUMNS, c.prev_hash, c.hash)
            .where(c.seq >= expected_seq)
            .order_by(c.seq)
        )
        try:
            for row in result:
                seq, prev_hash, digest = row[0], row[12], row[13]
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
                elif digest != row_hash(prev, _canonical(tuple(row)[:12])):
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

    def chain_point(self) -> ChainPoint:
        """The log's last row and row count, as a checkpoint records them; ``ChainBroken``
        when the chain head record does not match the last row (run ``log verify``)."""
        c = change_log.c
        count, last = self._conn.execute(
            sa.select(sa.func.count(), sa.func.max(c.seq)).select_from(change_log)
        ).one()
        head = self._conn.execute(
            sa.select(chain_head.c.seq, chain_head.c.hash).where(chain_head.c.id == _HEAD_ID)
        ).one_or_none()
        if last is None:
            if head is not None:
                raise ChainBroken("the change log is empty but its chain head names a last row")
            return ChainPoint(seq=0, hash=GENESIS, rows=0, at=None)
        row = self._conn.execute(sa.select(c.hash, c.at).where(c.seq == last)).one()
        if head is None or (int(head.seq), str(head.hash)) != (int(last), str(row.hash)):
            raise ChainBroken(
                "the chain head record does not match the last row of the log", seq=int(last)
            )
        return ChainPoint(seq=int(last), hash=str(row.hash), rows=int(count), at=parse_at(row.at))

    def log_row(self, seq: int) -> ChangeRow | None:
        """The change-log row ``seq``, if the log holds it."""
        found = self._conn.execute(
            sa.select(change_log).where(change_log.c.seq == seq)
        ).one_or_none()
        return _change_row(found) if found is not None else None

    def _holds(self, point: ChainPoint) -> str | None:
        """Why the log does not hold ``point`` (row ``seq``, unaltered, with that hash); None
        when it does."""
        c = change_log.c
        found = self._conn.execute(
            sa.select(*_HASHED_COLUMNS, c.prev_hash, c.hash).where(c.seq == point.seq)
        ).one_or_none()
        if found is None:
            last = self._conn.execute(sa.select(sa.func.max(c.seq))).scalar_one_or_none() or 0
            return (
                f"the log ends at row {last}, but the checkpoint holds row {point.seq}: "
                f"rows {last + 1} to {point.seq} were removed"
                if last < point.seq
                else f"row {point.seq} of the checkpoint is missing from the log"
            )
        if found.hash != point.hash:
            return (
                f"row {point.seq} no longer has the checkpointed hash: the log was rewritten "
                f"at or before row {point.seq}"
            )
        if row_hash(found.prev_hash, _canonical(tuple(found)[:12])) != point.hash:
            return f"row {point.seq} was altered: its content no longer matches its hash"
        return None

    def log_event(
        self,
        *,
        item_uuid: str,
        field: str,
        old: StoredValue,
        new: StoredValue,
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

    # --------------------------------------------------------------- internal
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
        params: list[_LogParams] = []
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
        self._insert_rows(change_log, params)
        if has_head:
            self._conn.execute(
                sa.update(chain_head).where(chain_head.c.id == _HEAD_ID).values(seq=seq, hash=prev)
            )
        else:
            self._conn.execute(sa.insert(chain_head).values(id=_HEAD_ID, seq=seq, hash=prev))
        return out


_c = change_log.c
# the hashed columns, in the order _canonical takes them
_HASHED_COLUMNS = (
    _c.seq,
    _c.at,
    _c.item_uuid,
    _c.system,
    _c.poam_id,
    _c.field,
    _c.old_value,
    _c.new_value,
    _c.source,
    _c.actor,
    _c.reason,
    _c.batch_id,
)


def _canonical(values: Sequence[Any]) -> str:
    """:func:`canonical_row` of a row's :data:`_HASHED_COLUMNS` values, as stored."""
    seq, at, item_uuid, system, poam_id, field, old, new, source, actor, reason, batch = values
    return canonical_row(
        seq=seq,
        at=at,
        item_uuid=item_uuid,
        system=system,
        poam_id=poam_id,
        field=field,
        old_json=old,
        new_json=new,
        source=source,
        actor=actor,
        reason=reason,
        batch_id=batch,
    )


def _broken(checked: int, seq: int | None, message: str) -> VerifyResult:
    return VerifyResult(ok=False, rows_checked=checked, first_bad_seq=seq, message=message)


def _lenient_json(text: str) -> JsonValue:
    """A stored JSON value; text that is not JSON (edited by hand) is shown as it is."""
    try:
        value: JsonValue = json.loads(text)
    except ValueError:
        return text
    return value


_S = TypeVar("_S", bound=sa.Select[Any])


def _matching(select: _S, query: LogQuery) -> _S:
    """``select`` narrowed to the rows ``query`` asks for."""
    if query.item_uuid is not None:
        select = select.where(change_log.c.item_uuid == query.item_uuid)
    if query.system is not None:
        select = select.where(change_log.c.system == query.system)
    if query.fields:
        select = select.where(change_log.c.field.in_(sorted(query.fields)))
    if query.sources:
        select = select.where(change_log.c.source.in_(sorted(query.sources)))
    if query.actors:
        select = select.where(change_log.c.actor.in_(sorted(query.actors)))
    if query.since is not None:
        select = select.where(change_log.c.at >= format_at(query.since))
    if query.until is not None:
        select = select.where(change_log.c.at < format_at(query.until))
    return select


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
