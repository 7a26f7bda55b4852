"""Remote creates: claimed, batched, crash-safe; the executor's (apply.py) first writes.

Per connector, in batches of :data:`CREATE_BATCH`:

1. one transaction claims each create (sync/claims.py): a create another process claimed is
   left to it; a claim whose owner is gone is taken over;
2. a create taken over, or one whose claim was pending when the cycle planned, looks its
   record up by stamp first (a create that happened before a crash is linked, not repeated);
3. the rest are created in one ``create_many`` call;
4. one transaction links the new records, sets their baselines and finishes their claims
   (one by one if that fails: a record left unlinked keeps its pending claim and is found by
   its stamp next cycle).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from poam_sync.connectors.base import Connector, RemoteRecord, Stamp, SyncValue, WriteResult
from poam_sync.model import PoamItem
from poam_sync.store import LinkRow
from poam_sync.sync.actions import NOTES_BASELINE, CreateRemote, ItemPlan, Plan
from poam_sync.sync.claims import CLAIM_TIMEOUT, Claimant, claim_batch
from poam_sync.sync.echoes import settled_version
from poam_sync.sync.intake import describe
from poam_sync.sync.results import CycleReport
from poam_sync.sync.values import to_sync

if TYPE_CHECKING:
    from poam_sync.store import Store, StoreTx

log = structlog.get_logger(__name__)
CREATE_BATCH = 50

_Created = tuple[ItemPlan, CreateRemote, WriteResult]
_Want = tuple[ItemPlan, CreateRemote]
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

    def run(self, the_plan: Plan, items: Mapping[str, PoamItem]) -> set[str]:
        """Create what the plan says; returns item uuids whose create failed."""
        failed: set[str] = set()
        wanted: dict[str, list[_Want]] = defaultdict(list)
        for item_plan in the_plan.items:
            for action in item_plan.actions:
                if isinstance(action, CreateRemote):
                    wanted[action.connector].append((item_plan, action))
        for name, creates in wanted.items():
            for start in range(0, len(creates), CREATE_BATCH):
                failed |= self._batch(name, creates[start : start + CREATE_BATCH], items)
        return failed

    def _batch(self, name: str, chunk: Sequence[_Want], items: Mapping[str, PoamItem]) -> set[str]:
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
        failed: set[str] = set()
        to_create: list[_Want] = []
        for item_plan, action in chunk:
            if item_plan.item_uuid not in mine:
                continue
            if item_plan.item_uuid not in recovered and not action.check_stamp_first:
                to_create.append((item_plan, action))
                continue
            item = items[item_plan.item_uuid]
            try:
                found = connector.find_by_stamp(stamps[item_plan.item_uuid])
                if found is not None:
                    self.adopt(item_plan, name, found, item)
            except Exception as exc:  # noqa: BLE001 - one item never stops the cycle
                failed.add(item_plan.item_uuid)
                self.fail(item, name, exc)
                continue
            if found is None:
                to_create.append((item_plan, action))
        if not to_create:
            return failed
        results = connector.create_many([(stamps[p.item_uuid], a.fields) for p, a in to_create])
        done: list[_Created] = []
        for (item_plan, action), result in zip(to_create, results, strict=True):
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


def link_row(
    item_uuid: str, connector: str, record: RemoteRecord, version: str | None = None
) -> LinkRow:
    """The link to ``record``; ``version``: the remote version it remembers, only one whose
    record holds the baselines (:func:`poam_sync.sync.echoes.settled_version`), else None."""
    return LinkRow(
        item_uuid=item_uuid,
        connector=connector,
        remote_id=record.remote_id,
        remote_key=record.key,
        remote_version=version,
        url=record.url,
    )


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
