"""Items that failed in a cycle: kept as ``item_failed`` problems, and retried.

An item whose mapping, planning or applying failed rolled back alone; the cycle went on and its
connectors' watermarks move on too. So that no remote change is lost, each failure is recorded as
an ``item_failed`` problem (kind ``item``) naming the remote record involved; at the start of the
next cycle the engine fetches those records again (``connector.get``) and plans them with the
pulled ones. Once the item goes through, its ``item_failed`` problems are cleared.

A failure that cannot even be recorded (the store itself is failing) keeps the watermark of the
connectors concerned, as before: their changes are pulled again instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from poam_sync.connectors.base import Connector, RemoteRecord
from poam_sync.errors import RecordGone
from poam_sync.sync.intake import describe
from poam_sync.sync.results import ItemError

if TYPE_CHECKING:
    from poam_sync.store import ProblemRow, Store

log = structlog.get_logger(__name__)

ITEM_FAILED = "item_failed"
ENGINE = "poam-sync"
"""The connector named by a failure that concerns no remote record (planning a local change)."""

_Key = tuple[str | None, str, str | None]  # item uuid, connector, remote id


@dataclass
class Retries:
    """The failures of earlier cycles still open, as this cycle found them."""

    open: list[ProblemRow] = field(default_factory=list)
    pending: set[_Key] = field(default_factory=set)  # could not be fetched again: kept open

    @staticmethod
    def key(p: ProblemRow) -> _Key:
        return (p.item_uuid, p.connector, p.remote_id)


def load_retries(store: Store) -> Retries:
    with store.read() as tx:
        rows = [p for p in tx.problems(kind="item") if p.code == ITEM_FAILED]
    return Retries(rows)


def refetch(
    retries: Retries,
    connectors: Mapping[str, Connector],
    pulled: dict[str, dict[str, RemoteRecord]],
) -> None:
    """Fetch again the records behind open failures, into ``pulled`` (active connectors only)."""
    for p in retries.open:
        records = pulled.get(p.connector)
        if records is None or p.remote_id is None or p.remote_id in records:
            continue
        bound = log.bind(connector=p.connector, remote_key=p.remote_key, poam_id=p.poam_id)
        try:
            records[p.remote_id] = connectors[p.connector].get(p.remote_id)
        except RecordGone:
            bound.info("sync.retry_gone")  # nothing left to retry; its link breaks on a push
        except Exception as exc:  # noqa: BLE001 - one record never stops the cycle
            bound.warning("sync.retry_fetch_failed", error=describe(exc))
            retries.pending.add(Retries.key(p))


def _targets(
    e: ItemError,
    links: Mapping[str, Mapping[str, str]],
    pulled: Mapping[str, Mapping[str, RemoteRecord]],
) -> list[tuple[str, str | None, str | None]]:
    """Which remote records a failure concerns: (connector, remote id, remote key)."""
    if e.remote_id is not None and e.connector is not None:
        return [(e.connector, e.remote_id, e.remote_key)]
    found: list[tuple[str, str | None, str | None]] = []
    for name, by_item in links.items():
        if e.connector is not None and name != e.connector:
            continue
        remote_id = by_item.get(e.item_uuid) if e.item_uuid is not None else None
        if remote_id is not None and remote_id in pulled.get(name, {}):
            found.append((name, remote_id, pulled[name][remote_id].key))
    if not found:
        found.append((e.connector or ENGINE, e.remote_id, e.remote_key))
    return found


def record_failures(
    store: Store,
    errors: Sequence[ItemError],
    links: Mapping[str, Mapping[str, str]],
    pulled: Mapping[str, Mapping[str, RemoteRecord]],
) -> tuple[set[_Key], set[str | None]]:
    """Store each failure as an ``item_failed`` problem, each in its own transaction.

    ``links``: per connector, item uuid -> remote id. Returns the keys recorded, and the
    connectors whose failures could not be recorded (None among them: all connectors)."""
    recorded: set[_Key] = set()
    unrecorded: set[str | None] = set()
    for e in errors:
        targets = _targets(e, links, pulled)
        try:
            with store.begin() as tx:
                for name, remote_id, remote_key in targets:
                    tx.report_problem(
                        item_uuid=e.item_uuid,
                        connector=name,
                        field=e.field,
                        code=ITEM_FAILED,
                        message=e.message,
                        kind="item",
                        remote_id=remote_id,
                        remote_key=remote_key,
                    )
        except Exception as exc:  # noqa: BLE001 - then the watermark stays instead
            log.error("sync.failure_not_recorded", poam_id=e.poam_id, error=describe(exc))
            unrecorded.add(e.connector)
            continue
        recorded.update((e.item_uuid, name, remote_id) for name, remote_id, _k in targets)
    return recorded, unrecorded


def clear_recovered(
    store: Store,
    retries: Retries,
    failed_now: Iterable[ItemError],
    recorded: set[_Key],
    active: Iterable[str],
) -> int:
    """Clear the open failures whose item went through this cycle; returns how many."""
    again = {e.item_uuid for e in failed_now if e.item_uuid is not None}
    names = {*active, ENGINE}
    done = [
        p
        for p in retries.open
        if p.connector in names
        and Retries.key(p) not in retries.pending
        and Retries.key(p) not in recorded
        and (p.item_uuid is None or p.item_uuid not in again)
    ]
    if not done:
        return 0
    with store.begin() as tx:
        for p in done:
            tx.clear_problems(p.item_uuid, p.connector, kind="item", remote_id=p.remote_id)
    for p in done:
        log.info("sync.item_recovered", poam_id=p.poam_id, connector=p.connector)
    return len(done)
