"""One sync cycle: pull every connector, plan, then apply.

Apply order, per the architecture: remote writes first, then per item one database
transaction holding the canonical fields, their change-log rows, the new baselines, link rows
and conflicts. A failing item rolls back alone, is listed with its error, and is retried next
cycle (its baselines did not move, so the plan finds the same work again).

Creates are crash-safe: an intent row is committed before the remote create; a crash between
the remote create and the link leaves the intent pending, and the next cycle looks the record
up by its stamp before creating anything (no duplicates, ever).

A connector's watermark advances only when its whole cycle succeeded. A connector whose pull
failed is left out of the cycle entirely: nothing is pushed to it or taken from it.
"""

from __future__ import annotations

import threading
import uuid as _uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from poam_sync.connectors.base import Connector, RemoteRecord, Stamp, WriteResult
from poam_sync.errors import GuardTripped, PoamSyncError, RecordGone, RemoteError
from poam_sync.model import JsonValue, MilestoneChange, Note, PoamItem
from poam_sync.store import LinkRow
from poam_sync.sync.plan import (
    NOTES_BASELINE,
    AdoptRemote,
    CloseConflict,
    ConnectorState,
    CreateRemote,
    FieldPolicy,
    ItemPlan,
    LinkBroken,
    LinkInfo,
    OpenConflict,
    Plan,
    PushField,
    PushNote,
    RecordConflict,
    SetBaseline,
    TakeNote,
    TakeRemote,
    plan,
)
from poam_sync.sync.values import from_sync, to_sync

if TYPE_CHECKING:
    from poam_sync.config import Scope
    from poam_sync.store import Store, StoreTx

log = structlog.get_logger(__name__)
CREATE_BATCH = 50
# After a clean cycle a connector's watermark moves to the newest remote change it saw, or to
# the pull's start minus this margin when that is later (our clock may run ahead of the
# remote's). Each connector adds its own overlap for its clock's granularity.
CLOCK_SKEW_MARGIN = timedelta(minutes=2)


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


@dataclass(frozen=True, slots=True)
class Guards:
    max_change_share: float = 0.5
    min_items: int = 20


@dataclass(frozen=True, slots=True)
class ItemError:
    poam_id: str
    connector: str | None
    message: str


@dataclass
class CycleReport:
    cycle_id: str
    dry_run: bool
    plan: Plan | None = None
    pulled: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated_remote: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated_local: int = 0
    imported: int = 0
    adopted: int = 0
    conflicts: int = 0
    problems: int = 0
    errors: list[ItemError] = field(default_factory=list)
    failed_connectors: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_connectors

    def summary(self) -> dict[str, Any]:
        return {
            "cycle_id": self.cycle_id,
            "dry_run": self.dry_run,
            "pulled": dict(self.pulled),
            "created": dict(self.created),
            "updated_remote": dict(self.updated_remote),
            "updated_local": self.updated_local,
            "imported": self.imported,
            "adopted": self.adopted,
            "conflicts": self.conflicts,
            "problems": self.problems,
            "errors": [_err(e) for e in self.errors],
            "failed_connectors": dict(self.failed_connectors),
        }


def _err(e: ItemError) -> dict[str, Any]:
    return {"poam_id": e.poam_id, "connector": e.connector, "message": e.message}


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
    ) -> None:
        self.store = store
        self.targets = {t.connector.name: t for t in targets}
        self.policies = dict(policies or {})
        self.guards = guards or Guards()
        self.clock_skew = clock_skew
        self._stop = threading.Event()
        self._intents: dict[str, dict[str, int]] = {}  # connector -> item uuid -> intent id

    def request_stop(self) -> None:
        """Finish the item in hand, then end the cycle (from a signal handler or thread)."""
        self._stop.set()

    # -- the cycle ---------------------------------------------------------------------------

    def run_cycle(
        self, *, dry_run: bool = False, force: bool = False, only: Iterable[str] | None = None
    ) -> CycleReport:
        cycle_id = _uuid.uuid4().hex[:12]
        report = CycleReport(cycle_id=cycle_id, dry_run=dry_run)
        names = [n for n in self.targets if only is None or n in set(only)]
        bound = log.bind(cycle_id=cycle_id)

        # 1. Pull every connector before pushing to any.
        pulled: dict[str, dict[str, RemoteRecord]] = {}
        marks: dict[str, datetime | None] = {}
        pull_started = _now()
        with self.store.read() as tx:
            for name in names:
                marks[name] = tx.watermark(name)
        for name in names:
            connector = self.targets[name].connector
            try:
                records = {r.remote_id: r for r in connector.pull(marks[name])}
            except PoamSyncError as exc:
                report.failed_connectors[name] = str(exc)
                bound.warning("connector.pull_failed", connector=name, error=str(exc))
                continue
            pulled[name] = records
            report.pulled[name] = len(records)
        active = [n for n in names if n in pulled]

        # 2. Plan from one consistent read of the store (no write lock held meanwhile).
        with self.store.read() as tx:
            items = {i.uuid: i for i in tx.all_items()}
            states = [self._state(tx, name, pulled[name]) for name in active]
            taken = {(i.system, i.poam_id) for i in items.values()}
        self._check_empty_side(states, marks, force)
        the_plan = plan(items, states, self.policies, taken_ids=taken)
        report.plan = the_plan
        self._check_mass_change(the_plan, states, force)
        if dry_run:
            self._count(the_plan, report)
            return report

        # 3. Apply: imports, creates (batched), then each item on its own.
        by_uuid = dict(items)
        for item_plan in the_plan.items:
            if item_plan.new_item is not None:
                self._apply_import(item_plan, report, cycle_id)
                by_uuid[item_plan.item_uuid] = item_plan.new_item
        failed_items = self._apply_creates(the_plan, by_uuid, report, cycle_id)
        stopped = False
        for item_plan in the_plan.items:
            if self._stop.is_set():
                stopped = True
                bound.info("sync.stopping", reason="stop requested")
                break
            if item_plan.item_uuid in failed_items or not item_plan.actions:
                continue  # nothing to do: no transaction either (an idle cycle stays cheap)
            item = by_uuid.get(item_plan.item_uuid)
            if item is None:
                continue
            self._apply_item(item, item_plan, pulled, report, cycle_id)

        # 4. Watermarks, only for connectors whose whole cycle succeeded.
        failed = {e.connector for e in report.errors}
        report.stopped = stopped
        with self.store.begin() as tx:
            # A store error on any item may have lost a remote change: keep every watermark.
            for name in active if not stopped and None not in failed else ():
                if name in failed:
                    continue
                newest = pull_started - self.clock_skew
                if pulled[name]:
                    newest = max(newest, *(r.updated_at for r in pulled[name].values()))
                previous = marks[name]
                if previous is None or newest > previous:
                    tx.set_watermark(name, newest)
        bound.info("sync.cycle", **report.summary())
        return report

    # -- planning inputs -----------------------------------------------------------------------

    def _state(self, tx: StoreTx, name: str, records: dict[str, RemoteRecord]) -> ConnectorState:
        target = self.targets[name]
        # Creates in flight before a crash; kept for this cycle so finishing one is cheap.
        self._intents[name] = {i.item_uuid: i.id for i in tx.pending_intents(name)}
        links = {
            link.item_uuid: LinkInfo(
                link.remote_id, link.remote_key or link.remote_id, link.state == "broken"
            )
            for link in tx.links(name)
        }
        conflicts = {
            (c.item_uuid, c.field): OpenConflict(c.id, c.local, c.remote)
            for c in tx.conflicts(state="open")
            if c.connector == name
        }
        return ConnectorState(
            name=name,
            synced_fields=target.connector.synced_fields,
            project=target.connector.project,
            in_scope=target.in_scope,
            links=links,
            baselines=tx.all_baselines(name),
            pulled=records,
            open_conflicts=conflicts,
            pending_intents=frozenset(self._intents[name]),
            allow_import=target.import_new,
            system=target.system,
        )

    def _check_empty_side(
        self, states: Sequence[ConnectorState], marks: Mapping[str, datetime | None], force: bool
    ) -> None:
        for s in states:
            linked = sum(1 for link in s.links.values() if not link.broken)
            if marks.get(s.name) is None and linked and not s.pulled and not force:
                raise GuardTripped(
                    f"{s.name} returned no records at all, but {linked} item(s) are linked to it; "
                    "refusing to treat them as gone",
                    connector=s.name,
                )

    def _check_mass_change(
        self, the_plan: Plan, states: Sequence[ConnectorState], force: bool
    ) -> None:
        linked = {u for s in states for u in s.links}
        if force or len(linked) < self.guards.min_items:
            return
        touched = {
            p.item_uuid
            for p in the_plan.items
            if p.item_uuid in linked
            and any(isinstance(a, PushField | TakeRemote) for a in p.actions)
        }
        share = len(touched) / len(linked)
        if share > self.guards.max_change_share:
            raise GuardTripped(
                f"this cycle would change {len(touched)} of {len(linked)} linked items "
                f"({share:.0%}, more than the {self.guards.max_change_share:.0%} allowed)"
            )

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

    # -- applying --------------------------------------------------------------------------

    def _apply_import(self, item_plan: ItemPlan, report: CycleReport, cycle_id: str) -> None:
        assert item_plan.new_item is not None and item_plan.imported_from is not None
        source, record = item_plan.imported_from
        try:
            with self.store.begin() as tx:
                tx.save(
                    item_plan.new_item,
                    source=source,
                    actor=record.updated_by,
                    reason=f"new record {record.key} in {source}",
                    batch_id=cycle_id,
                )
                self._link(tx, item_plan.item_uuid, source, record)
                baselines = {
                    a.field: a.value
                    for a in item_plan.actions
                    if isinstance(a, SetBaseline) and a.connector == source
                }
                baselines[NOTES_BASELINE] = [n.id for n in record.notes]
                tx.set_baselines(item_plan.item_uuid, source, baselines)
            report.imported += 1
        except PoamSyncError as exc:
            report.errors.append(ItemError(item_plan.poam_id, source, str(exc)))

    def _apply_creates(
        self, the_plan: Plan, items: Mapping[str, PoamItem], report: CycleReport, cycle_id: str
    ) -> set[str]:
        """Create remote records in batches; returns item uuids whose create failed."""
        failed: set[str] = set()
        wanted: dict[str, list[tuple[ItemPlan, CreateRemote]]] = defaultdict(list)
        for item_plan in the_plan.items:
            for action in item_plan.actions:
                if isinstance(action, CreateRemote):
                    wanted[action.connector].append((item_plan, action))
        for name, creates in wanted.items():
            connector = self.targets[name].connector
            # Intent rows first, committed, so a crash after the remote create is recoverable.
            stamps: dict[str, Stamp] = {}
            intents = self._intents.setdefault(name, {})
            with self.store.begin() as tx:
                for item_plan, action in creates:
                    stamp = Stamp(item_plan.system, item_plan.poam_id, item_plan.item_uuid)
                    stamps[item_plan.item_uuid] = stamp
                    if not action.check_stamp_first:
                        intents[item_plan.item_uuid] = tx.add_intent(
                            item_plan.item_uuid, name, stamp.token
                        )
            to_create: list[tuple[ItemPlan, CreateRemote]] = []
            for item_plan, action in creates:
                if not action.check_stamp_first:
                    to_create.append((item_plan, action))
                    continue
                try:
                    found = connector.find_by_stamp(stamps[item_plan.item_uuid])
                except RemoteError as exc:
                    failed.add(item_plan.item_uuid)
                    report.errors.append(ItemError(item_plan.poam_id, name, str(exc)))
                    continue
                if found is None:
                    to_create.append((item_plan, action))
                else:
                    self._adopt(item_plan, name, found, items[item_plan.item_uuid], report)
            for start in range(0, len(to_create), CREATE_BATCH):
                chunk = to_create[start : start + CREATE_BATCH]
                results = connector.create_many([(stamps[p.item_uuid], a.fields) for p, a in chunk])
                done: list[tuple[ItemPlan, CreateRemote, WriteResult]] = []
                for (item_plan, action), result in zip(chunk, results, strict=True):
                    if isinstance(result, Exception):
                        failed.add(item_plan.item_uuid)
                        report.errors.append(ItemError(item_plan.poam_id, name, str(result)))
                    else:
                        done.append((item_plan, action, result))
                self._record_created(name, done, intents, report)
        return failed

    def _record_created(
        self,
        name: str,
        done: Sequence[tuple[ItemPlan, CreateRemote, WriteResult]],
        intents: Mapping[str, int],
        report: CycleReport,
    ) -> None:
        """Link a batch of new remote records in one transaction (one by one if that fails;
        a record left unlinked keeps its intent and is found by its stamp next cycle)."""

        def record(
            tx: StoreTx, batch: Sequence[tuple[ItemPlan, CreateRemote, WriteResult]]
        ) -> None:
            tx.add_links([self._link_row(p.item_uuid, name, r.record) for p, _a, r in batch])
            base: dict[str, dict[str, JsonValue]] = {}
            for item_plan, action, result in batch:
                failed_fields = {p.field for p in result.problems}
                values = {k: v for k, v in action.fields.items() if k not in failed_fields}
                values[NOTES_BASELINE] = []
                base[item_plan.item_uuid] = values
                for p in result.problems:
                    tx.report_problem(
                        item_uuid=item_plan.item_uuid,
                        connector=name,
                        field=p.field,
                        code=p.code,
                        message=p.message,
                    )
            tx.set_many_baselines(name, base)
            tx.finish_intents(
                [intents[p.item_uuid] for p, _a, _r in batch if p.item_uuid in intents]
            )

        def count(batch: Sequence[tuple[ItemPlan, CreateRemote, WriteResult]]) -> None:
            for _p, _a, result in batch:
                report.created[name] += 1
                report.problems += len(result.problems)

        try:
            with self.store.begin() as tx:
                record(tx, done)
            count(done)
            return
        except PoamSyncError:
            pass
        for one in done:
            try:
                with self.store.begin() as tx:
                    record(tx, [one])
                count([one])
            except PoamSyncError as exc:
                report.errors.append(ItemError(one[0].poam_id, name, str(exc)))

    def _adopt(
        self,
        item_plan: ItemPlan,
        name: str,
        record: RemoteRecord,
        item: PoamItem,
        report: CycleReport,
    ) -> None:
        connector = self.targets[name].connector
        local = to_sync(item)
        with self.store.begin() as tx:
            self._link(tx, item_plan.item_uuid, name, record)
            # Agree only on what already matches; the canonical record wins the rest next cycle.
            base: dict[str, JsonValue] = {
                k: v
                for k, v in record.fields.items()
                if k in connector.synced_fields and connector.project(k, local.get(k)) == v
            }
            base[NOTES_BASELINE] = [n.id for n in record.notes]
            tx.set_baselines(item_plan.item_uuid, name, base)
            intent = self._intents.get(name, {}).pop(item_plan.item_uuid, None)
            if intent is not None:
                tx.finish_intent(intent)
        report.adopted += 1

    @staticmethod
    def _link_row(item_uuid: str, connector: str, record: RemoteRecord) -> LinkRow:
        return LinkRow(
            item_uuid=item_uuid,
            connector=connector,
            remote_id=record.remote_id,
            remote_key=record.key,
            remote_version=record.version,
            url=record.url,
        )

    def _link(self, tx: StoreTx, item_uuid: str, connector: str, record: RemoteRecord) -> None:
        tx.set_link(self._link_row(item_uuid, connector, record))

    def _apply_item(
        self,
        item: PoamItem,
        item_plan: ItemPlan,
        pulled: Mapping[str, Mapping[str, RemoteRecord]],
        report: CycleReport,
        cycle_id: str,
    ) -> None:
        actions = item_plan.actions
        pushes: dict[str, dict[str, PushField]] = defaultdict(dict)
        for a in actions:
            if isinstance(a, PushField):
                pushes[a.connector][a.field] = a
        baselines: dict[str, dict[str, JsonValue]] = defaultdict(dict)
        problems: list[tuple[str, str, str, str]] = []
        cleared: list[tuple[str, str | None]] = []
        broken: dict[str, str] = {}
        failed_connectors: set[str] = set()
        written_notes: dict[str, list[str]] = defaultdict(list)

        # Remote writes first.
        for name, fields in pushes.items():
            connector = self.targets[name].connector
            remote_id = next(iter(fields.values())).remote_id
            try:
                result = connector.update(remote_id, {f: a.value for f, a in fields.items()})
            except RecordGone as exc:
                broken[name] = str(exc)
                failed_connectors.add(name)
                continue
            except RemoteError as exc:
                failed_connectors.add(name)
                report.errors.append(ItemError(item.poam_id, name, str(exc)))
                continue
            bad = {p.field for p in result.problems}
            for p in result.problems:
                problems.append((name, p.field, p.code, p.message))
            for f, a in fields.items():
                if f not in bad:
                    baselines[name][f] = a.value
                    cleared.append((name, f))
            report.updated_remote[name] += 1
        for a in actions:
            if isinstance(a, PushNote) and a.connector not in failed_connectors:
                try:
                    self.targets[a.connector].connector.add_note(a.remote_id, a.note)
                    written_notes[a.connector].append(a.note.id)
                except RemoteError as exc:
                    failed_connectors.add(a.connector)
                    report.errors.append(ItemError(item.poam_id, a.connector, str(exc)))

        for a in actions:
            if isinstance(a, AdoptRemote):
                try:
                    self._adopt(item_plan, a.connector, a.record, item, report)
                except PoamSyncError as exc:
                    report.errors.append(ItemError(item.poam_id, a.connector, str(exc)))

        # Then the canonical record, in one transaction.
        try:
            with self.store.begin() as tx:
                current = tx.get_by_uuid(item.uuid) or item
                self._take(tx, current, actions, cycle_id, report)
                for a in actions:
                    if isinstance(a, SetBaseline):
                        baselines[a.connector][a.field] = a.value
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
                        report.conflicts += 1
                    elif isinstance(a, CloseConflict):
                        tx.resolve_conflict(
                            a.conflict_id,
                            value=a.value,
                            taken_from="agreement",
                            by="poam-sync",
                            reason=a.why,
                        )
                    elif (
                        isinstance(a, PushField)
                        and a.overridden
                        and a.connector not in failed_connectors
                    ):
                        tx.log_event(
                            item_uuid=item.uuid,
                            field=a.field,
                            old=a.overrides,
                            new=a.value,
                            source="policy",
                            actor=None,
                            reason=f"{a.connector} edit overridden: {a.why}",
                            batch_id=cycle_id,
                        )
                    elif isinstance(a, LinkBroken):
                        tx.report_problem(
                            item_uuid=item.uuid,
                            connector=a.connector,
                            field=None,
                            code="broken_link",
                            message=a.why,
                        )
                for name, reason in broken.items():
                    tx.mark_link_broken(item.uuid, name, reason)
                    tx.report_problem(
                        item_uuid=item.uuid,
                        connector=name,
                        field=None,
                        code="broken_link",
                        message=f"the linked {name} record is gone: {reason}",
                    )
                for name, values in pulled.items():
                    link = tx.link(item.uuid, name)
                    if link is not None and link.remote_id in values:
                        record = values[link.remote_id]
                        if record.version != link.remote_version:
                            self._link(tx, item.uuid, name, record)
                self._note_baselines(tx, item, actions, written_notes, baselines, pulled)
                for name, values in baselines.items():
                    if name in failed_connectors and name not in written_notes:
                        values = {k: v for k, v in values.items() if k not in pushes.get(name, {})}
                    if values:
                        tx.set_baselines(item.uuid, name, values)
                for name, cleared_field in cleared:
                    tx.clear_problems(item.uuid, name, cleared_field)
                for name, bad_field, code, message in problems:
                    tx.report_problem(
                        item_uuid=item.uuid,
                        connector=name,
                        field=bad_field,
                        code=code,
                        message=message,
                    )
                    report.problems += 1
        except PoamSyncError as exc:
            report.errors.append(ItemError(item.poam_id, None, str(exc)))

    def _take(
        self,
        tx: StoreTx,
        current: PoamItem,
        actions: Sequence[Any],
        cycle_id: str,
        report: CycleReport,
    ) -> None:
        """Write remote values into the canonical record, one save per source connector."""
        by_source: dict[str, list[TakeRemote]] = defaultdict(list)
        for a in actions:
            if isinstance(a, TakeRemote):
                by_source[a.connector].append(a)
        notes: dict[str, list[Note]] = defaultdict(list)
        for a in actions:
            if isinstance(a, TakeNote):
                notes[a.connector].append(a.note)
        for source in sorted(set(by_source) | set(notes)):
            takes = by_source.get(source, [])
            updated = from_sync(current, {a.field: a.new for a in takes})
            extension = next((a for a in takes if a.field == "due_date"), None)
            if extension is not None and _later(extension.old, extension.new):
                updated = updated.model_copy(
                    update={
                        "milestone_changes": (
                            *updated.milestone_changes,
                            MilestoneChange(
                                kind="extension",
                                on=_now().date(),
                                text=f"due date moved from {extension.old} to {extension.new} "
                                f"in {source}"
                                + (f" by {extension.actor}" if extension.actor else ""),
                            ),
                        )
                    }
                )
            if notes.get(source):
                updated = updated.model_copy(update={"notes": (*updated.notes, *notes[source])})
            actor = next((a.actor for a in takes if a.actor), None)
            reason = "; ".join(a.why for a in takes) or f"new comments from {source}"
            rows = tx.save(updated, source=source, actor=actor, reason=reason, batch_id=cycle_id)
            if rows:
                report.updated_local += 1
            current = updated

    @staticmethod
    def _note_baselines(
        tx: StoreTx,
        item: PoamItem,
        actions: Sequence[Any],
        written: Mapping[str, list[str]],
        baselines: dict[str, dict[str, JsonValue]],
        pulled: Mapping[str, Mapping[str, RemoteRecord]],
    ) -> None:
        for name in {*written, *(a.connector for a in actions if isinstance(a, TakeNote))}:
            known = set(tx.baselines(item.uuid, name).get(NOTES_BASELINE) or [])
            known |= set(written.get(name, []))
            link = tx.link(item.uuid, name)
            if link is not None and link.remote_id in pulled.get(name, {}):
                known |= {n.id for n in pulled[name][link.remote_id].notes}
            baselines[name][NOTES_BASELINE] = sorted(known)


def _later(old: JsonValue, new: JsonValue) -> bool:
    try:
        return bool(old and new and date.fromisoformat(str(new)) > date.fromisoformat(str(old)))
    except ValueError:
        return False
