"""Cell-level parsing shared by the readers."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from poam_sync import formats
from poam_sync.formats._common import (
    CellError,
    fold,
    milestone_changes_text,
    milestones_text,
    neutralize,
    parse_date,
    parse_milestone_changes,
    parse_office_org,
    parse_person,
    parse_planned_milestones,
    parse_risk,
    person_text,
    unneutralize,
)
from poam_sync.model import MilestoneStatus, Person, RiskLevel
from tests.formats import builders as b


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2027, 3, 3, 0, 0), date(2027, 3, 3)),
        ("3/03/2027", date(2027, 3, 3)),
        ("03-01-2024", date(2024, 3, 1)),
        ("2024-03-01T23:59:59Z", date(2024, 3, 1)),
        (1, date(1900, 1, 1)),  # Excel serials, with the 1900 leap-year bug
        (59, date(1900, 2, 28)),
        (61, date(1900, 3, 1)),
        (2958465, date(9999, 12, 31)),
        ("2024-02-29", date(2024, 2, 29)),
        ("2014/05/23", date(2014, 5, 23)),
        ("2023-06-23T17:00:00-04:00", date(2023, 6, 23)),  # the written day, no tz shift
        ("2024-01-01T05:00:00+14:00", date(2024, 1, 1)),
        (45658, date(2025, 1, 1)),  # an Excel serial day
        ("N/A", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value: object, expected: date | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2023-02-29",
        "13/45/2024",
        "next week",
        "2025-13-01",
        "12/31/99",  # a two-digit year
        "03-01-24",
        "2027-03-03 garbage",
        "2027-03-03T25:00",
        "2027-03-03T12:61",
        "2027-03-03T12:00:00+25:00",
        "\u0662\u0660\u0662\u0667-\u0660\u0663-\u0660\u0663",  # Arabic-Indic digits
        "#REF!",
    ],
)
def test_parse_date_rejects(value: str) -> None:
    with pytest.raises(CellError) as info:
        parse_date(value)
    assert value in info.value.message and info.value.hint


@pytest.mark.parametrize("serial", [0, -5, 60, 2958466, True])
def test_parse_date_rejects_serials_excel_has_no_day_for(serial: object) -> None:
    with pytest.raises(CellError) as info:
        parse_date(serial)
    assert str(serial) in info.value.message


def test_fold_case_and_whitespace() -> None:
    assert fold("  Source Identifying   Vulnerability \n") == "source identifying vulnerability"
    assert fold("Personnel Resources: \nCost Code") == "personnel resources: cost code"


@pytest.mark.parametrize(
    ("text", "level", "label"),
    [
        ("High", RiskLevel.HIGH, None),
        ("moderate", RiskLevel.MODERATE, None),
        ("Very High", RiskLevel.CRITICAL, "Very High"),
        ("Very Low", RiskLevel.LOW, "Very Low"),
        ("CAT I", RiskLevel.HIGH, "CAT I"),
        ("III", RiskLevel.LOW, "III"),
        ("N/A", None, None),
        (None, None, None),
    ],
)
def test_parse_risk(text: str | None, level: RiskLevel | None, label: str | None) -> None:
    assert parse_risk(text) == (level, label)


def test_people() -> None:
    assert parse_person("John Doe -  Example CSP") == Person(name="John Doe", org="Example CSP")
    alice = Person(name="Alice Example", email="alice@example.com", org="Platform")
    assert parse_person(person_text(alice)) == alice
    assert parse_person("alice@example.com") == Person(email="alice@example.com")
    assert parse_office_org("DoD, John Smith, 7033775472, smith_john@email.com") == Person(
        org="DoD", name="John Smith", email="smith_john@email.com"
    )
    assert parse_office_org("Example Program Management Office") == Person(
        org="Example Program Management Office"
    )


def test_planned_milestones_from_the_template_example() -> None:
    text = (
        "(1) 2014/05/23: Milestone Description\n\n(2) 2014-06-12: Milestone \nDescription\n\n"
        "(3) 2014-07-01: Third [completed 2014-06-30]"
    )
    got = parse_planned_milestones(text)
    assert [(m.id, m.due_date, m.description, m.status) for m in got] == [
        ("1", date(2014, 5, 23), "Milestone Description", MilestoneStatus.OPEN),
        ("2", date(2014, 6, 12), "Milestone Description", MilestoneStatus.OPEN),
        ("3", date(2014, 7, 1), "Third", MilestoneStatus.COMPLETED),
    ]
    assert got[2].completed_on == date(2014, 6, 30)
    assert parse_planned_milestones(milestones_text(got)) == got


def test_milestone_changes_round_trip() -> None:
    text = (
        "(2) Update 2014-06-18 : That milestone was delayed due to a Vendor Dependency\n\n"
        "(3) New 2014-06-13 : This is the details of this new milestone"
    )
    got = parse_milestone_changes(text)
    assert [(c.kind, c.on) for c in got] == [
        ("update", date(2014, 6, 18)),
        ("new", date(2014, 6, 13)),
    ]
    assert parse_milestone_changes(milestone_changes_text(got)) == got


def test_neutralize_is_undone_on_import() -> None:
    for text in ["=1+1", "+x", "-y", "@z", "plain", "'quoted"]:
        assert unneutralize(neutralize(text)) == text
    assert neutralize("plain") == "plain"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b.FEDRAMP_V20, "fedramp-xlsx"),
        (b.EMASS_RMF, "emass-xlsx"),
        (b.NIST_JSON, "oscal"),
        (b.NIST_XML, "oscal"),
        (b.CHAINGUARD_CSV, "csv"),
    ],
)
def test_detect_format(path: Path, expected: str) -> None:
    assert formats.detect_format(path) == expected
