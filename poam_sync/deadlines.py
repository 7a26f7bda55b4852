"""Risk-based POA&M deadlines (the FedRAMP rule). Pure: no I/O, no clock.

FedRAMP asks for remediation within 30 days of detection for High (and Critical) risks, 90 days
for Moderate and 180 days for Low. The adjusted risk rating counts only when the risk
adjustment is approved. A CISA KEV due date (BOD 22-01) wins when it is earlier. This is the
rule of the FedRAMP POA&M template's "Scheduled Completion Date" formula (which yields blank
for Critical; the v3.0 guidance and the continuous monitoring playbook count Critical as 30).

The clock for a vendor dependency starts when the vendor's fix is available; the canonical
model has no such date, so :func:`scheduled_completion` always counts from detection.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from poam_sync.model import DeviationStatus, PoamItem, RiskLevel

DueState = Literal["overdue", "due_soon", "ok", "closed", "unknown"]

REMEDIATION_DAYS: dict[RiskLevel, int] = {
    RiskLevel.CRITICAL: 30,
    RiskLevel.HIGH: 30,
    RiskLevel.MODERATE: 90,
    RiskLevel.LOW: 180,
}

DEFAULT_DUE_SOON_DAYS = 14


def effective_risk(item: PoamItem) -> RiskLevel | None:
    """The risk that sets the deadline: adjusted only when the risk adjustment is approved."""
    adjustment = item.deviation.risk_adjustment if item.deviation else None
    if adjustment is DeviationStatus.APPROVED and item.adjusted_risk is not None:
        return item.adjusted_risk
    return item.original_risk


def rule_date(detected_on: date | None, risk: RiskLevel | None) -> date | None:
    """Detection date plus the FedRAMP window for ``risk``; None if either is unknown."""
    if detected_on is None or risk is None:
        return None
    return detected_on + timedelta(days=REMEDIATION_DAYS[risk])


def scheduled_completion(item: PoamItem) -> date | None:
    """The date the FedRAMP rule gives for ``item`` (the KEV due date when that is earlier).

    This ignores the item's own ``scheduled_completion_date``: it is what the rule says, used
    when a file gives no date and to check a file's date.
    """
    by_rule = rule_date(item.detected_on, effective_risk(item))
    kev = item.kev_due_date
    if by_rule is None:
        return kev
    if kev is not None and kev < by_rule:
        return kev
    return by_rule


def later_than_the_rule(item: PoamItem) -> date | None:
    """The rule's date when an open item's scheduled completion date is later than the FedRAMP
    rule allows (a file may say so; the item is kept, the person importing is told); else None."""
    committed = item.scheduled_completion_date
    if item.status.is_closed or committed is None:
        return None
    allowed = scheduled_completion(item)
    return allowed if allowed is not None and committed > allowed else None


def current_due_date(item: PoamItem) -> date | None:
    """The date an open item is due now: its current due date, else its scheduled completion
    date, else the rule's date; a KEV due date wins when earlier."""
    due = item.due_date or item.scheduled_completion_date or scheduled_completion(item)
    kev = item.kev_due_date
    if due is None:
        return kev
    if kev is not None and kev < due:
        return kev
    return due


def due_state(item: PoamItem, today: date, *, soon_days: int = DEFAULT_DUE_SOON_DAYS) -> DueState:
    """Where ``item`` stands on ``today``.

    ``closed`` for a closed status; ``unknown`` when no due date can be found; ``overdue`` when
    the due date is before ``today``; ``due_soon`` when it is within ``soon_days`` days
    (inclusive, today counts); ``ok`` otherwise.
    """
    if soon_days < 0:
        raise ValueError(f"soon_days must be 0 or more, got {soon_days}")
    if item.status.is_closed:
        return "closed"
    due = current_due_date(item)
    if due is None:
        return "unknown"
    if due < today:
        return "overdue"
    if (due - today).days <= soon_days:
        return "due_soon"
    return "ok"
