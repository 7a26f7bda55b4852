"""Browsing the canonical items in SQL: filter, search, sort and page, and the counts a
dashboard shows, without reading every item into Python (the workbench at 100,000 items).

An item's risk and due date are computed in SQL exactly as :mod:`poam_sync.deadlines` computes
them in Python (a test compares both on the same items): the *effective* risk (the adjusted one
only when its risk adjustment is approved), and the *current* due date (the due date, else the
scheduled completion date, else detection plus the FedRAMP window; a KEV due date when
earlier). Dates are compared as ``YYYY-MM-DD`` text, which sorts as the dates do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from poam_sync.deadlines import REMEDIATION_DAYS
from poam_sync.model import CLOSED_STATUSES
from poam_sync.store._schema import change_log, conflicts, dump_json
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


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """Which items, in which order, which page. Every condition given must hold."""

    system: str | None = None
    status: str | None = None  # a Status value, or "open" / "closed" for the groups
    risk: str | None = None  # a RiskLevel value (the effective risk), or "none"
    owner: str | None = None  # part of the owner's e-mail or name, any case
    overdue: bool = False
    has_conflict: bool = False
    search: str | None = None  # part of the POA&M ID, title or description, any case
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


class _Expr:
    """SQL expressions over ``items.data`` for one database."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def text(self, *path: str) -> sa.ColumnElement[Any]:
        """The JSON string at ``path`` of the item (NULL when absent or null)."""
        if self.postgres:
            return sa.func.jsonb_extract_path_text(sa.cast(items_t.c.data, JSONB), *path)
        return sa.func.json_extract(items_t.c.data, "$." + ".".join(path))

    def plus_days(self, day: sa.ColumnElement[Any], days: int) -> sa.ColumnElement[Any]:
        if self.postgres:
            return sa.func.to_char(sa.cast(day, sa.Date) + days, "YYYY-MM-DD")
        return sa.func.date(day, f"+{days} days")

    def risk(self) -> sa.ColumnElement[Any]:
        approved = sa.and_(
            self.text("deviation", "risk_adjustment") == "approved",
            self.text("adjusted_risk").is_not(None),
        )
        return sa.case((approved, self.text("adjusted_risk")), else_=self.text("original_risk"))

    def fedramp_deadline(self) -> sa.ColumnElement[Any]:
        """Detection plus the FedRAMP window (the KEV due date when earlier)."""
        detected, risk = self.text("detected_on"), self.risk()
        windows = (
            (risk == level.value, self.plus_days(detected, days))
            for level, days in REMEDIATION_DAYS.items()
        )
        rule = sa.case(*windows, else_=sa.null())
        kev = self.text("kev_due_date")
        earlier = sa.and_(kev.is_not(None), kev < rule)
        return sa.case((earlier, kev), else_=sa.func.coalesce(rule, kev))

    def due(self) -> sa.ColumnElement[Any]:
        """:func:`poam_sync.deadlines.current_due_date` in SQL."""
        kev = self.text("kev_due_date")
        base = sa.func.coalesce(
            self.text("due_date"), self.text("scheduled_completion_date"), self.fedramp_deadline()
        )
        return sa.case((sa.and_(kev.is_not(None), kev < base), kev), else_=base)

    def owner(self) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(
            items_t.c.owner_email, self.text("owner", "name"), self.text("owner", "org")
        )


def _open() -> sa.ColumnElement[bool]:
    return items_t.c.status.not_in(_CLOSED)


def _has_open_conflict() -> sa.Exists:
    return sa.exists().where(conflicts.c.item_uuid == items_t.c.uuid, conflicts.c.state == "open")


class BrowseTx(TxBase):
    """The browsing part of a store transaction (reads only)."""

    def _expr(self) -> _Expr:
        return _Expr(self._postgres)

    def _conditions(self, f: ItemFilter, today: date) -> list[sa.ColumnElement[bool]]:
        x = self._expr()
        where: list[sa.ColumnElement[bool]] = []
        if f.system:
            where.append(items_t.c.system == f.system)
        if f.status == "open":
            where.append(_open())
        elif f.status == "closed":
            where.append(items_t.c.status.in_(_CLOSED))
        elif f.status:
            where.append(items_t.c.status == f.status)
        if f.risk == "none":
            where.append(x.risk().is_(None))
        elif f.risk:
            where.append(x.risk() == f.risk)
        if f.owner:
            wanted = f.owner.strip().lower()
            where.append(
                sa.or_(
                    sa.func.lower(items_t.c.owner_email).contains(wanted, autoescape=True),
                    sa.func.lower(x.text("owner", "name")).contains(wanted, autoescape=True),
                )
            )
        if f.overdue:
            where.append(sa.and_(_open(), x.due() < today.isoformat()))
        if f.has_conflict:
            where.append(_has_open_conflict())
        if f.search and f.search.strip():
            wanted = f.search.strip().lower()
            where.append(
                sa.or_(
                    sa.func.lower(items_t.c.poam_id).contains(wanted, autoescape=True),
                    sa.func.lower(x.text("title")).contains(wanted, autoescape=True),
                    sa.func.lower(x.text("description")).contains(wanted, autoescape=True),
                )
            )
        return where

    def _order(self, f: ItemFilter) -> list[sa.ColumnElement[Any]]:
        x = self._expr()
        key: sa.ColumnElement[Any] = {
            "poam_id": items_t.c.poam_id,
            "title": sa.func.lower(x.text("title")),
            "system": items_t.c.system,
            "status": items_t.c.status,
            "risk": sa.case(
                *((x.risk() == name, rank) for name, rank in _RISK_RANK.items()), else_=0
            ),
            "owner": sa.func.lower(x.owner()),
            "due": x.due(),
            "updated": items_t.c.updated_at,
        }[f.sort]
        ordered = key.desc() if f.descending else key.asc()
        # NULLs last either way (an item without a due date is not the most urgent one)
        return [key.is_(None), ordered, items_t.c.system, items_t.c.poam_id]

    def browse_items(self, f: ItemFilter, *, today: date) -> ItemPage:
        """One page of the items ``f`` selects, and how many it selects in all."""
        where = self._conditions(f, today)
        total = self._conn.execute(
            sa.select(sa.func.count()).select_from(items_t).where(*where)
        ).scalar_one()
        page = max(f.page, 1)
        query = (
            sa.select(items_t.c.uuid, items_t.c.data)
            .where(*where)
            .order_by(*self._order(f))
            .limit(f.per_page)
            .offset((page - 1) * f.per_page)
        )
        found = list(self._conn.execute(query))
        uuids = [r.uuid for r in found]
        counts: dict[str, int] = {}
        if uuids:
            counts = {
                r.item_uuid: int(r.n)
                for r in self._conn.execute(
                    sa.select(conflicts.c.item_uuid, sa.func.count().label("n"))
                    .where(conflicts.c.item_uuid.in_(uuids), conflicts.c.state == "open")
                    .group_by(conflicts.c.item_uuid)
                )
            }
        return ItemPage(int(total), tuple(r.data for r in found), counts)

    def all_browsed(self, f: ItemFilter, *, today: date) -> list[str]:
        """Every item ``f`` selects (all pages), as stored JSON: an export of a filtered view."""
        query = sa.select(items_t.c.data).where(*self._conditions(f, today))
        return list(self._conn.execute(query.order_by(*self._order(f))).scalars())

    def systems(self) -> list[str]:
        return list(
            self._conn.execute(
                sa.select(items_t.c.system).distinct().order_by(items_t.c.system)
            ).scalars()
        )

    def status_risk_counts(self, system: str | None) -> dict[tuple[str, str | None], int]:
        """Items by (status, effective risk)."""
        risk = self._expr().risk().label("risk")
        query = sa.select(items_t.c.status, risk, sa.func.count().label("n")).group_by(
            items_t.c.status, risk
        )
        if system:
            query = query.where(items_t.c.system == system)
        return {(r.status, r.risk): int(r.n) for r in self._conn.execute(query)}

    def due_by_owner(self, system: str | None, *, today: date, soon_days: int) -> list[OwnerDue]:
        """Open items overdue or due within ``soon_days`` days, counted by owner."""
        x = self._expr()
        due = x.due()
        soon = (today + timedelta(days=soon_days)).isoformat()
        inner = sa.select(x.owner().label("owner"), due.label("due")).where(_open())
        if system:
            inner = inner.where(items_t.c.system == system)
        sub = inner.subquery()
        late = sa.func.sum(sa.case((sub.c.due < today.isoformat(), 1), else_=0))
        near = sa.func.sum(
            sa.case((sa.and_(sub.c.due >= today.isoformat(), sub.c.due <= soon), 1), else_=0)
        )
        query = (
            sa.select(sub.c.owner, late.label("late"), near.label("near"))
            .where(sub.c.due <= soon)
            .group_by(sub.c.owner)
        )
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
        deadline = self._expr().fedramp_deadline()
        where = [_open(), deadline < today.isoformat()]
        if system:
            where.append(items_t.c.system == system)
        total = self._conn.execute(
            sa.select(sa.func.count()).select_from(items_t).where(*where)
        ).scalar_one()
        rows = self._conn.execute(
            sa.select(items_t.c.data)
            .where(*where)
            .order_by(deadline, items_t.c.poam_id)
            .limit(limit)
        ).scalars()
        return int(total), list(rows)

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
