"""What each page shows, read from the store in one short read transaction per page.

The items table and the dashboard's counts are computed in SQL (``StoreTx.browse_items`` and
friends); only the rows of one page are read as items.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime

from poam_sync.deadlines import current_due_date, due_state, effective_risk, scheduled_completion
from poam_sync.model import PoamItem, RiskLevel, Status
from poam_sync.store import (
    ChangeRow,
    ConflictRow,
    ItemFilter,
    LinkRow,
    OwnerDue,
    ProblemRow,
    Store,
    StoredValue,
    StoreTx,
)

RISKS: tuple[str, ...] = tuple(r.value for r in RiskLevel)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


def shown(value: StoredValue) -> str:
    """A value as a person reads it: text as is, nothing as an em dash, the rest as JSON."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1)


@dataclass(frozen=True, slots=True)
class ItemView:
    item: PoamItem
    risk: str | None
    due: date | None
    due_state: str
    owner: str
    open_conflicts: int


def _owner(item: PoamItem) -> str:
    if item.owner is None:
        return ""
    return item.owner.email or item.owner.name or item.owner.org or ""


def item_view(item: PoamItem, today: date, soon_days: int, conflicts: int = 0) -> ItemView:
    risk = effective_risk(item)
    return ItemView(
        item=item,
        risk=risk.value if risk else None,
        due=current_due_date(item),
        due_state=due_state(item, today, soon_days=soon_days),
        owner=_owner(item),
        open_conflicts=conflicts,
    )


@dataclass(frozen=True, slots=True)
class ItemsPage:
    total: int
    rows: tuple[ItemView, ...]
    systems: tuple[str, ...]


def items_page(store: Store, f: ItemFilter, *, today: date, soon_days: int) -> ItemsPage:
    with store.read() as tx:
        page = tx.browse_items(f, today=today)
        systems = tx.systems()
    rows = []
    for data in page.rows:
        item = PoamItem.model_validate_json(data)
        rows.append(item_view(item, today, soon_days, page.open_conflicts.get(item.uuid, 0)))
    return ItemsPage(page.total, tuple(rows), tuple(systems))


def export_items(store: Store, f: ItemFilter, *, today: date) -> list[PoamItem]:
    with store.read() as tx:
        return [PoamItem.model_validate_json(d) for d in tx.all_browsed(f, today=today)]


@dataclass(frozen=True, slots=True)
class Dashboard:
    systems: tuple[str, ...]
    counts: dict[tuple[str, str], int]  # (status, risk or "none") -> items
    risks: tuple[str, ...]
    statuses: tuple[str, ...]  # those with items, in lifecycle order
    total: int
    open: int
    owners: tuple[OwnerDue, ...]
    past_deadline: int
    past_rows: tuple[tuple[ItemView, date | None], ...]  # the item and its FedRAMP deadline
    open_conflicts: int
    problems: dict[str, int]  # kind -> active problems
    trend: tuple[tuple[str, int], ...]


@dataclass
class TrendCache:
    """The open-item trend per system, kept until the change log grows: reading it scans
    the log's status rows, which a dashboard shown every minute need not do each time."""

    size: int = 64
    _entries: dict[str | None, tuple[int, tuple[tuple[str, int], ...]]] = field(
        default_factory=dict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def trend(self, tx: StoreTx, system: str | None) -> tuple[tuple[str, int], ...]:
        head = tx.log_head()
        with self._lock:
            hit = self._entries.get(system)
        if hit is not None and hit[0] == head:
            return hit[1]
        trend = tuple(tx.open_trend(system))
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[system] = (head, trend)
        return trend


def dashboard(
    store: Store, system: str | None, *, today: date, soon_days: int, trends: TrendCache
) -> Dashboard:
    with store.read() as tx:
        systems = tx.systems()
        raw = tx.status_risk_counts(system)
        owners = tx.due_by_owner(system, today=today, soon_days=soon_days)
        past, past_rows = tx.past_fedramp_deadline(system, today=today)
        conflicts = [c for c in tx.conflicts(state="open") if not system or c.system == system]
        problems = tx.problems(active=True)
        trend = trends.trend(tx, system)
    counts = {(s, r or "none"): n for (s, r), n in raw.items()}
    present = {s for s, _ in counts}
    kinds: dict[str, int] = {}
    for p in problems:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    closed = {s.value for s in Status if s.is_closed}
    past_items = [PoamItem.model_validate_json(d) for d in past_rows]
    return Dashboard(
        systems=tuple(systems),
        counts=counts,
        risks=(*reversed(RISKS), "none"),
        statuses=tuple(s for s in STATUSES if s in present),
        total=sum(counts.values()),
        open=sum(n for (s, _), n in counts.items() if s not in closed),
        owners=tuple(owners),
        past_deadline=past,
        past_rows=tuple(
            (item_view(i, today, soon_days), scheduled_completion(i)) for i in past_items
        ),
        open_conflicts=len(conflicts),
        problems=kinds,
        trend=tuple(trend),
    )


@dataclass(frozen=True, slots=True)
class ItemPageData:
    view: ItemView
    links: tuple[LinkRow, ...]
    conflicts: tuple[ConflictRow, ...]
    log: tuple[ChangeRow, ...]


def item_page(store: Store, uuid: str, *, today: date, soon_days: int) -> ItemPageData | None:
    with store.read() as tx:
        item = tx.get_by_uuid(uuid)
        if item is None:
            return None
        links = tx.links_of(uuid)
        conflicts = [c for c in tx.conflicts(state="all") if c.item_uuid == uuid]
        log = tx.log(item_uuid=uuid)
    open_count = sum(1 for c in conflicts if c.state == "open")
    return ItemPageData(
        view=item_view(item, today, soon_days, open_count),
        links=tuple(links),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.id, reverse=True)),
        log=tuple(reversed(log)),
    )


@dataclass(frozen=True, slots=True)
class LocalChange:
    """Who last changed the field here, and when (from the change log)."""

    actor: str | None
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ConflictView:
    conflict: ConflictRow
    title: str
    local_change: LocalChange | None
    policy: str
    lists: bool  # the field holds a list (a typed value is JSON then)


def conflicts_page(store: Store, policies: dict[str, str]) -> list[ConflictView]:
    with store.read() as tx:
        rows = tx.conflicts(state="open")
        views = []
        for c in rows:
            item = tx.get_by_uuid(c.item_uuid)
            changes = [r for r in tx.log(item_uuid=c.item_uuid) if r.field == c.field]
            last = changes[-1] if changes else None
            views.append(
                ConflictView(
                    conflict=c,
                    title=item.title if item else "",
                    local_change=LocalChange(last.actor, last.source, last.at) if last else None,
                    policy=policies.get(c.field, "manual"),
                    lists=any(isinstance(v, list) for v in (c.baseline, c.local, c.remote)),
                )
            )
    return views


# what to do about a problem when the connector gave no hint of its own
_FIXES = {
    "read": "add the remote value to the connector's mapping file (its status or user map), "
    "then run a cycle",
    "write": "check the connector's mapping for this field and the sync user's rights on the "
    "remote; the next cycle tries again",
    "item": "the item is fetched again and retried on the next cycle; if it keeps failing, "
    "read the message and fix the record it names",
}
_CODE_FIXES = {
    "broken_link": "the linked record was deleted or moved remotely: restore it there, or "
    "unlink the item so that the next cycle creates a new record",
}


def fix_for(p: ProblemRow) -> str:
    return p.hint or _CODE_FIXES.get(p.code) or _FIXES.get(p.kind, _FIXES["write"])


def problems_page(store: Store) -> list[tuple[ProblemRow, str]]:
    with store.read() as tx:
        rows = tx.problems(active=True)
    return [(p, fix_for(p)) for p in rows]
