"""Remote creates: claimed, batched, crash-safe; the executor's (apply.py) first writes.

Per connector, in batches of :data:`CREATE_BATCH` (the connectors' batches in turn, their
remote calls under way at once in the executor's lanes, sync/lanes.py):

1. one transaction claims each create (sync/claims.py): a create another process claimed is
   left to it; a claim whose owner is gone is taken over;
2. a create taken over, or one whose claim was pending when the cycle planned, looks its
   record up by stamp first (a create that happened before a crash is linked, not repeated);
3. the rest are created in one ``create_many`` call (steps 2 and 3 in a lane);
4. back in the calling thread, in the order the batches were claimed, one transaction links
   the new records, sets their baselines and finishes their claims (one by one if that
   fails: a record left unlinked keeps its pending claim and is found by its stamp next
   cycle).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import TYPE_CHECKING, TypeVar

import structlog

from poam_sync.connectors.base import Connector, RemoteRecord, Stamp, SyncValue, WriteResult
from poam_sync.model import PoamItem
from poam_sync.sync.actions import NOTES_BASELINE, CreateRemote, ItemPlan, Plan
from poam_sync.sync.claims import CLAIM_TIMEOUT, Claimant, claim_batch
from poam_sync.sync.echoes import link_row, settled_version
from poam_sync.sync.intake import describe
from poam_sync.sync.lanes import Lanes
from poam_sync.sync.results import CycleReport
from poam_sync.sync.values import to_sync

if TYPE_CHECKING:
    from poam_sync.store import Store, StoreTx

log = structlog.get_logger(__name__)
CREATE_BATCH = 50

_Created = tuple[ItemPlan, CreateRemote, WriteResult]
_Want = tuple[ItemPlan, CreateRemote]
T = TypeVar("T")


@dataclass
class _Outcome:
    """What one batch's remote calls did, for the calling thread to record."""

    found: list[tuple[ItemPlan, RemoteRecord]] = field(default_factory=list)
    failed: list[tuple[ItemPlan, Exception]] = field(default_factory=list)
    created: list[tuple[_Want, WriteResult | Exception]] = field(default_factory=list)


def _interleaved(batches: Sequence[Sequence[T]]) -> Iterator[T]:
    """One batch of each connector in turn (round robin), so that all hosts work at once."""
    for row in zip_longest(*batches):
        yield from (b for b in row if b is not None)


Fail = Callable[[PoamItem, str | None, Exception], None]
Adopt = Callable[[ItemPlan, str, RemoteRecord, PoamItem], None]


@dataclass
class CreateStep:
    """The creates of one cycle's plan. ``fail`` and ``adopt`` are the executor's."""

    store: Store
    connectors: Mapping[str, Connector]
    report: CycleReport
    claimant: Claimant
    now: Callable[[], datetime]
    fail: Fail
    adopt: Adopt
    claim_timeout: timedelta = CLAIM_TIMEOUT

    def run(self, the_plan: Plan, items: Mapping[str, PoamItem], lanes: Lanes) -> set[str]:
        """Create what the plan says; returns item uuids whose create failed.

        Each batch is claimed here (one transaction), its remote calls run in ``lanes``, and
        what they made is linked here, batch after batch in the order they were claimed; at
        most ``lanes.window`` batches are claimed and not yet linked at any time."""
        failed: set[str] = set()
        wanted: dict[str, list[_Want]] = defaultdict(list)
        for item_plan in the_plan.items:
            for action in item_plan.actions:
                if isinstance(action, CreateRemote):
                    wanted[action.connector].append((item_plan, action))
        batches = [
            [
                (name, creates[start : start + CREATE_BATCH])
                for start in range(0, len(creates), CREATE_BATCH)
            ]
            for name, creates in wanted.items()
        ]
        pending: deque[tuple[str, list[ItemPlan], Future[_Outcome]]] = deque()
        for name, chunk in _interleaved(batches):  # every connector's host kept busy
            claimed = self._claim(name, chunk, items, lanes)
            if claimed is not None:
                remote, mine = claimed
                pending.append((name, mine, lanes.submit(remote)))
            while len(pending) >= lanes.window:
                failed |= self._settle(*pending.popleft(), items)
        while pending:
            failed |= self._settle(*pending.popleft(), items)
        return failed

    def _claim(
        self,
        name: str,
        chunk: Sequence[_Want],
        items: Mapping[str, PoamItem],
        lanes: Lanes,
    ) -> tuple[Callable[[], _Outcome], list[ItemPlan]] | None:
        """Claim one batch (committed before any remote call); the remote calls it needs, to
        run in a lane, or None when none is left to this process."""
        connector = self.connectors[name]
        stamps = {p.item_uuid: Stamp(p.system, p.poam_id, p.item_uuid) for p, _a in chunk}
        with self.store.begin() as tx:
            claimed = claim_batch(
                tx,
                name,
                [(u, s.token) for u, s in stamps.items()],
                self.claimant,
                now=self.now(),
                timeout=self.claim_timeout,
            )
        for item_uuid, why in claimed.elsewhere.items():
            self.report.claimed_elsewhere[name] += 1
            log.info(
                "sync.create_claimed_elsewhere",
                cycle_id=self.report.cycle_id,
                connector=name,
                poam_id=items[item_uuid].poam_id,
                why=why,
            )
        recovered = set(claimed.recovered)
        mine = recovered | set(claimed.fresh)
        look_first = [
            (p, a)
            for p, a in chunk
            if p.item_uuid in mine and (p.item_uuid in recovered or a.check_stamp_first)
        ]
        create_now = [
            (p, a)
            for p, a in chunk
            if p.item_uuid in mine and p.item_uuid not in recovered and not a.check_stamp_first
        ]
        if not look_first and not create_now:
            return None

        def remote() -> _Outcome:
            """In a lane: look up by stamp what may exist, then create the rest at once."""
            outcome = _Outcome()
            to_create = list(create_now)
            with lanes.slot(name):
                for item_plan, action in look_first:
                    try:
                        found = connector.find_by_stamp(stamps[item_plan.item_uuid])
                    except Exception as exc:  # noqa: BLE001 - one item never stops the cycle
                        outcome.failed.append((item_plan, exc))
                        continue
                    if found is not None:
                        outcome.found.append((item_plan, found))
                    else:
                        to_create.append((item_plan, action))
                if to_create:
                    results = connector.create_many(
                        [(stamps[p.item_uuid], a.fields) for p, a in to_create]
                    )
                    outcome.created = list(zip(to_create, results, strict=True))
            return outcome

        return remote, [p for p, _a in (*look_first, *create_now)]

    def _settle(
        self,
        name: str,
        mine: Sequence[ItemPlan],
        future: Future[_Outcome],
        items: Mapping[str, PoamItem],
    ) -> set[str]:
        """In the calling thread: adopt what was found, link what was made, report the rest;
        returns the item uuids that failed."""
        failed: set[str] = set()
        try:
            outcome = future.result()
        except Exception as raised:  # noqa: BLE001 - a batch that raised fails its items alone
            # their claims stay pending: the next cycle looks each up by its stamp first
            log.warning("sync.create_batch_failed", connector=name, error=describe(raised))
            outcome = _Outcome(failed=[(p, raised) for p in mine])
        for item_plan, error in outcome.failed:
            failed.add(item_plan.item_uuid)
            self.fail(items[item_plan.item_uuid], name, error)
        for item_plan, found in outcome.found:
            item = items[item_plan.item_uuid]
            try:
                self.adopt(item_plan, name, found, item)
            except Exception as exc:  # noqa: BLE001 - one item never stops the cycle
                failed.add(item_plan.item_uuid)
                self.fail(item, name, exc)
        done: list[_Created] = []
        for (item_plan, action), result in outcome.created:
            if isinstance(result, Exception):
                failed.add(item_plan.item_uuid)
                self.fail(items[item_plan.item_uuid], name, result)
            else:
                done.append((item_plan, action, result))
        self._record_created(name, done, items)
        return failed

    def _record_created(
        self, name: str, done: Sequence[_Created], items: Mapping[str, PoamItem]
    ) -> None:
        """Link a batch of new remote records in one transaction (one by one if that fails;
        a record left unlinked keeps its claim pending and is found by its stamp next cycle)."""

        def record(tx: StoreTx, batch: Sequence[_Created]) -> None:
            base: dict[str, dict[str, SyncValue]] = {}
            for item_plan, action, result in batch:
                failed_fields = {p.field for p in result.problems}
                values = {k: v for k, v in action.fields.items() if k not in failed_fields}
                values[NOTES_BASELINE] = []
                base[item_plan.item_uuid] = values
            # the version read back with each create is remembered when the record holds just
            # what we wrote: the next pull leaves it out (an echo, sync/echoes.py)
            links = [
                link_row(p.item_uuid, name, r.record, settled_version(r.record, base[p.item_uuid]))
                for p, _a, r in batch
            ]
            tx.add_links(links)
            for item_plan, _action, result in batch:
                for p in result.problems:
                    tx.report_problem(
                        item_uuid=item_plan.item_uuid,
                        connector=name,
                        field=p.field,
                        code=p.code,
                        message=p.message,
                    )
            tx.set_many_baselines(name, base)
            tx.finish_claims(name, [p.item_uuid for p, _a, _r in batch])

        def count(batch: Sequence[_Created]) -> None:
            for _p, _a, result in batch:
                self.report.created[name] += 1
                self.report.problems += len(result.problems)

        try:
            with self.store.begin() as tx:
                record(tx, done)
            count(done)
            return
        except Exception as exc:  # noqa: BLE001 - one by one then, so one item fails alone
            log.warning("sync.batch_link_failed", connector=name, error=describe(exc))
        for one in done:
            try:
                with self.store.begin() as tx:
                    record(tx, [one])
                count([one])
            except Exception as exc:  # noqa: BLE001 - one item never stops the cycle
                self.fail(items[one[0].item_uuid], name, exc)


def agreed_baselines(
    connector: Connector, item: PoamItem, record: RemoteRecord
) -> dict[str, SyncValue]:
    """The baselines of a record linked to ``item`` after the fact: only what already matches
    (the canonical record wins the rest on the next cycle), and the notes it has."""
    local = to_sync(item)
    base: dict[str, SyncValue] = {
        k: v
        for k, v in record.fields.items()
        if k in connector.synced_fields and connector.project(k, local.get(k)) == v
    }
    base[NOTES_BASELINE] = [n.id for n in record.notes]
    return base
