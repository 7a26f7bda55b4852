"""One sync cycle: prepare and pull every connector, check each pulled record, plan, check the
guards, apply, then move the watermarks.

A connector whose ``prepare()`` or pull failed is left out of the cycle entirely: nothing is
pushed to it or taken from it, the report names it, and its watermark stays. Nothing one record
or item holds halts a cycle: whatever its mapping (:mod:`poam_sync.sync.intake`), planning or
applying raises is caught at that item, which rolls back alone; the failure is recorded as an
``item_failed`` problem and its remote record fetched again next cycle
(:mod:`poam_sync.sync.faults`), so the watermarks still move past what was handled. The plan is
pure (:mod:`poam_sync.sync.plan`); carrying it out is :mod:`poam_sync.sync.apply`'s job.
"""

from __future__ import annotations

import functools
import threading
import uuid as _uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from poam_sync.connectors.base import Connector, RemoteRecord
from poam_sync.errors import PoamSyncError, RecordGone
from poam_sync.model import PoamItem
from poam_sync.sync.apply import Executor
from poam_sync.sync.claims import CLAIM_TIMEOUT, Claimant
from poam_sync.sync.echoes import RememberedVersions
from poam_sync.sync.faults import clear_recovered, load_retries, record_failures, refetch
from poam_sync.sync.fence import Fence, FencedStop, fenced
from poam_sync.sync.guards import FORCE_HINT as FORCE_HINT
from poam_sync.sync.guards import Guards as Guards
from poam_sync.sync.guards import (
    Tripped,
    check_empty_side,
    check_mass_change,
    first_to_leave,
)
from poam_sync.sync.imports import rebind_stamps
from poam_sync.sync.intake import describe, take_in
from poam_sync.sync.plan import (
    AdoptRemote,
    ConnectorState,
    CreateRemote,
    FieldPolicy,
    OpenConflict,
    Plan,
    PushField,
    RecordConflict,
    TakeRemote,
    plan,
)
from poam_sync.sync.progress import ProgressSink, Step, counted
from poam_sync.sync.reconcile import find_gone, list_ids
from poam_sync.sync.results import CycleReport as CycleReport
from poam_sync.sync.results import ItemError as ItemError
from poam_sync.sync.results import Unreadable, Vanished
from poam_sync.sync.working_set import Snapshot, read_all, read_changed

if TYPE_CHECKING:
    from poam_sync.config import Scope
    from poam_sync.store import ConflictRow, Store, StoreTx

log = structlog.get_logger(__name__)
# After a clean cycle a connector's watermark moves to the newest remote change it saw, or to
# the pull's start minus this margin when that is later (our clock may run ahead of the
# remote's). Each connector adds its own overlap for its clock's granularity.
CLOCK_SKEW_MARGIN = timedelta(minutes=2)
# Every this many cycles each connector lists the ids of all its records (keys only) so that
# linked records deleted remotely are found (see poam_sync.sync.reconcile).
RECONCILE_EVERY = 12
# Every this many cycles an engine plans every item, not only those that changed
# (poam_sync.sync.working_set); the reconcile's cycles are full cycles too.
FULL_EVERY = 12
BLOCKED = "transition_blocked"  # a connector's refusal of a status it cannot reach


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """A connector with what the engine needs to know about it from configuration."""

    connector: Connector
    scope: Scope | None = None
    import_new: bool = False
    system: str = "default"

    def in_scope(self, item: PoamItem) -> bool:
        scope = self.scope
        if scope is None:
            return not item.status.is_closed
        if scope.systems and item.system not in scope.systems:
            return False
        if scope.statuses and item.status not in scope.statuses:
            return False
        return scope.include_closed or not item.status.is_closed


def _now() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        store: Store,
        targets: Sequence[SyncTarget],
        *,
        policies: Mapping[str, FieldPolicy] | None = None,
        guards: Guards | None = None,
        clock_skew: timedelta = CLOCK_SKEW_MARGIN,
        fence: Fence | None = None,
        reconcile_every: int = RECONCILE_EVERY,
        claim_timeout: timedelta = CLAIM_TIMEOUT,
        full_every: int = FULL_EVERY,
    ) -> None:
        self.store = store
        self.targets = {t.connector.name: t for t in targets}
        self.policies = dict(policies or {})
        self.guards = guards or Guards()
        self.clock_skew = clock_skew
        self.fence = fence  # the leader lock's check (sync/fence.py): no writes once it is lost
        self.reconcile_every = reconcile_every
        self.full_every = full_every  # 1: every cycle plans every item
        self._cycles = 0
        self._since_full = 0  # cycles since the last full one
        # What the engine keeps between cycles (poam_sync.sync.working_set): the change log's
        # sequence number planned up to (None: the next cycle is full), the items to plan again
        # next cycle, and the connectors that missed a cycle (owed a full one).
        self._seq: int | None = None
        self._carry: set[str] = set()
        self._owed: set[str] = set()
        self._stop = threading.Event()
        # another process's pending create claim this old is taken for abandoned (sync/claims.py)
        self.claim_timeout = claim_timeout

    def invalidate(self) -> None:
        """Forget what the last cycles planned: the next cycle plans every item (the daemon
        calls this when it gains the lead, as another process may have synced meanwhile)."""
        self._seq = None
        self._carry = set()

    def request_stop(self) -> None:
        """Finish the item in hand, then end the cycle (from a signal handler or thread)."""
        self._stop.set()

    # -- the cycle ---------------------------------------------------------------------------

    def run_cycle(
        self,
        *,
        dry_run: bool = False,
        force: bool = False,
        only: Iterable[str] | None = None,
        reconcile: bool | None = None,
        progress: ProgressSink | None = None,
        fetch: Mapping[str, Collection[str]] | None = None,
        full: bool | None = None,
    ) -> CycleReport:
        """One cycle. ``force``: proceed although a guard trips; ``reconcile``: list every
        connector's ids to find vanished links (True), or not (False), whatever the period
        says (None: every ``reconcile_every`` cycles); ``progress``: told how far it got.
        ``fetch``: a *targeted* cycle (a webhook's, poam_sync/webhooks.py): instead of each
        connector's pull, only these records (remote ids by connector) are read; no watermark
        moves and no reconcile runs, so the next full cycle still sees everything.
        ``full``: plan every item (True) or only the working set (False, when the engine can;
        :mod:`poam_sync.sync.working_set`), whatever the period says (None: the first cycle,
        and every ``full_every`` cycles of this engine)."""
        cycle_id = _uuid.uuid4().hex[:12]
        report = CycleReport(cycle_id=cycle_id, dry_run=dry_run)
        names = [n for n in self.targets if only is None or n in set(only)]
        bound = log.bind(cycle_id=cycle_id, **({"targeted": True} if fetch is not None else {}))

        # 1. Prepare and pull every connector before pushing to any.
        pulled: dict[str, dict[str, RemoteRecord]] = {}
        marks: dict[str, datetime | None] = {}
        pull_started = _now()
        # The versions of our own writes (and of records read whole), so that a pull can
        # leave out what we already hold (sync/echoes.py); not on a first pull, whose records
        # the empty-side guard counts.
        known: dict[str, RememberedVersions] = {}
        with self.store.read() as tx:
            for name in names:
                marks[name] = tx.watermark(name)
                connector = self.targets[name].connector
                if (
                    marks[name] is not None
                    and fetch is None
                    and connector.skips_echoes
                    and tx.has_link_versions(name)
                ):
                    known[name] = RememberedVersions(self.store, name)
                    if connector.wants_keys:
                        connector.hold_keys(functools.partial(self._link_keys, name))
        for name in names:
            connector = self.targets[name].connector
            try:
                # What project() needs is loaded now: planning makes no I/O.
                connector.prepare()
            except Exception as exc:  # noqa: BLE001 - one connector's failure, reported
                report.failed_connectors[name] = _describe(exc)
                _warn(bound, "connector.prepare_failed", name, exc)
                continue
            try:
                if fetch is None:
                    held = known.get(name)
                    pulling = (
                        connector.pull(marks[name], held) if held else connector.pull(marks[name])
                    )
                    arriving = counted(pulling, progress, name)
                    records = {r.remote_id: r for r in arriving}
                else:
                    records = _fetch(connector, fetch.get(name, ()))
            except Exception as exc:  # noqa: BLE001 - one connector's failure, reported
                report.failed_connectors[name] = _describe(exc)
                _warn(bound, "connector.pull_failed", name, exc)
                continue
            pulled[name] = records
            report.pulled[name] = len(records)
        active = [n for n in names if n in pulled]
        connectors = {n: t.connector for n, t in self.targets.items()}
        # Records behind items that failed in an earlier cycle: fetched again, retried now.
        retries = load_retries(self.store)
        refetch(retries, connectors, pulled)
        due = reconcile if reconcile is not None else fetch is None and self._reconcile_due()
        whole = self._whole(full, due, active, marks, fetch)

        # 2. Plan from one consistent read of the store (no write lock held meanwhile): every
        # item, or only those that may need something (poam_sync.sync.working_set).
        with self.store.read() as tx:
            if whole or self._seq is None:
                snap = read_all(tx, active)
            else:
                snap = read_changed(
                    tx,
                    active,
                    after=self._seq,
                    carry=self._carry,
                    pulled=pulled,
                    retries=[p.item_uuid for p in retries.open if p.item_uuid is not None],
                    systems={n: self.targets[n].system for n in active},
                )
            items = snap.items
            open_conflicts = tx.conflicts(state="open")
            states = [self._state(name, pulled[name], snap, open_conflicts) for name in active]
            # Records stamped for an item imported here anew (new uuid): adopted, never made again
            states = rebind_stamps(items, states)
            taken = snap.taken
            blocked = _blocked(tx, None if snap.full else items)
            states = [replace(s, blocked=blocked.get(s.name, frozenset())) for s in states]
            open_reads: dict[tuple[str, str], set[str]] = {}
            for p in tx.problems(kind="read"):
                if p.item_uuid is not None and p.field is not None:
                    open_reads.setdefault((p.item_uuid, p.connector), set()).add(p.field)
        by_item = {s.name: {u: link.remote_id for u, link in s.links.items()} for s in states}
        by_remote = {n: {r: u for u, r in links.items()} for n, links in by_item.items()}
        # 2a. Each pulled record checked on its own: one that cannot be read stays out.
        intake = take_in(
            {s.name: s.pulled for s in states},
            by_remote,
            items,
            {k: frozenset(v) for k, v in open_reads.items()},
        )
        report.errors += intake.errors
        states = [replace(s, pulled=intake.pulled[s.name]) for s in states]
        report.full, report.planned_items = snap.full, len(items)
        # 2b. The guards and the reconcile: a connector tripping a guard leaves the cycle.
        views = {n: frozenset(pulled[n]) for n in active if marks[n] is None and fetch is None}
        if due:
            listing = list_ids(connectors, active)
            report.reconciled = {n: len(ids) for n, ids in listing.ids.items()}
            for name, why in listing.failed.items():
                report.errors.append(ItemError(name, name, f"reconcile: listing failed: {why}"))
            views.update({n: ids | views.get(n, frozenset()) for n, ids in listing.ids.items()})
        if not force:
            states = self._leave_out(states, check_empty_side(states, views, self.guards), report)
        if due:
            states = self._vanished(states, views, connectors, items, report, dry_run)
        if progress is not None:
            progress(Step("plan", 0))
        the_plan = self._plan(items, states, taken, intake.skip, report)
        # the mass-change guard's share is of all the links a connector has, whatever the
        # working set holds: counted only when the plan changes something (not when idle)
        live = None if snap.full or force or not _changes(the_plan) else self._live(active)
        while not force:
            tripped = check_mass_change(the_plan, states, self.guards, live=live)
            if not tripped:
                break
            states = self._leave_out(states, first_to_leave(tripped), report)
            the_plan = self._plan(items, states, taken, intake.skip, report, again=True)
        if progress is not None:
            progress(Step("plan", len(the_plan.items), len(the_plan.items)))
        active = [n for n in active if n not in report.guarded]
        report.plan = the_plan
        if dry_run:
            self._count(the_plan, report)
            report.unreadable = [
                Unreadable(
                    items[u].poam_id, n.connector, n.record.key, p.field, p.code, p.message, p.hint
                )
                for u, news in intake.reads.items()
                for n in news
                for p in n.report
                if n.connector in active
            ]
            return report

        # 3. Apply: imports, creates (batched), then each item on its own.
        kept = {n: intake.pulled[n] for n in active}
        reads = {u: [n for n in news if n.connector in kept] for u, news in intake.reads.items()}
        writers, stop = connectors, self._stop
        if self.fence is not None:  # asked now, before each item and each remote write
            self.fence()
            writers, stop = fenced(connectors, self.fence), FencedStop(self._stop, self.fence)
        executor = Executor(
            self.store,
            writers,
            report,
            now=_now,
            claimant=Claimant.this_process(leader=self.fence is not None),
            claim_timeout=self.claim_timeout,
            progress=progress,
        )
        stopped = executor.run(the_plan, items, kept, stop, reads)
        if self.fence is not None:
            self.fence()

        # 4. Failures kept for a retry; then the watermarks, past everything handled.
        recorded, failed = record_failures(self.store, report.errors, by_item, kept)
        if not stopped:
            clear_recovered(self.store, retries, report.errors, recorded, active)
        report.stopped = stopped
        self._remember(snap, the_plan, intake.skip, report, active, failed)
        with self.store.begin() as tx:
            # A failure that could not be recorded for a retry keeps its connector's watermark
            # (every watermark when it concerned no one connector).
            for name in active if not stopped and None not in failed and fetch is None else ():
                if name in failed:
                    continue
                newest = pull_started - self.clock_skew
                if pulled[name]:
                    newest = max(newest, *(r.updated_at for r in pulled[name].values()))
                previous = marks[name]
                if previous is None or newest > previous:
                    tx.set_watermark(name, newest)
        bound.info(
            "sync.cycle", full=report.full, planned_items=report.planned_items, **report.summary()
        )
        return report

    def _link_keys(self, name: str) -> dict[str, str]:
        """Remote id -> key of connector ``name``'s links (read only when its pull lists a big
        window in key ranges)."""
        with self.store.read() as tx:
            return tx.link_keys(name)

    def _whole(
        self,
        full: bool | None,
        reconcile: bool,
        active: Collection[str],
        marks: Mapping[str, datetime | None],
        fetch: Mapping[str, Collection[str]] | None,
    ) -> bool:
        """Whether this cycle plans every item (see :mod:`poam_sync.sync.working_set`): after
        ``full_every - 1`` cycles that did not, among other reasons."""
        periodic = fetch is None and 0 < self.full_every <= self._since_full + 1
        whole = (
            (full if full is not None else periodic)
            or reconcile  # the reconcile compares every link with the listing
            or self._seq is None
            or any(marks[n] is None for n in active)  # a whole pull, for the empty-side guard
            or bool(self._owed & set(active))
        )
        if whole:
            self._since_full = 0
        elif fetch is None:
            self._since_full += 1
        return whole

    def _remember(
        self,
        snap: Snapshot,
        the_plan: Plan,
        skip: Collection[str],
        report: CycleReport,
        active: Collection[str],
        unrecorded: Collection[str | None],
    ) -> None:
        """What the next cycle needs to know of this one: the change log planned up to, the
        items to plan again (a create, a failure, a record that could not be read), and the
        connectors that missed this cycle (the next cycle they are in is a full one)."""
        applied = set(active) - set(report.guarded)
        if report.stopped or None in unrecorded:
            applied = set()
        applied -= {n for n in unrecorded if n is not None}
        missed = set(self.targets) - applied
        self._owed = (self._owed - applied if snap.full else self._owed) | missed
        if report.stopped:
            self.invalidate()
            return
        again = set(skip) | {e.item_uuid for e in report.errors if e.item_uuid}
        for p in the_plan.items:
            if any(isinstance(a, (CreateRemote, AdoptRemote)) for a in p.actions):
                again.add(p.item_uuid)
        self._seq, self._carry = snap.seq, again

    def _plan(
        self,
        items: Mapping[str, PoamItem],
        states: Sequence[ConnectorState],
        taken: set[tuple[str, str]],
        skip: set[str],
        report: CycleReport,
        *,
        again: bool = False,
    ) -> Plan:
        """The plan, without the items whose records could not be read or whose planning
        failed (each reported: they are retried next cycle; ``again``: a replanning, whose
        failures were reported the first time)."""
        the_plan = plan(items, states, self.policies, taken_ids=taken)
        for f in () if again else the_plan.failed:
            source = f.imported_from
            bound = log.bind(poam_id=f.poam_id, connector=source[0] if source else None)
            bound.error("sync.plan_failed", error=describe(f.error), exc_info=f.error)
            message = f"planning failed: {describe(f.error)}"
            if source is None:
                report.errors.append(ItemError(f.poam_id, None, message, f.item_uuid))
            else:
                name, record = source
                report.errors.append(
                    ItemError(
                        record.key,
                        name,
                        message,
                        remote_id=record.remote_id,
                        remote_key=record.key,
                    )
                )
        if skip:
            kept = tuple(p for p in the_plan.items if p.item_uuid not in skip)
            the_plan = replace(the_plan, items=kept)
        return the_plan

    # -- planning inputs -----------------------------------------------------------------------

    def _state(
        self,
        name: str,
        records: dict[str, RemoteRecord],
        snap: Snapshot,
        open_conflicts: Iterable[ConflictRow],
    ) -> ConnectorState:
        target = self.targets[name]
        conflicts = {
            (c.item_uuid, c.field): OpenConflict(c.id, c.local, c.remote)
            for c in open_conflicts
            if c.connector == name
        }
        return ConnectorState(
            name=name,
            synced_fields=target.connector.synced_fields,
            project=target.connector.project,
            in_scope=target.in_scope,
            links=snap.links[name],
            baselines=snap.baselines[name],
            pulled=records,
            open_conflicts=conflicts,
            # creates claimed but not linked (in flight elsewhere, or before a crash)
            pending_intents=snap.pending[name],
            allow_import=target.import_new,
            system=target.system,
        )

    def _live(self, names: Iterable[str]) -> dict[str, int]:
        """How many items the store links to each connector (links not broken)."""
        with self.store.read() as tx:
            return {n: tx.live_links(n) for n in names}

    def _reconcile_due(self) -> bool:
        """Every ``reconcile_every`` cycles of this engine (0: only when asked)."""
        self._cycles += 1
        return self.reconcile_every > 0 and self._cycles % self.reconcile_every == 0

    def _leave_out(
        self, states: Sequence[ConnectorState], tripped: Sequence[Tripped], report: CycleReport
    ) -> list[ConnectorState]:
        """The states without the connectors a guard tripped for (each reported, and logged)."""
        for t in tripped:
            report.guarded[t.connector] = f"{t.message}; {FORCE_HINT}"
            log.warning(
                "sync.guard_tripped",
                cycle_id=report.cycle_id,
                connector=t.connector,
                guard=t.guard,
                error=t.message,
            )
        out = {t.connector for t in tripped}
        return [s for s in states if s.name not in out]

    def _vanished(
        self,
        states: Sequence[ConnectorState],
        views: Mapping[str, frozenset[str]],
        connectors: Mapping[str, Connector],
        items: Mapping[str, PoamItem],
        report: CycleReport,
        dry_run: bool,
    ) -> list[ConnectorState]:
        """Linked records the remote says are gone: their links broken (in the store unless
        a dry run) and reported, and the states planned with them broken."""
        out: list[ConnectorState] = []
        for s in states:
            view = views.get(s.name)
            gone = find_gone(connectors[s.name], s, view) if view is not None else []
            if not gone:
                out.append(s)
                continue
            links = dict(s.links)
            for g in gone:
                item = items.get(g.item_uuid)
                poam_id = item.poam_id if item is not None else g.item_uuid
                message = (
                    f"the {g.connector} record {g.remote_key} linked to {poam_id} is gone "
                    f"(the reconcile did not find it, and reading it says: {g.reason})"
                )
                hint = (
                    f"find out why {g.remote_key} was removed from {g.connector}; the item stays "
                    f"here and is not re-created: restore the record there, or close the item "
                    "here if the weakness is gone"
                )
                if not dry_run:
                    with self.store.begin() as tx:
                        tx.mark_link_broken(g.item_uuid, g.connector, message)
                        tx.report_problem(
                            item_uuid=g.item_uuid,
                            connector=g.connector,
                            field=None,
                            code="broken_link",
                            message=message,
                            hint=hint,
                        )
                links[g.item_uuid] = replace(links[g.item_uuid], broken=True)
                report.vanished.append(Vanished(poam_id, g.connector, g.remote_key, message, hint))
                log.warning(
                    "sync.link_vanished",
                    cycle_id=report.cycle_id,
                    connector=g.connector,
                    poam_id=poam_id,
                    remote_key=g.remote_key,
                )
            out.append(replace(s, links=links))
        return out

    @staticmethod
    def _count(the_plan: Plan, report: CycleReport) -> None:
        for _, action in the_plan.actions():
            if isinstance(action, CreateRemote):
                report.created[action.connector] += 1
            elif isinstance(action, PushField):
                report.updated_remote[action.connector] += 1
            elif isinstance(action, TakeRemote):
                report.updated_local += 1
            elif isinstance(action, RecordConflict):
                report.conflicts += 1
            elif isinstance(action, AdoptRemote):
                report.adopted += 1
        report.imported = sum(1 for p in the_plan.items if p.new_item is not None)


def _blocked(tx: StoreTx, among: Collection[str] | None) -> dict[str, frozenset[tuple[str, str]]]:
    """Per connector, the (item uuid, field) pushes it refused (``transition_blocked``) with no
    canonical change to the field since: the refusal's ``last_seen`` is when that value was
    last pushed, and any change-log row of the field after it is a new value worth trying.
    ``among``: only the items planned (None: all); their log is read in one query a chunk."""
    refused = [
        p
        for p in tx.problems(kind="write")
        if p.code == BLOCKED
        and p.item_uuid is not None
        and p.field is not None
        and (among is None or p.item_uuid in among)
    ]
    latest = tx.last_changes({p.item_uuid for p in refused if p.item_uuid is not None})
    found: dict[str, set[tuple[str, str]]] = {}
    for p in refused:
        assert p.item_uuid is not None and p.field is not None
        changed = latest.get((p.item_uuid, p.field))
        if changed is None or changed <= p.last_seen:
            found.setdefault(p.connector, set()).add((p.item_uuid, p.field))
    return {name: frozenset(keys) for name, keys in found.items()}


def _changes(the_plan: Plan) -> bool:
    """Whether the plan pushes a field or takes one in (what the mass-change guard counts)."""
    return any(isinstance(a, (PushField, TakeRemote)) for _, a in the_plan.actions())


def _fetch(connector: Connector, remote_ids: Iterable[str]) -> dict[str, RemoteRecord]:
    """The records of a targeted cycle, read one by one; one gone since is left out."""
    records: dict[str, RemoteRecord] = {}
    for remote_id in sorted(remote_ids):
        try:
            record = connector.get(remote_id)
        except RecordGone:
            log.info("sync.fetch_gone", connector=connector.name, remote_id=remote_id)
            continue
        records[record.remote_id] = record
    return records


def _describe(exc: Exception) -> str:
    """Our errors speak for themselves; anything else is named by its type (a connector bug)."""
    return str(exc) if isinstance(exc, PoamSyncError) else describe(exc)


def _warn(bound: structlog.stdlib.BoundLogger, event: str, connector: str, exc: Exception) -> None:
    """A connector left out of this cycle; its watermark stays, so the next cycle retries it."""
    if isinstance(exc, PoamSyncError):
        bound.warning(event, connector=connector, error=str(exc))
    else:  # not one of ours: a bug in the connector, so the traceback goes to the log
        bound.exception(event, connector=connector, error=_describe(exc))
