"""The FedRAMP deadline rule and due states."""

from __future__ import annotations

from datetime import date

import pytest

from poam_sync.deadlines import (
    current_due_date,
    due_state,
    effective_risk,
    rule_date,
    scheduled_completion,
)
from poam_sync.model import Deviation, DeviationStatus, PoamItem, RiskLevel, Status


def item(**kw: object) -> PoamItem:
    return PoamItem(poam_id="V-1", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("risk", "expected"),
    [
        (RiskLevel.CRITICAL, date(2025, 2, 14)),
        (RiskLevel.HIGH, date(2025, 2, 14)),
        (RiskLevel.MODERATE, date(2025, 4, 15)),
        (RiskLevel.LOW, date(2025, 7, 14)),
    ],
)
def test_days_per_risk(risk: RiskLevel, expected: date) -> None:
    assert scheduled_completion(item(detected_on=date(2025, 1, 15), original_risk=risk)) == expected


def test_leap_years() -> None:
    # 30 days from 1 February: a leap year has 29 days in February
    assert rule_date(date(2024, 2, 1), RiskLevel.HIGH) == date(2024, 3, 2)
    assert rule_date(date(2023, 2, 1), RiskLevel.HIGH) == date(2023, 3, 3)
    # from the leap day itself
    assert rule_date(date(2024, 2, 29), RiskLevel.MODERATE) == date(2024, 5, 29)
    assert rule_date(date(2024, 2, 29), RiskLevel.LOW) == date(2024, 8, 27)
    # across the end of a year into a leap February
    assert rule_date(date(2023, 12, 31), RiskLevel.MODERATE) == date(2024, 3, 30)
    assert rule_date(date(2099, 12, 31), RiskLevel.MODERATE) == date(2100, 3, 31)  # not leap


def test_unknown_inputs_give_none() -> None:
    assert scheduled_completion(item(original_risk=RiskLevel.HIGH)) is None
    assert scheduled_completion(item(detected_on=date(2025, 1, 1))) is None


def test_adjusted_risk_counts_only_when_the_adjustment_is_approved() -> None:
    base = {
        "detected_on": date(2025, 1, 1),
        "original_risk": RiskLevel.HIGH,
        "adjusted_risk": RiskLevel.LOW,
    }
    pending = item(**base, deviation=Deviation(risk_adjustment=DeviationStatus.PENDING))
    approved = item(**base, deviation=Deviation(risk_adjustment=DeviationStatus.APPROVED))
    none = item(**base)
    assert effective_risk(pending) is RiskLevel.HIGH
    assert scheduled_completion(pending) == date(2025, 1, 31)
    assert scheduled_completion(none) == date(2025, 1, 31)
    assert effective_risk(approved) is RiskLevel.LOW
    assert scheduled_completion(approved) == date(2025, 6, 30)


def test_kev_due_date_wins_only_when_earlier() -> None:
    base = {"detected_on": date(2025, 1, 1), "original_risk": RiskLevel.MODERATE}
    assert scheduled_completion(item(**base, kev_due_date=date(2025, 1, 22))) == date(2025, 1, 22)
    assert scheduled_completion(item(**base, kev_due_date=date(2025, 6, 1))) == date(2025, 4, 1)
    assert scheduled_completion(item(kev_due_date=date(2025, 6, 1))) == date(2025, 6, 1)


def test_current_due_date_prefers_the_items_own_dates() -> None:
    base = {"detected_on": date(2025, 1, 1), "original_risk": RiskLevel.LOW}
    assert current_due_date(item(**base)) == date(2025, 6, 30)
    assert current_due_date(item(**base, scheduled_completion_date=date(2025, 3, 1))) == date(
        2025, 3, 1
    )
    extended = item(**base, scheduled_completion_date=date(2025, 3, 1), due_date=date(2025, 5, 1))
    assert current_due_date(extended) == date(2025, 5, 1)
    assert current_due_date(item(**base, kev_due_date=date(2025, 2, 1))) == date(2025, 2, 1)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2025, 1, 1), "ok"),
        (date(2025, 1, 16), "ok"),
        (date(2025, 1, 17), "due_soon"),  # 14 days left
        (date(2025, 1, 31), "due_soon"),  # due today
        (date(2025, 2, 1), "overdue"),
    ],
)
def test_due_state(today: date, expected: str) -> None:
    high = item(detected_on=date(2025, 1, 1), original_risk=RiskLevel.HIGH)  # due 2025-01-31
    assert due_state(high, today) == expected


def test_due_state_window_closed_and_unknown() -> None:
    high = item(detected_on=date(2025, 1, 1), original_risk=RiskLevel.HIGH)
    assert due_state(high, date(2025, 1, 10), soon_days=30) == "due_soon"
    assert due_state(high, date(2025, 1, 10), soon_days=0) == "ok"
    assert due_state(high, date(2025, 1, 31), soon_days=0) == "due_soon"
    done = high.model_copy(update={"status": Status.COMPLETED})
    assert due_state(done, date(2030, 1, 1)) == "closed"
    assert due_state(item(), date(2025, 1, 1)) == "unknown"
    accepted = high.model_copy(update={"status": Status.RISK_ACCEPTED})
    assert due_state(accepted, date(2025, 3, 1)) == "overdue"  # accepted is still open
    with pytest.raises(ValueError, match="soon_days"):
        due_state(high, date(2025, 1, 1), soon_days=-1)
