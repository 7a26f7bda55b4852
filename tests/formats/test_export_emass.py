"""eMASS export: the classic RMF import template's layout, and back through our importer."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from poam_sync import formats
from poam_sync.formats import ExportHeader
from poam_sync.formats import emass_write as ew
from poam_sync.model import (
    Milestone,
    MilestoneChange,
    Person,
    PoamItem,
    RiskLevel,
    Status,
    diff_items,
)
from poam_sync.samples.build import sample_items
from tests.formats import builders as b
from tests.formats.test_emass_xlsx import _classic_from_example

SYSTEM = "Example Cloud Service"


def _mandatory(item: PoamItem) -> dict[str, object]:
    cells = ew.item_cells(item)
    out = {name: cells[name] for name in ew.MANDATORY if name != ew.e.MILESTONE_TEXT}
    out["milestones"] = [ew.milestone_text(m) for m in item.milestones]
    return out


def _rows(path: Path) -> list[list[object]]:
    ws = openpyxl.load_workbook(path)["POA&M"]
    return [[c.value for c in row] for row in ws.iter_rows(min_row=1, max_col=22)]


def test_the_header_is_the_classic_templates_row_7(tmp_path: Path) -> None:
    path = tmp_path / "emass.xlsx"
    formats.write(sample_items(), path, format="emass-xlsx")
    template = openpyxl.load_workbook(b.EMASS_RMF)["POA&M"]
    written = openpyxl.load_workbook(path)["POA&M"]
    want = [template.cell(7, c).value for c in range(2, 23)]
    assert [written.cell(7, c).value for c in range(2, 23)] == want
    assert want[9] == "Source Identifying Vulnerability " and want[12] == " Raw Severity"
    assert [written.cell(r, 1).value for r in range(2, 7)] == [
        template.cell(r, 1).value for r in range(2, 7)
    ]


def test_one_row_per_milestone_with_the_date_after_the_text(tmp_path: Path) -> None:
    item = PoamItem(
        poam_id="7",
        description="Stale accounts are not disabled.",
        owner=Person(org="DoD", name="Jane Doe", email="jane@example.mil"),
        detector_source="Annual review",
        status=Status.OPEN,
        scheduled_completion_date=date(2026, 3, 1),
        milestones=(
            Milestone(id="1", description="Inventory accounts", due_date=date(2026, 1, 5)),
            Milestone(id="2", description="Disable\nstale ones", due_date=date(2026, 2, 1)),
            Milestone(id="3", description="Automate"),
        ),
        milestone_changes=(
            MilestoneChange(kind="note", on=date(2026, 1, 20), text="Inventory done early"),
        ),
    )
    path = tmp_path / "emass.xlsx"
    formats.write([item], path, format="emass-xlsx")
    rows = _rows(path)
    data = rows[7:10]
    assert [r[8] for r in data] == [
        "Inventory accounts 1/5/2026",
        "Disable stale ones 2/1/2026",
        "Automate",
    ]
    assert [r[9] for r in data] == ["Inventory done early 1/20/2026", None, None]
    assert data[0][1:5] == [
        "7",
        "Stale accounts are not disabled.",
        None,
        "DoD, Jane Doe, jane@example.mil",
    ]
    assert data[0][7] == datetime(2026, 3, 1)
    assert data[0][11] == "Ongoing"
    # continuation rows hold only the milestone cells
    assert all(v is None for r in data[1:] for i, v in enumerate(r) if i not in (8, 9))
    (back,) = formats.read(path).items
    assert [(m.description, m.due_date) for m in back.milestones] == [
        ("Inventory accounts", date(2026, 1, 5)),
        ("Disable stale ones", date(2026, 2, 1)),
        ("Automate", None),
    ]
    assert back.milestone_changes == item.milestone_changes


def test_sample_round_trip_loses_no_mandatory_column(tmp_path: Path) -> None:
    items = sample_items()
    path = tmp_path / "emass.xlsx"
    formats.write(items, path, format="emass-xlsx", system_name=SYSTEM)
    result = formats.read(path)
    assert result.format == "emass-xlsx" and result.problems == ()
    assert result.system == SYSTEM
    back = {i.poam_id: i for i in result.items}
    assert sorted(back) == sorted(i.poam_id for i in items)
    for item in items:
        assert _mandatory(back[item.poam_id]) == _mandatory(item)
        again = back[item.poam_id]
        assert again.controls == item.controls
        assert again.owner == item.owner
        assert again.scheduled_completion_date == item.scheduled_completion_date
        assert again.original_risk == item.original_risk
        assert again.remediation_plan == item.remediation_plan
    closed = back["V-0998"]
    assert closed.status is Status.COMPLETED
    assert closed.completed_on == next(i for i in items if i.poam_id == "V-0998").completed_on


def test_a_filled_template_round_trips_through_our_export(tmp_path: Path) -> None:
    first = formats.read(_classic_from_example(tmp_path / "from-emass.xlsx"))
    assert len(first.items) == 3
    path = tmp_path / "again.xlsx"
    formats.write(first.items, path, format="emass-xlsx")
    second = formats.read(path)
    assert second.problems == () and second.system == first.system == "First System"
    before = {i.poam_id: i for i in first.items}
    for item in second.items:
        assert diff_items(before[item.poam_id], item) == {}
    # the Office/Org cell with its phone number is written back as it was
    rows = _rows(path)
    assert rows[7][4] == "DoD, John Smith, 7033775472, smith_john@email.com"
    assert rows[7][13] == "I"  # Raw Severity, kept in extra on import


def test_ratings_and_statuses_use_the_templates_words() -> None:
    item = PoamItem(
        poam_id="1",
        original_risk=RiskLevel.CRITICAL,
        adjusted_risk=RiskLevel.LOW,
        adjusted_risk_label="Very Low",
        status=Status.COMPLETED,
        completed_on=date(2025, 11, 13),
    )
    cells = ew.item_cells(item)
    assert (cells["Severity"], cells["Residual Risk Level"]) == ("Very High", "Very Low")
    assert cells["Status"] == "Completed 11/13/2025"
    words = {
        s: ew.item_cells(PoamItem(poam_id="1", status=s))["Status"]
        for s in (Status.REMEDIATING, Status.RISK_ACCEPTED, Status.FALSE_POSITIVE, Status.ARCHIVED)
    }
    assert words == {
        Status.REMEDIATING: "Ongoing",
        Status.RISK_ACCEPTED: "Risk Accepted",
        Status.FALSE_POSITIVE: "Not Applicable",
        Status.ARCHIVED: "Archived",
    }


def test_missing_mandatory_cells_are_named() -> None:
    bare = PoamItem(poam_id="1", description="x")
    assert ew.missing_mandatory(bare) == [
        "Office/Org",
        "Scheduled Completion Date",
        "Milestone with Completion Dates",
        "Source Identifying Vulnerability",
    ]
    accepted = PoamItem(poam_id="2", description="x", status=Status.RISK_ACCEPTED)
    assert "Comments" in ew.missing_mandatory(accepted)
    person_only = PoamItem(poam_id="3", description="x", owner=Person(name="Jane Doe"))
    assert "Office/Org" in ew.missing_mandatory(person_only)


def test_banner_holds_the_system_and_the_date(tmp_path: Path) -> None:
    path = tmp_path / "emass.xlsx"
    header = ExportHeader(system_name="Mission App", poam_date=date(2026, 12, 1))
    formats.write(sample_items()[:1], path, format="emass-xlsx", header=header)
    ws = openpyxl.load_workbook(path)["POA&M"]
    assert (ws["A5"].value, ws["D5"].value) == ("System / Project Name:", "Mission App")
    assert (ws["A2"].value, ws["D2"].value) == ("Date Exported:", "12/1/2026")
    assert formats.read(path).system == "Mission App"


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)"])
def test_formula_text_is_neutralized_and_round_trips(tmp_path: Path, text: str) -> None:
    path = tmp_path / "inj.xlsx"
    item = PoamItem(poam_id="X-1", description=text, comments=text, detector_source="scan")
    formats.write([item], path, format="emass-xlsx")
    ws = openpyxl.load_workbook(path)["POA&M"]
    assert ws["C8"].value == "'" + text and ws["C8"].data_type == "s"
    (back,) = formats.read(path).items
    assert (back.description, back.comments) == (text, text)
