"""The open items scheduled later than the FedRAMP rule allows, as the status report lists
them (``import`` warns of each when it reads the file; poam_sync/deadlines.py has the rule)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from poam_sync.model import PoamItem


@dataclass(frozen=True, slots=True)
class LateRow:
    """An open item scheduled later than the FedRAMP rule allows (``import`` warns of it)."""

    poam_id: str
    system: str
    title: str
    owner: str
    scheduled: date
    allowed: date
    risk: str  # the effective risk that sets the rule's window, or "unknown"
    item_uuid: str = ""

    @property
    def days_over(self) -> int:
        return (self.scheduled - self.allowed).days


def owner(item: PoamItem) -> str:
    """Who an item is for, as the reports show it."""
    if item.owner is None:
        return "(no owner)"
    return item.owner.email or item.owner.name or item.owner.org or "(no owner)"


def late_rows(items: Sequence[PoamItem]) -> tuple[LateRow, ...]:
    """The open items whose scheduled completion date is later than the FedRAMP rule allows,
    the furthest over first."""
    from poam_sync.deadlines import effective_risk, later_than_the_rule

    rows = []
    for item in items:
        allowed = later_than_the_rule(item)
        if allowed is None or item.scheduled_completion_date is None:
            continue
        risk = effective_risk(item)
        rows.append(
            LateRow(
                item.poam_id,
                item.system,
                item.title,
                owner(item),
                item.scheduled_completion_date,
                allowed,
                risk.value if risk else "unknown",
                item.uuid,
            )
        )
    rows.sort(key=lambda r: (-r.days_over, r.system, r.poam_id))
    return tuple(rows)
