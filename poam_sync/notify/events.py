"""What is worth telling, read from the store: alerts for admins, digests for owners and the office.

Every event has a stable key, so that it is told once whatever the number of cycles that see it:

==============================  ============================================================
``conflict:<id>``               a new open conflict (both sides changed a field differently)
``problem:<code>:...``          a blocked transition (``transition_blocked``) or a value no
                                mapping reads (a ``read`` problem), keyed by where and since when
``failing:<connector>:<start>`` a connector that failed ``failing_cycles`` cycles in a row
``digest:owner:<email>:<day>``  an owner's digest of that day (or week's day)
``digest:office:<day>``         the POA&M office's digest
==============================  ============================================================

Pure functions of what they are given (items, conflicts, problems, today): the notifier reads
the store and hands them over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from poam_sync.deadlines import current_due_date, due_state, scheduled_completion
from poam_sync.model import MilestoneStatus, PoamItem
from poam_sync.notify.messages import Message, Section, render
from poam_sync.store import ConflictRow, ProblemRow

BLOCKED = "transition_blocked"


@dataclass(frozen=True)
class Alert:
    key: str
    heading: str  # the section it is listed under
    line: str


def _value(value: object) -> str:
    return "(empty)" if value in (None, "", []) else str(value)


def conflict_alerts(conflicts: Iterable[ConflictRow]) -> list[Alert]:
    return [
        Alert(
            f"conflict:{c.id}",
            "New conflicts (settle them with `poam-sync conflicts`)",
            f"{c.poam_id} {c.field}: here {_value(c.local)}, in {c.connector} "
            f"{_value(c.remote)} (conflict {c.id})",
        )
        for c in conflicts
    ]


def problem_alerts(problems: Iterable[ProblemRow]) -> list[Alert]:
    """Blocked transitions and values no mapping reads, among the active problems."""
    found = []
    for p in problems:
        if p.kind == "write" and p.code == BLOCKED:
            heading = "Blocked transitions"
        elif p.kind == "read":
            heading = "Values the mappings do not cover"
        else:
            continue
        since = p.first_seen.strftime("%Y%m%dT%H%M%S")
        key = f"problem:{p.code}:{p.connector}:{p.item_uuid}:{p.field}:{since}"
        hint = f" ({p.hint})" if p.hint else ""
        found.append(Alert(key, heading, f"{p.poam_id or '-'} in {p.connector}: {p.message}{hint}"))
    return found


def failing_alert(connector: str, cycles: int, since: str, why: str) -> Alert:
    return Alert(
        f"failing:{connector}:{since}",
        "Connectors failing",
        f"{connector} failed {cycles} cycles in a row since {since}: {why}",
    )


def alert_message(alerts: Sequence[Alert], admins: Sequence[str]) -> Message:
    headings = list(dict.fromkeys(a.heading for a in alerts))
    sections: list[Section] = [(h, [a.line for a in alerts if a.heading == h]) for h in headings]
    count = len(alerts)
    return render(
        [a.key for a in alerts],
        "alert",
        f"poam-sync: {count} new {'alert' if count == 1 else 'alerts'}",
        "poam-sync found what needs a person:",
        sections,
        to=admins,
        chat=True,
    )


# -- digests -----------------------------------------------------------------------------------


def _open(items: Iterable[PoamItem]) -> list[PoamItem]:
    return [i for i in items if not i.status.is_closed]


def _line(item: PoamItem) -> str:
    due = current_due_date(item)
    return f"{item.poam_id} ({item.system}) {item.title}, due {due or 'unknown'}"


def _milestones_due(item: PoamItem, until: date) -> list[str]:
    return [
        f"{item.poam_id}: {m.description}, due {m.due_date}"
        for m in item.milestones
        if m.status is not MilestoneStatus.COMPLETED and m.due_date and m.due_date <= until
    ]


def owner_digests(
    items: Iterable[PoamItem], today: date, soon_days: int, period: str
) -> list[Message]:
    """One digest per owner with something to do: overdue, due soon, milestones due."""
    by_owner: dict[str, list[PoamItem]] = {}
    for item in _open(items):
        if item.owner is not None and item.owner.email:
            by_owner.setdefault(item.owner.email.lower(), []).append(item)
    until = today + timedelta(days=soon_days)
    out = []
    for email, mine in sorted(by_owner.items()):
        overdue = [_line(i) for i in mine if due_state(i, today, soon_days=soon_days) == "overdue"]
        soon = [_line(i) for i in mine if due_state(i, today, soon_days=soon_days) == "due_soon"]
        milestones = [m for i in mine for m in _milestones_due(i, until)]
        if not (overdue or soon or milestones):
            continue
        out.append(
            render(
                [f"digest:owner:{email}:{period}"],
                "digest_owner",
                f"poam-sync: {len(overdue)} overdue, {len(soon)} due soon",
                f"The POA&M items you own, as of {today}:",
                [
                    ("Overdue", overdue),
                    (f"Due within {soon_days} days", soon),
                    ("Milestones due", milestones),
                ],
                to=[email],
            )
        )
    return out


def office_digest(
    items: Sequence[PoamItem],
    today: date,
    soon_days: int,
    period: str,
    changed_since: tuple[str, int] | None,
    office: Sequence[str],
) -> Message:
    """Counts, what changed since the last review, items past their FedRAMP deadline, items
    without an owner. ``changed_since``: (when the last digest went, items changed since)."""
    open_items = _open(items)
    states = [due_state(i, today, soon_days=soon_days) for i in open_items]
    counts = [
        f"{len(open_items)} open of {len(items)} items",
        f"{states.count('overdue')} overdue, {states.count('due_soon')} due within "
        f"{soon_days} days",
    ]
    if changed_since is not None:
        counts.append(
            f"{changed_since[1]} items changed since the last review ({changed_since[0]})"
        )
    past = [
        f"{_line(i)}; the FedRAMP deadline was {deadline}"
        for i in open_items
        if (deadline := scheduled_completion(i)) is not None and deadline < today
    ]
    unowned = [_line(i) for i in open_items if i.owner is None or not i.owner.email]
    return render(
        [f"digest:office:{period}"],
        "digest_office",
        f"poam-sync: POA&M review {today}",
        f"The POA&M as of {today}:",
        [
            ("Counts", counts),
            ("Past their FedRAMP deadline", past),
            ("Items without an owner", unowned),
        ],
        to=office,
        chat=True,
    )
