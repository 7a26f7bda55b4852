"""Carrying out one cycle's plan: the only part of the sync that writes anywhere.

Order, per the architecture: imports first (each its own transaction), then creates in
batches, then each item on its own: remote writes first, then one database transaction
holding the canonical fields, their change-log rows, the new baselines, link rows and
conflicts. A failing item rolls back alone, whatever it raised: it is listed with its error
(the engine records it as an ``item_failed`` problem and fetches its remote record again next
cycle), and its baselines did not move, so the plan finds the same work again. What the pulls
could not read (:mod:`poam_sync.sync.intake`) is recorded as read problems in the item's own
transaction.

Remote writes run in the executor's lanes (sync/lanes.py): a few threads, each connector held
to its ``max_in_flight``, while this thread does every store write, item after item in the
order they were handed out; with no connector allowing more than one call at a time, all of it
runs in this thread.

Creates (sync/creates.py) are claimed and crash-safe: a claim row, unique per item and
connector, is committed before the remote create, so of two processes only one creates; a crash
between the remote create and the link leaves the claim pending, and the next cycle looks the
record up by its stamp before creating anything (no duplicates, ever).
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from poam_sync.connectors.base import (
    Connector,
    RemoteRecord,
    SyncValue,
    WriteResult,
    as_strings,
)
from poam_sync.errors import PoamSyncError, RecordGone, RemoteError
from poam_sync.model import Note, PoamItem
from poam_sync.sync.actions import (
    NOTES_BASELINE,
    Action,
    AdoptRemote,
    CloseConflict,
    CreateRemote,
    ItemPlan,
    LinkBroken,
    Plan,
    PushField,
    PushNote,
    RecordConflict,
    SetBaseline,
    TakeNote,
    TakeRemote,
)
from poam_sync.sync.claims import CLAIM_TIMEOUT, Claimant
from poam_sync.sync.creates import CreateStep, agreed_baselines
from poam_sync.sync.echoes import (
    link_row,
    remember_pulled,
    remember_pushed,
    remember_quiet,
    settled_version,
)
from poam_sync.sync.intake import ReadNews, describe, record_reads
from poam_sync.sync.lanes import Lanes
from poam_sync.sync.progress import PULL_STEP, ProgressSink, Step
from poam_sync.sync.pushes import PushBatches
from poam_sync.sync.results import CycleReport, ItemError, Unreadable
from poam_sync.sync.rules import due_date_extension
from poam_sync.sync.values import from_sync

if TYPE_CHECKING:
    from poam_sync.store import Store, StoreTx

log = structlog.get_logger(__name__)
#: problem codes of a write that went through all the same (reported, the baseline moves):
#: ``duplicate``, a child record found twice on the remote and left for a person to settle
_WRITTEN_ANYWAY = frozenset({"duplicate"})

Pulled = Mapping[str, Mapping[str, RemoteRecord]]  # connector -> remote id -> record


@dataclass
class _Writes:
    """What one item's remote writes did, for its canonical transaction to record."""

    pushes: dict[str, dict[str, PushField]]  # connector -> field -> the push
    baselines: dict[str, dict[str, SyncValue]] = field(default_factory=lambda: defaultdict(dict))
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)
    cleared: list[tuple[str, str | None]] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)  # connector -> why the link broke
    failed: set[str] = field(default_factory=set)  # connectors whose writes failed
    written_notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    errors: list[ItemError] = field(default_factory=list)  # for the report, in this thread
    pushed: list[str] = field(default_factory=list)  # connectors updated
    results: dict[str, WriteResult] = field(default_factory=dict)  # connector -> its answer

    @classmethod
    def of(cls, actions: Sequence[Action]) -> _Writes:
        pushes: dict[str, dict[str, PushField]] = defaultdict(dict)
        for a in actions:
            if isinstance(a, PushField):
                pushes[a.connector][a.field] = a
        return cls(pushes)


class Executor:
    """Applies one cycle's plan, counting into ``report``.

    ``claimant``: this process as the owner of create claims (sync/claims.py);
    ``claim_timeout``: how old another process's pending claim must be to be taken over.
    """

    def __init__(
        self,
        store: Store,
        connectors: Mapping[str, Connector],
        report: CycleReport,
        *,
        now: Callable[[], datetime],
        progress: ProgressSink | None = None,
        claimant: Claimant | None = None,
        claim_timeout: timedelta = CLAIM_TIMEOUT,
    ) -> None:
        self.store = store
        self.progress = progress
        self.connectors = connectors
        self.claimant = claimant or Claimant.this_process()
        self.claim_timeout = claim_timeout
        self.report = report
        self.cycle_id = report.cycle_id
        self.now = now
        self._lanes: Lanes | None = None  # the remote-write threads, while run() runs
        self._batches: PushBatches | None = None  # pushes several to a call, while run() runs

    def run(
        self,
        the_plan: Plan,
        items: Mapping[str, PoamItem],
        pulled: Pulled,
        stop: threading.Event,
        reads: Mapping[str, Sequence[ReadNews]] | None = None,
    ) -> bool:
        """Imports, creates (batched), then each item on its own. True when stopped early.

        ``reads``: by item uuid, the read problems its pulled records bring or settle."""
        reads = reads or {}
        by_uuid = dict(items)
        not_imported: set[str] = set()
        for item_plan in the_plan.items:
            if item_plan.new_item is not None:
                by_uuid[item_plan.item_uuid] = item_plan.new_item
                if not self.apply_import(item_plan):
                    not_imported.add(item_plan.item_uuid)
        if not_imported:  # nothing more for a record whose import failed: retried next cycle
            kept = tuple(p for p in the_plan.items if p.item_uuid not in not_imported)
            the_plan = replace(the_plan, items=kept)
        creates = CreateStep(
            self.store,
            self.connectors,
            self.report,
            self.claimant,
            self.now,
            self.fail,
            self.adopt,
            self.claim_timeout,
        )
        with Lanes(self.connectors) as lanes:
            self._lanes = lanes
            try:
                failed_items = creates.run(the_plan, by_uuid, lanes)
                skip = failed_items | {p.item_uuid for p in the_plan.items} - set(by_uuid)
                self._batches = PushBatches(self.connectors, the_plan.items, skip, lanes)
                return self._apply_items(the_plan, by_uuid, pulled, stop, reads, failed_items)
            finally:
                self._lanes = self._batches = None

    def _apply_items(
        self,
        the_plan: Plan,
        by_uuid: Mapping[str, PoamItem],
        pulled: Pulled,
        stop: threading.Event,
        reads: Mapping[str, Sequence[ReadNews]],
        failed_items: set[str],
    ) -> bool:
        """Each item on its own. With lanes (sync/lanes.py), an item's remote writes run in
        one while this thread commits the items handed out before it, in their order."""
        lanes = self._lanes
        concurrent = lanes is not None and lanes.workers > 1
        pending: deque[tuple[PoamItem, ItemPlan, Sequence[ReadNews], Future[_Writes]]] = deque()
        total = len(the_plan.items)
        quiet: set[str] = set()  # items with nothing to do (their pulled records: echoes?)
        for done, item_plan in enumerate(the_plan.items):
            if done % PULL_STEP == 0:
                self.tell(done, total)
            if stop.is_set():
                log.info("sync.stopping", cycle_id=self.cycle_id, reason="stop requested")
                while pending:  # handed out already: finished, remote writes and all
                    self._finish(*pending.popleft(), pulled)
                return True
            news = reads.get(item_plan.item_uuid, ())
            if item_plan.item_uuid in failed_items or not (item_plan.actions or news):
                if item_plan.item_uuid not in failed_items:
                    quiet.add(item_plan.item_uuid)
                continue  # nothing to do: no transaction either (an idle cycle stays cheap)
            if not news and all(isinstance(a, CreateRemote) for a in item_plan.actions):
                continue  # the creates step recorded all of it (an initial sync stays cheap)
            item = by_uuid.get(item_plan.item_uuid)
            if item is None:
                continue
            if self._batches is not None:
                self._batches.start(item_plan.item_uuid)  # its batched pushes go out
            if not concurrent or not _writes_remotely(item_plan.actions):
                try:
                    self.apply_item(item, item_plan, pulled, news)
                except Exception as exc:  # noqa: BLE001 - one item never stops the cycle
                    self.fail(item, None, exc)
                continue
            assert lanes is not None
            remote = functools.partial(self._remote_writes, item, item_plan.actions)
            pending.append((item, item_plan, news, lanes.submit(remote)))
            while len(pending) >= lanes.window:
                self._finish(*pending.popleft(), pulled)
        while pending:
            self._finish(*pending.popleft(), pulled)
        self.tell(total, total)
        remember_quiet(self.store, pulled, quiet)
        return False

    def _finish(
        self,
        item: PoamItem,
        item_plan: ItemPlan,
        news: Sequence[ReadNews],
        future: Future[_Writes],
        pulled: Pulled,
    ) -> None:
        """In this thread: what an item's remote writes did, then its transaction."""
        try:
            self._after_writes(item, item_plan, pulled, future.result(), news)
        except Exception as exc:  # noqa: BLE001 - one item never stops the cycle
            self.fail(item, None, exc)

    def tell(self, done: int, total: int) -> None:
        if self.progress is not None:
            created = tuple(sorted(self.report.created.items()))
            pushed = tuple(sorted(self.report.updated_remote.items()))
            self.progress(Step("apply", done, total, created=created, pushed=pushed))

    def fail(self, item: PoamItem, connector: str | None, exc: Exception) -> None:
        """``item`` failed (it rolled back alone): log it and list it in the report."""
        message = str(exc) if isinstance(exc, PoamSyncError) else describe(exc)
        bound = log.bind(cycle_id=self.cycle_id, poam_id=item.poam_id, connector=connector)
        if isinstance(exc, PoamSyncError):
            bound.warning("sync.item_failed", error=message)
        else:  # not one of ours: the traceback goes to the log (never into the store)
            bound.exception("sync.item_failed", error=message)
        self.report.errors.append(ItemError(item.poam_id, connector, message, item.uuid))

    # -- imports and creates -----------------------------------------------------------------

    def apply_import(self, item_plan: ItemPlan) -> bool:
        """The new item, its link and baselines, and what its record could not tell: one
        transaction. False when it failed (the record is fetched again next cycle)."""
        assert item_plan.new_item is not None and item_plan.imported_from is not None
        source, record = item_plan.imported_from
        new_problems: list[Unreadable] = []
        try:
            with self.store.begin() as tx:
                tx.save(
                    item_plan.new_item,
                    source=source,
                    actor=record.updated_by,
                    reason=f"new record {record.key} in {source}",
                    batch_id=self.cycle_id,
                )
                baselines = {
                    a.field: a.value
                    for a in item_plan.actions
                    if isinstance(a, SetBaseline) and a.connector == source
                }
                baselines[NOTES_BASELINE] = [n.id for n in record.notes]
                _link(tx, item_plan.item_uuid, source, record, baselines)
                tx.set_baselines(item_plan.item_uuid, source, baselines)
                news = ReadNews(source, record, record.problems, ())
                new_problems = record_reads(tx, item_plan.item_uuid, item_plan.poam_id, news)
            self.report.imported += 1
            self.report.unreadable += new_problems
            return True
        except Exception as exc:  # noqa: BLE001 - one record never stops the cycle
            message = str(exc) if isinstance(exc, PoamSyncError) else describe(exc)
            log.warning(
                "sync.import_failed", connector=source, remote_key=record.key, error=message
            )
            self.report.errors.append(
                ItemError(
                    record.key,
                    source,
                    f"importing {source} {record.key} failed: {message}",
                    remote_id=record.remote_id,
                    remote_key=record.key,
                )
            )
            return False

    def adopt(self, item_plan: ItemPlan, name: str, record: RemoteRecord, item: PoamItem) -> None:
        """Link a remote record carrying our stamp (a create that finished before a crash)."""
        with self.store.begin() as tx:
            # Agree only on what already matches; the canonical record wins the rest next cycle.
            base = agreed_baselines(self.connectors[name], item, record)
            _link(tx, item_plan.item_uuid, name, record, base)
            tx.set_baselines(item_plan.item_uuid, name, base)
            tx.finish_claims(name, [item_plan.item_uuid])
        self.report.adopted += 1

    # -- one item: remote writes, notes, adoption, then the canonical transaction --------------

    def apply_item(
        self,
        item: PoamItem,
        item_plan: ItemPlan,
        pulled: Pulled,
        reads: Sequence[ReadNews] = (),
    ) -> None:
        writes = self._remote_writes(item, item_plan.actions)
        self._after_writes(item, item_plan, pulled, writes, reads)

    def _remote_writes(self, item: PoamItem, actions: Sequence[Action]) -> _Writes:
        """The item's remote writes (in a lane when there are lanes): fields, then notes.
        Touches neither the store nor the report: what they did is in the answer."""
        writes = _Writes.of(actions)
        self._push_fields(item, writes)
        self._push_notes(item, actions, writes)
        return writes

    def _after_writes(
        self,
        item: PoamItem,
        item_plan: ItemPlan,
        pulled: Pulled,
        writes: _Writes,
        reads: Sequence[ReadNews] = (),
    ) -> None:
        """In the calling thread: count the writes, adopt, then the item's transaction."""
        self.report.errors += writes.errors
        for name in writes.pushed:
            self.report.updated_remote[name] += 1
        actions = item_plan.actions
        for a in actions:
            if isinstance(a, AdoptRemote):
                try:
                    self.adopt(item_plan, a.connector, a.record, item)
                except Exception as exc:  # noqa: BLE001 - the rest of the item goes on
                    self.fail(item, a.connector, exc)
        self._commit(item, actions, pulled, writes, reads)

    def _slot(self, connector: str) -> AbstractContextManager[None]:
        return self._lanes.slot(connector) if self._lanes is not None else nullcontext()

    def _push_fields(self, item: PoamItem, w: _Writes) -> None:
        """One update per connector with every field that moved here (or this item's part of
        a batch, sync/pushes.py)."""
        for name, fields in w.pushes.items():
            remote_id = next(iter(fields.values())).remote_id
            try:
                result = self._batches.take(item.uuid, name) if self._batches else None
                if isinstance(result, Exception):
                    raise result
                if result is None:
                    with self._slot(name):
                        result = self.connectors[name].update(
                            remote_id, {f: a.value for f, a in fields.items()}
                        )
            except RecordGone as exc:
                w.broken[name] = str(exc)  # recorded in the transaction, with a problem
                w.failed.add(name)
                continue
            except RemoteError as exc:
                w.failed.add(name)
                w.errors.append(ItemError(item.poam_id, name, str(exc), item.uuid))
                continue
            bad = {p.field for p in result.problems if p.code not in _WRITTEN_ANYWAY}
            for p in result.problems:
                w.problems.append((name, p.field, p.code, p.message))
            for f, a in fields.items():
                if f not in bad:
                    w.baselines[name][f] = a.value
                    w.cleared.append((name, f))
            w.pushed.append(name)
            w.results[name] = result

    def _push_notes(self, item: PoamItem, actions: Sequence[Action], w: _Writes) -> None:
        for a in actions:
            if isinstance(a, PushNote) and a.connector not in w.failed:
                try:
                    with self._slot(a.connector):
                        self.connectors[a.connector].add_note(a.remote_id, a.note)
                    w.written_notes[a.connector].append(a.note.id)
                except RemoteError as exc:
                    w.failed.add(a.connector)
                    w.errors.append(ItemError(item.poam_id, a.connector, str(exc), item.uuid))

    def _commit(
        self,
        item: PoamItem,
        actions: Sequence[Action],
        pulled: Pulled,
        w: _Writes,
        reads: Sequence[ReadNews] = (),
    ) -> None:
        """The canonical record, baselines, links, conflicts and problems: one transaction."""
        unreadable: list[Unreadable] = []
        try:
            with self.store.begin() as tx:
                current = tx.get_by_uuid(item.uuid) or item
                self._take(tx, current, actions)
                for a in actions:
                    self._record(tx, item, a, w)
                for name, reason in w.broken.items():
                    tx.mark_link_broken(item.uuid, name, reason)
                    tx.report_problem(
                        item_uuid=item.uuid,
                        connector=name,
                        field=None,
                        code="broken_link",
                        message=f"the linked {name} record is gone: {reason}",
                    )
                _note_baselines(tx, item, actions, w.written_notes, w.baselines, pulled)
                for name, values in w.baselines.items():
                    if name in w.failed and name not in w.written_notes:
                        values = {
                            k: v for k, v in values.items() if k not in w.pushes.get(name, {})
                        }
                    if values:
                        tx.set_baselines(item.uuid, name, values)
                for name, records in pulled.items():
                    remember_pulled(tx, item.uuid, name, records)
                for name, result in w.results.items():
                    # our write's answer, if nothing was written after it (a note moves the
                    # version again) and it shows the record whole (WriteResult.whole)
                    if name not in w.failed and name not in w.written_notes:
                        remember_pushed(tx, item.uuid, name, result)
                for name, cleared_field in w.cleared:
                    tx.clear_problems(item.uuid, name, cleared_field, kind="write")
                for name, bad_field, code, message in w.problems:
                    tx.report_problem(
                        item_uuid=item.uuid,
                        connector=name,
                        field=bad_field,
                        code=code,
                        message=message,
                    )
                    self.report.problems += 1
                for news in reads:
                    unreadable += record_reads(tx, item.uuid, item.poam_id, news)
            self.report.unreadable += unreadable
        except Exception as exc:  # noqa: BLE001 - the item rolls back alone
            self.fail(item, None, exc)

    def _record(self, tx: StoreTx, item: PoamItem, a: Action, w: _Writes) -> None:
        """What one action leaves in the store besides the canonical fields."""
        if isinstance(a, SetBaseline):
            w.baselines[a.connector][a.field] = a.value
        elif isinstance(a, RecordConflict):
            tx.open_conflict(
                item_uuid=item.uuid,
                connector=a.connector,
                field=a.field,
                baseline=a.baseline,
                local=a.local,
                remote=a.remote,
                remote_actor=a.remote_actor,
                remote_changed_at=a.remote_changed_at,
            )
            self.report.conflicts += 1
        elif isinstance(a, CloseConflict):
            tx.resolve_conflict(
                a.conflict_id, value=a.value, taken_from="agreement", by="poam-sync", reason=a.why
            )
        elif isinstance(a, PushField) and a.overridden and a.connector not in w.failed:
            tx.log_event(
                item_uuid=item.uuid,
                field=a.field,
                old=a.overrides,
                new=a.value,
                source="policy",
                actor=None,
                reason=f"{a.connector} edit overridden: {a.why}",
                batch_id=self.cycle_id,
            )
        elif isinstance(a, LinkBroken):
            tx.report_problem(
                item_uuid=item.uuid,
                connector=a.connector,
                field=None,
                code="broken_link",
                message=a.why,
            )

    def _take(self, tx: StoreTx, current: PoamItem, actions: Sequence[Action]) -> None:
        """Write remote values into the canonical record, one save per source connector and
        actor."""
        by_source: dict[str, list[TakeRemote]] = defaultdict(list)
        for a in actions:
            if isinstance(a, TakeRemote):
                by_source[a.connector].append(a)
        notes: dict[str, list[Note]] = defaultdict(list)
        for a in actions:
            if isinstance(a, TakeNote):
                notes[a.connector].append(a.note)
        # one save per source and actor, so that each change-log row names whoever changed
        # that field (alice the due date, bob the status), not one actor for all of them
        groups = [
            (source, [a for a in by_source.get(source, []) if a.actor == actor], last)
            for source in sorted(set(by_source) | set(notes))
            for actor, last in _actors(by_source.get(source, []))
        ]
        saved: set[str] = set()  # counted once per source, as before
        for source, takes, last in groups:
            names = {str(a.new): a.display_name for a in takes if a.display_name}
            updated = from_sync(
                current, {a.field: a.new for a in takes}, names=names, today=self.now().date()
            )
            due = next((a for a in takes if a.field == "due_date"), None)
            extension = (
                due_date_extension(
                    due.old, due.new, source=source, actor=due.actor, on=self.now().date()
                )
                if due is not None
                else None
            )
            if extension is not None:
                changes = (*updated.milestone_changes, extension)
                updated = updated.model_copy(update={"milestone_changes": changes})
            if last and notes.get(source):
                updated = updated.model_copy(update={"notes": (*updated.notes, *notes[source])})
            actor = next((a.actor for a in takes if a.actor), None)
            reason = "; ".join(a.why for a in takes) or f"new comments from {source}"
            rows = tx.save(
                updated, source=source, actor=actor, reason=reason, batch_id=self.cycle_id
            )
            if rows:
                saved.add(source)
            current = updated
        self.report.updated_local += len(saved)


def _writes_remotely(actions: Sequence[Action]) -> bool:
    return any(isinstance(a, PushField | PushNote) for a in actions)


def _actors(takes: Sequence[TakeRemote]) -> list[tuple[str | None, bool]]:
    """The distinct actors of ``takes`` in order, each with whether it is the last (at least
    one, so that a source with only new notes is saved once)."""
    actors = list(dict.fromkeys(a.actor for a in takes)) or [None]
    return [(actor, n == len(actors) - 1) for n, actor in enumerate(actors)]


def _note_baselines(
    tx: StoreTx,
    item: PoamItem,
    actions: Sequence[Action],
    written: Mapping[str, list[str]],
    baselines: dict[str, dict[str, SyncValue]],
    pulled: Pulled,
) -> None:
    for name in {*written, *(a.connector for a in actions if isinstance(a, TakeNote))}:
        known = set(as_strings(tx.baselines(item.uuid, name).get(NOTES_BASELINE), NOTES_BASELINE))
        known |= set(written.get(name, []))
        link = tx.link(item.uuid, name)
        if link is not None and link.remote_id in pulled.get(name, {}):
            known |= {n.id for n in pulled[name][link.remote_id].notes}
        baselines[name][NOTES_BASELINE] = sorted(known)


def _link(
    tx: StoreTx,
    item_uuid: str,
    connector: str,
    record: RemoteRecord,
    baselines: Mapping[str, SyncValue],
) -> None:
    tx.set_link(link_row(item_uuid, connector, record, settled_version(record, baselines)))
