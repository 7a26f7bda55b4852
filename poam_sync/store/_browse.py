"""Browsing the canonical items in SQL: filter, search, sort and page, and the counts a
dashboard shows, without reading every item into Python (the workbench at 100,000 items).

Every write of an item also writes its row of ``item_facets`` (:func:`facet_row`): narrow
columns computed by :mod:`poam_sync.deadlines`, the effective risk (the adjusted one only when
its risk adjustment is approved), the current due date (the due date, else the scheduled
completion date, else detection plus the FedRAMP window; a KEV due date when earlier) and the
FedRAMP deadline, with the status, title and owner. Queries filter, sort and count on that
table alone (a scan reads a few MB at 100,000 items) and read the stored JSON of one page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from poam_sync.deadlines import current_due_date, effective_risk, scheduled_completion
from poam_sync.model import CLOSED_STATUSES, PoamItem
from poam_sync.store._schema import change_log, conflicts, dump_json, item_facets
from poam_sync.store._schema import items as items_t
from poam_sync.store._tx import TxBase

SortKey = Literal["poam_id", "title", "system", "status", "risk", "owner", "due", "updated"]
SORT_KEYS: tuple[SortKey, ...] = (
    "poam_id",
    "title",
    "system",
    "status",
    "risk",
    "owner",
    "due",
    "updated",
)
_RISK_RANK = {"low": 1, "moderate": 2, "high": 3, "critical": 4}
_CLOSED = tuple(sorted(s.value for s in CLOSED_STATUSES))


def facet_row(
    item: PoamItem, uuid: str, system: str, now: datetime
) -> dict[str, str | date | datetime | None]:
    """The item's ``item_facets`` row, as every write of it stores it."""
    risk = effective_risk(item)
    return {
        "uuid": uuid,
        "system": system,
        "poam_id": item.poam_id,
        "status": item.status.value,
        "effective_risk": risk.value if risk else None,
        "current_due": current_due_date(item),
        "fedramp_due": scheduled_completion(item),
        "title": item.title,
        "owner_email": item.owner.email if item.owner else None,
        "owner_name": item.owner.name if item.owner else None,
        "updated_at": now,
    }


def write_facets(
    conn: sa.Connection,
    *,
    new: Sequence[Mapping[str, object]] = (),
    changed: Sequence[Mapping[str, object]] = (),
) -> None:
    """Insert the rows of new items, replace those of changed ones (in the item's transaction)."""
    if new:
        conn.execute(sa.insert(item_facets), list(new))
    if changed:
        names = [n for n in changed[0] if n != "uuid"]
        conn.execute(
            sa.update(item_facets)
            .where(item_facets.c.uuid == sa.bindparam("b_uuid"))
            .values({n: sa.bindparam(f"b_{n}") for n in names}),
            [{f"b_{k}": v for k, v in row.items()} for row in changed],
        )


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """Which items, in which order, which page. Every condition given must hold."""

    system: str | None = None
    status: str | None = None  # a Status value, or "open" / "closed" for the groups
    risk: str | None = None  # a RiskLevel value (the effective risk), or "none"
    owner: str | None = None  # part of the owner's e-mail or name, any case
    overdue: bool = False
    has_conflict: bool = False
    search: str | None = None  # part of the POA&M ID or title, any case
    sort: SortKey = "poam_id"
    descending: bool = False
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True, slots=True)
class ItemPage:
    total: int  # items matching the filter, on every page
    rows: tuple[str, ...]  # the page's items as stored JSON (PoamItem.model_validate_json)
    open_conflicts: dict[str, int]  # item uuid -> open conflicts, for the page's items


@dataclass(frozen=True, slots=True)
class OwnerDue:
    owner: str  # e-mail, else name, else "(no owner)"
    overdue: int
    due_soon: int


c = item_facets.c


def _open() -> sa.ColumnElement[bool]:
    return c.status.not_in(_CLOSED)


def _owner() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(c.owner_email, c.owner_name)


def _part(column: sa.ColumnElement[Any], wanted: str) -> sa.ColumnElement[bool]:
    """``column`` holds ``wanted`` anywhere, any case; % and _ are plain letters."""
    return sa.func.lower(column).contains(wanted.strip().lower(), autoescape=True)


def _conditions(f: ItemFilter, today: date) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if f.system:
        where.append(c.system == f.system)
    if f.status == "open":
        where.append(_open())
    elif f.status == "closed":
        where.append(c.status.in_(_CLOSED))
    elif f.status:
        where.append(c.status == f.status)
    if f.risk == "none":
        where.append(c.effective_risk.is_(None))
    elif f.risk:
        where.append(c.effective_risk == f.risk)
    if f.owner and f.owner.strip():
        where.append(sa.or_(_part(c.owner_email, f.owner), _part(c.owner_name, f.owner)))
    if f.overdue:
        where.append(sa.and_(_open(), c.current_due < today))
    if f.has_conflict:
        open_ones = sa.select(conflicts.c.item_uuid).where(conflicts.c.state == "open")
        where.append(c.uuid.in_(open_ones))
    if f.search and f.search.strip():
        where.append(sa.or_(_part(c.poam_id, f.search), _part(c.title, f.search)))
    return where


def _order(f: ItemFilter) -> list[sa.ColumnElement[Any]]:
    key: sa.ColumnElement[Any] = {
        "poam_id": c.poam_id,
        "title": sa.func.lower(c.title),
        "system": c.system,
        "status": c.status,
        "risk": sa.case(
            *((c.effective_risk == name, rank) for name, rank in _RISK_RANK.items()), else_=0
        ),
        "owner": sa.func.lower(_owner()),
        "due": c.current_due,
        "updated": c.updated_at,
    }[f.sort]
    ordered = key.desc() if f.descending else key.asc()
    if f.sort in ("due", "owner"):
        # nothing (no due date, no owner) last either way: it is not the most urgent
        return [key.is_(None), ordered, c.system, c.poam_id]
    return [ordered, c.system, c.poam_id]


class BrowseTx(TxBase):
    """The browsing part of a store transaction (reads only)."""

    def browse_items(self, f: ItemFilter, *, today: date) -> ItemPage:
        """One page of the items ``f`` selects, and how many it selects in all."""
        where = _conditions(f, today)
        total = self._conn.execute(
            sa.select(sa.func.count()).select_from(item_facets).where(*where)
        ).scalar_one()
        page = max(f.page, 1)
        # the ids alone are sorted (narrow rows), then one page of items is read
        uuids = list(
            self._conn.execute(
                sa.select(c.uuid)
                .where(*where)
                .order_by(*_order(f))
                .limit(f.per_page)
                .offset((page - 1) * f.per_page)
            ).scalars()
        )
        if not uuids:
            return ItemPage(int(total), (), {})
        counts = {
            r.item_uuid: int(r.n)
            for r in self._conn.execute(
                sa.select(conflicts.c.item_uuid, sa.func.count().label("n"))
                .where(conflicts.c.item_uuid.in_(uuids), conflicts.c.state == "open")
                .group_by(conflicts.c.item_uuid)
            )
        }
        return ItemPage(int(total), tuple(self._data_of(uuids)), counts)

    def all_browsed(self, f: ItemFilter, *, today: date) -> list[str]:
        """Every item ``f`` selects (all pages), as stored JSON: an export of a filtered view."""
        query = (
            sa.select(items_t.c.data)
            .join(item_facets, item_facets.c.uuid == items_t.c.uuid)
            .where(*_conditions(f, today))
            .order_by(*_order(f))
        )
        return list(self._conn.execute(query).scalars())

    def systems(self) -> list[str]:
        """The systems that have items, by name: one index probe per system (a recursive
        query from one to the next), not a pass over every item."""
        it = items_t.alias("it")
        first = sa.select(sa.func.min(items_t.c.system).label("name")).cte("names", recursive=True)
        following = (
            sa.select(sa.func.min(it.c.system)).where(it.c.system > first.c.name).scalar_subquery()
        )
        names = first.union_all(sa.select(following).where(first.c.name.is_not(None)))
        query = sa.select(names.c.name).where(names.c.name.is_not(None)).order_by(names.c.name)
        return list(self._conn.execute(query).scalars())

    def status_risk_counts(self, system: str | None) -> dict[tuple[str, str | None], int]:
        """Items by (status, effective risk)."""
        query = sa.select(c.status, c.effective_risk, sa.func.count().label("n")).group_by(
            c.status, c.effective_risk
        )
        if system:
            query = query.where(c.system == system)
        return {(r.status, r.effective_risk): int(r.n) for r in self._conn.execute(query)}

    def due_by_owner(self, system: str | None, *, today: date, soon_days: int) -> list[OwnerDue]:
        """Open items overdue or due within ``soon_days`` days, counted by owner."""
        soon = today + timedelta(days=soon_days)
        owner = _owner().label("owner")
        late = sa.func.sum(sa.case((c.current_due < today, 1), else_=0)).label("late")
        near = sa.func.sum(sa.case((c.current_due >= today, 1), else_=0)).label("near")
        query = sa.select(owner, late, near).where(_open(), c.current_due <= soon).group_by(owner)
        if system:
            query = query.where(c.system == system)
        rows = [
            OwnerDue(r.owner or "(no owner)", int(r.late or 0), int(r.near or 0))
            for r in self._conn.execute(query)
        ]
        rows.sort(key=lambda o: (-o.overdue, -o.due_soon, o.owner))
        return rows

    def past_fedramp_deadline(
        self, system: str | None, *, today: date, limit: int = 20
    ) -> tuple[int, list[str]]:
        """Open items whose FedRAMP deadline (detection + window) has passed: how many, and
        the most overdue ones as stored JSON."""
        where = [_open(), c.fedramp_due < today]
        if system:
            where.append(c.system == system)
        total = self._conn.execute(
            sa.select(sa.func.count()).select_from(item_facets).where(*where)
        ).scalar_one()
        uuids = list(
            self._conn.execute(
                sa.select(c.uuid).where(*where).order_by(c.fedramp_due, c.poam_id).limit(limit)
            ).scalars()
        )
        return int(total), self._data_of(uuids)

    def _data_of(self, uuids: list[str]) -> list[str]:
        """The stored JSON of these items, in this order."""
        if not uuids:
            return []
        found = self._conn.execute(
            sa.select(items_t.c.uuid, items_t.c.data).where(items_t.c.uuid.in_(uuids))
        )
        data = {r.uuid: r.data for r in found}
        return [data[u] for u in uuids]

    def open_trend(self, system: str | None) -> list[tuple[str, int]]:
        """Open items at the end of each day on which the count changed, from the change log:
        ``(YYYY-MM-DD, open items)``, oldest first. Every status change moves the count by
        its old and new values (an item's first status row has the old value ``null``)."""
        closed = [dump_json(v) for v in (*_CLOSED, None)]
        delta = sa.case((change_log.c.new_value.in_(closed), 0), else_=1) - sa.case(
            (change_log.c.old_value.in_(closed), 0), else_=1
        )
        day = sa.func.substr(change_log.c.at, 1, 10).label("day")
        query = (
            sa.select(day, sa.func.sum(delta).label("d"))
            .where(change_log.c.field == "status")
            .group_by(day)
            .order_by(day)
        )
        if system:
            query = query.where(change_log.c.system == system)
        trend: list[tuple[str, int]] = []
        running = 0
        for r in self._conn.execute(query):
            running += int(r.d or 0)
            trend.append((str(r.day), running))
        return trend

    def log_head(self) -> int:
        """The sequence number of the newest change-log row (0 for none): what changes when
        anything changed."""
        found = self._conn.execute(sa.select(sa.func.max(change_log.c.seq))).scalar_one()
        return int(found or 0)
