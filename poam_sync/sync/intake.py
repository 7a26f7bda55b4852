"""Pulled records as the planner's inputs, one record at a time.

Between the pulls and the plan every pulled record is checked on its own: its values must be
canonical values the model accepts. A record that is not (or whose check raises anything at all)
is left out of this cycle with an error naming the item, the connector, the remote key and the
field; its item is not planned this cycle, and the engine fetches the record again next cycle.
Nothing one record holds stops the others.

The fields a connector could not read (``RemoteRecord.problems``: an unmapped status, priority
or user) are not in the record's ``fields``, so the canonical value stays and nothing is pushed
for them; here they become *read* problems of the linked item, and a read problem whose field
now reads fine is cleared. The executor stores both in the item's own transaction
(:func:`record_reads`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from poam_sync.connectors.base import FieldProblem, RemoteRecord
from poam_sync.model import PoamItem
from poam_sync.sync.results import ItemError, Unreadable
from poam_sync.sync.values import from_sync

if TYPE_CHECKING:
    from poam_sync.store import StoreTx

log = structlog.get_logger(__name__)

# What a record that is no item yet is checked against (its import fills in the rest).
_PROBE = PoamItem(poam_id="probe", system="probe", uuid="00000000-0000-4000-8000-000000000000")


@dataclass(frozen=True, slots=True)
class ReadNews:
    """What one pulled record says about its item's read problems at one connector."""

    connector: str
    record: RemoteRecord
    report: tuple[FieldProblem, ...]  # fields it could not read
    clear: tuple[str, ...]  # fields with a read problem that now read fine


@dataclass
class Intake:
    """The pulled records the planner may use, and what was learned on the way."""

    pulled: dict[str, dict[str, RemoteRecord]]  # connector -> remote id -> record
    reads: dict[str, list[ReadNews]] = field(default_factory=dict)  # by item uuid
    errors: list[ItemError] = field(default_factory=list)
    skip: set[str] = field(default_factory=set)  # item uuids not planned this cycle


def describe(exc: BaseException) -> str:
    """An exception for a person and the problems table: its type and text, no traceback."""
    text = " ".join(str(exc).split())
    if len(text) > 500:
        text = text[:497] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_record(record: RemoteRecord, item: PoamItem | None) -> None:
    """Raise unless every value of ``record`` is one the canonical model accepts."""
    from_sync(item or _PROBE, record.fields)


def _bad_field(record: RemoteRecord, item: PoamItem | None) -> str | None:
    """The first field the model refuses (only looked for once a record failed its check)."""
    for name, value in record.fields.items():
        try:
            from_sync(item or _PROBE, {name: value})
        except Exception:  # noqa: BLE001 - any refusal names the field
            return name
    return None


def take_in(
    pulled: Mapping[str, Mapping[str, RemoteRecord]],
    links: Mapping[str, Mapping[str, str]],
    items: Mapping[str, PoamItem],
    open_reads: Mapping[tuple[str, str], frozenset[str]],
) -> Intake:
    """Check each pulled record on its own.

    ``links``: per connector, remote id -> item uuid; ``open_reads``: (item uuid, connector) ->
    the fields with an active read problem there."""
    intake = Intake({name: {} for name in pulled})
    for name, records in pulled.items():
        by_remote = links.get(name, {})
        kept = intake.pulled[name]
        for remote_id, record in records.items():
            item_uuid = by_remote.get(remote_id)
            if item_uuid is None and record.stamp is not None and record.stamp.item_uuid in items:
                item_uuid = record.stamp.item_uuid  # ours, not linked yet (adopted when planned)
            item = items.get(item_uuid) if item_uuid is not None else None
            try:
                check_record(record, item)
            except Exception as exc:  # noqa: BLE001 - one record never stops the cycle
                _refused(intake, name, record, item, exc)
                continue
            kept[remote_id] = record
            if item is None:
                continue  # an import: its problems are recorded with the new item
            stale = open_reads.get((item.uuid, name), frozenset())
            clear = tuple(sorted(f for f in stale if f in record.fields))
            if record.problems or clear:
                news = ReadNews(name, record, record.problems, clear)
                intake.reads.setdefault(item.uuid, []).append(news)
    return intake


def _refused(
    intake: Intake, name: str, record: RemoteRecord, item: PoamItem | None, exc: Exception
) -> None:
    bad = _bad_field(record, item)
    poam_id = item.poam_id if item is not None else record.key
    log.exception(
        "sync.record_refused",
        connector=name,
        remote_key=record.key,
        poam_id=poam_id,
        field=bad,
        error=describe(exc),
    )
    if item is not None:
        intake.skip.add(item.uuid)
    where = f" ({bad})" if bad else ""
    intake.errors.append(
        ItemError(
            poam_id,
            name,
            f"{name} {record.key}{where} could not be read: {describe(exc)}",
            item_uuid=item.uuid if item is not None else None,
            remote_id=record.remote_id,
            remote_key=record.key,
            field=bad,
        )
    )


def record_reads(tx: StoreTx, item_uuid: str, poam_id: str, news: ReadNews) -> list[Unreadable]:
    """In the item's transaction (apply.py): store what a pulled record could not tell (read
    problems), clear what it now tells; returns the problems new this time (a known one is only
    refreshed: reported once)."""
    for name in news.clear:
        tx.clear_problems(item_uuid, news.connector, name, kind="read")
    fresh: list[Unreadable] = []
    for p in news.report:
        new = tx.report_problem(
            item_uuid=item_uuid,
            connector=news.connector,
            field=p.field,
            code=p.code,
            message=p.message,
            hint=p.hint,
            kind="read",
            remote_id=news.record.remote_id,
            remote_key=news.record.key,
        )
        if new:
            fresh.append(
                Unreadable(
                    poam_id, news.connector, news.record.key, p.field, p.code, p.message, p.hint
                )
            )
    return fresh
