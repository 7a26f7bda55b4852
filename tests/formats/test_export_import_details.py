"""The import details of issue 13 that exports run into, each from a file built like the real
one: an eMASS assessment procedure, an organization-only point of contact, a milestone
completed in Milestone Changes."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl

from poam_sync import formats
from poam_sync.model import MilestoneStatus, Person, PoamItem, normalize_control
from tests.formats import builders as b
from tests.formats.conftest import V3_CLOSED_ROWS


def test_an_emass_assessment_procedure_stays_one(tmp_path: Path) -> None:
    # the classic template's own example row 11 names the AP "SA-1.4"
    wb = openpyxl.load_workbook(b.EMASS_RMF)
    ws = wb["POA&M"]
    for c, value in enumerate(
        ["2", "Description of the weakness.", "SA-1.4", "DoD", None, None, None, None, None,
         "Annual review", "Risk Accepted", "Accepted by the AO."],
        start=2,
    ):  # fmt: skip
        ws.cell(8, c).value = value
    path = tmp_path / "emass.xlsx"
    wb.save(path)
    (item,) = formats.read(path).items
    assert item.controls == ("SA-1.4",)
    out = tmp_path / "again.xlsx"
    formats.write([item], out, format="emass-xlsx")
    assert openpyxl.load_workbook(out)["POA&M"]["D8"].value == "SA-1.4"


def test_control_ids_still_normalize_as_before() -> None:
    assert [normalize_control(c) for c in ("ac-2.1", "AC-02 (1)", "ac-2(1)", "AC-2")] == [
        "AC-2(1)",
        "AC-2(1)",
        "AC-2(1)",
        "AC-2",
    ]
    assert normalize_control("SA-01.4") == "SA-1.4"


def test_an_org_only_point_of_contact_round_trips(tmp_path: Path) -> None:
    item = PoamItem(poam_id="V-1", title="t", owner=Person(org="testOrg"))
    for fmt, name in (("fedramp-xlsx", "poam.xlsx"), ("csv", "poam.csv")):
        path = tmp_path / name
        formats.write([item], path, format=fmt)
        (back,) = formats.read(path).items
        assert back.owner == Person(org="testOrg"), fmt


def test_a_milestone_completed_in_milestone_changes_is_completed(tmp_path: Path) -> None:
    # a closed item of a v2.1 workbook: the planned milestone carries no state, the Milestone
    # Changes column completes it
    row = {
        **V3_CLOSED_ROWS[0],
        "Original Detection Date": datetime(2025, 11, 1),
        "Scheduled Completion Date": None,
        "Planned Milestones": "(1) 2025-11-20: Certificate renewed\n\n"
        "(2) 2025-12-01: Renewal automated",
        "Milestone Changes": "(1) Complete 2025-11-21 : Renewed a day late",
        "Status Date": datetime(2025, 11, 21),
    }
    path = b.fill_template(b.FEDRAMP_V21, tmp_path / "closed.xlsx", {"Closed POA&M Items": [row]})
    (item,) = formats.read(path).items
    first, second = item.milestones
    assert (first.status, first.completed_on) == (MilestoneStatus.COMPLETED, date(2025, 11, 21))
    assert (second.status, second.completed_on) == (MilestoneStatus.OPEN, None)


def test_a_2024_milestone_id_column_makes_no_phantom_milestones(tmp_path: Path) -> None:
    # the 2024 Navy layout: the classic columns plus "Milestone ID", one row per milestone
    headers = [
        "POA&M Item ID", "Control Vulnerability Description", "Controls / APs", "Office/Org",
        "Security Checks", "POA&M Status", "POA&M Scheduled Completion Date", "Milestone ID",
        "Milestone with Completion Dates", "Milestone Changes", "Identification Source",
    ]  # fmt: skip
    rows = [
        {
            "POA&M Item ID": "77",
            "Control Vulnerability Description": "Audit records are not reviewed weekly.",
            "Controls / APs": "AU-6",
            "Office/Org": "NAVWAR",
            "POA&M Status": "Ongoing",
            "POA&M Scheduled Completion Date": datetime(2027, 3, 3),
            "Milestone ID": 1,
            "Milestone with Completion Dates": "Procedure written 12/1/2026",
            "Identification Source": "Annual assessment",
        },
        {"Milestone ID": 2, "Milestone with Completion Dates": "First review held 1/15/2027"},
        {"Milestone ID": 3, "Milestone with Completion Dates": "Review automated 3/3/2027"},
    ]
    path = b.build_emass_2026(tmp_path / "navy-2024.xlsx", headers, rows)
    (item,) = formats.read(path).items
    assert [(m.id, m.description, m.due_date) for m in item.milestones] == [
        ("1", "Procedure written", date(2026, 12, 1)),
        ("2", "First review held", date(2027, 1, 15)),
        ("3", "Review automated", date(2027, 3, 3)),
    ]
