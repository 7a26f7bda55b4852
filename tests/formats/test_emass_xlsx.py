"""eMASS POA&M workbooks: the classic RMF template (MITRE SAF copy) and the 2026 layouts."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from openpyxl.cell.cell import MergedCell

from poam_sync import formats
from poam_sync.model import MilestoneStatus, Person, PoamItem, RiskLevel, Status
from tests.formats import builders as b


def _classic_from_example(dest: Path, *, blank_ids: bool = False) -> Path:
    """The template's own Example sheet copied into its POA&M sheet (where eMASS data goes)."""
    wb = openpyxl.load_workbook(b.EMASS_RMF)
    example, target = wb["Example"], wb["POA&M"]
    for row in example.iter_rows(min_row=1, max_row=51):
        for cell in row:
            target_cell = target.cell(cell.row, cell.column)
            if (cell.row <= 6 or cell.row >= 8) and not isinstance(target_cell, MergedCell):
                value = cell.value
                if blank_ids and cell.row >= 8 and cell.column == 2:
                    value = None
                target_cell.value = value
    wb.save(dest)
    return dest


@pytest.fixture(scope="module")
def classic(tmp_path_factory: pytest.TempPathFactory) -> formats.ReadResult:
    path = _classic_from_example(tmp_path_factory.mktemp("emass") / "emass-export.xlsx")
    return formats.read(path)


def _items(result: formats.ReadResult) -> dict[str, PoamItem]:
    return {i.poam_id: i for i in result.items}


def test_blank_template_reads_as_emass_with_no_items() -> None:
    result = formats.read(b.EMASS_RMF)
    assert result.format == "emass-xlsx"
    assert result.items == () and result.problems == ()


def test_classic_template_values(classic: formats.ReadResult) -> None:
    assert classic.problems == ()
    assert classic.system == "First System"
    items = _items(classic)
    assert sorted(items) == ["1", "2", "3"]
    first = items["1"]
    assert first.system == "First System"
    assert first.controls == ("AC-1",)
    assert first.owner == Person(name="John Smith", email="smith_john@email.com", org="DoD")
    assert first.source_identifier == "SV-18394r2_rule"
    assert first.status is Status.OPEN
    assert first.scheduled_completion_date == date(2018, 11, 23)
    # extra milestones sit on the following rows with only the milestone cell filled
    assert [(m.id, m.description, m.due_date) for m in first.milestones] == [
        ("1", "Implement Procedure A", date(2018, 10, 25)),
        ("2", "Implement Procedure B", date(2018, 10, 31)),
        ("3", "Implement Procedure C", date(2018, 11, 5)),
    ]
    assert first.original_risk is RiskLevel.HIGH
    assert first.adjusted_risk is RiskLevel.HIGH
    assert first.description.startswith("Description that explains the identified")
    assert first.extra["Raw Severity"] == "I"
    assert first.extra["Office/Org"] == "DoD, John Smith, 7033775472, smith_john@email.com"
    assert first.extra["Relevance of Threat"] == "High"
    assert first.provenance is not None
    assert (first.provenance.sheet, first.provenance.row) == ("POA&M", 8)


def test_classic_statuses_severities_and_text_dates(classic: formats.ReadResult) -> None:
    items = _items(classic)
    accepted = items["2"]
    assert accepted.status is Status.RISK_ACCEPTED
    assert accepted.controls == ("SA-1.4",)  # an assessment procedure, not SA-1(4)
    assert accepted.original_risk is RiskLevel.LOW
    assert accepted.original_risk_label == "Very Low"
    assert accepted.adjusted_risk is RiskLevel.LOW
    assert accepted.milestones == ()
    done = items["3"]
    assert done.status is Status.COMPLETED
    assert done.completed_on == date(2018, 11, 13)  # from "Completed 11/13/2018"
    assert [(m.description, m.due_date) for m in done.milestones] == [
        ("Description of Milestone", date(2018, 10, 17))
    ]
    assert [(c.on, c.text) for c in done.milestone_changes] == [
        (date(2018, 10, 22), "Updated Milestone Description")
    ]


def test_empty_item_ids_get_a_stable_derived_id(tmp_path: Path) -> None:
    path = _classic_from_example(tmp_path / "no-ids.xlsx", blank_ids=True)
    first = formats.read(path)
    again = formats.read(path)
    ids = [i.poam_id for i in first.items]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(i.startswith("EMASS-") and len(i) == len("EMASS-") + 10 for i in ids)
    assert ids == [i.poam_id for i in again.items]
    # the milestones of the first item still attach to it
    assert len(first.items[0].milestones) == 3

    # a later export with a new status and date keeps the id (only identity cells count)
    wb = openpyxl.load_workbook(path)
    wb["POA&M"]["L8"] = "Completed 1/02/2019"
    wb.save(path)
    changed = formats.read(path)
    assert changed.items[0].poam_id == ids[0]
    assert changed.items[0].status is Status.COMPLETED


def test_identical_rows_without_ids_are_numbered_in_file_order(tmp_path: Path) -> None:
    row = {"Control Vulnerability Description": "Same finding", "Controls / APs": "AC-2"}
    path = b.build_emass_2026(tmp_path / "dup.xlsx", b.NAVY_2026_HEADERS, [row, row])
    ids = [i.poam_id for i in formats.read(path).items]
    assert ids[1] == f"{ids[0]}-2"


def _navy_rows() -> list[dict[str, object]]:
    return [
        {
            "POA&M Item ID": "1001",
            "Control Vulnerability Description": "Audit records are not reviewed weekly.",
            "Controls / APs": "AU-6; AU-6(1)",
            "Security Checks": "SV-230001r1_rule; SV-230002r1_rule",
            "POA&M Status": "Ongoing",
            "POA&M Scheduled Completion Date": "3/03/2027",
            "POA&M Requested Risk Accepted Expiration Date": None,
            "Milestone ID": 1,
            "Milestone Description": "Weekly review procedure written",
            "Milestone Status": "Completed",
            "Milestone Status Comments": "Approved by the ISSM",
            "Milestone Scheduled Completion Date": datetime(2026, 12, 1),
            "Milestone Completion Date": "11/20/2026",
            "Identification Source": "Continuous Monitoring",
            "Office/Org": "NAVWAR, Dana Example, 555-0100, dana@example.com",
            "Raw Severity": "CAT II",
            "Devices Affected": "siem-01; siem-02",
            "Severity": "Moderate",
            "Residual Risk Level": "Low",
            "Recommendations": "Automate the review report.",
        },
        {
            "Milestone ID": 2,
            "Milestone Description": "First weekly review held",
            "Milestone Status": "In Progress",
            "Milestone Scheduled Completion Date": "1/15/2027",
        },
        {
            "Milestone ID": 3,
            "Milestone Description": "Review automated",
            "Milestone Status": "Open",
            "Milestone Scheduled Completion Date": "3/03/2027",
        },
        {
            "POA&M Item ID": "1002",
            "Control Vulnerability Description": "Unsupported OS on a lab host.",
            "Controls / APs": "SI-2",
            "POA&M Status": "Risk Accepted",
            "POA&M Requested Risk Accepted Expiration Date": "6/30/2027",
            "Severity": "Very High",
            "Milestone ID": 1,
            "Milestone Description": "Host isolated",
            "Milestone Status": "Completed",
            "Milestone Completion Date": datetime(2026, 10, 1),
        },
        {
            "POA&M Item ID": "1002",
            "Milestone ID": 2,
            "Milestone Description": "Host replaced",
            "Milestone Status": "Open",
            "Milestone Scheduled Completion Date": datetime(2027, 6, 1),
        },
    ]


def test_navy_2026_one_row_per_milestone(tmp_path: Path) -> None:
    path = b.build_emass_2026(tmp_path / "navy.xlsx", b.NAVY_2026_HEADERS, _navy_rows())
    result = formats.read(path)
    assert result.format == "emass-xlsx"
    assert result.problems == ()
    assert result.system == "Demo System"
    items = _items(result)
    audit = items["1001"]
    assert audit.controls == ("AU-6", "AU-6(1)")
    assert audit.status is Status.OPEN
    assert audit.scheduled_completion_date == date(2027, 3, 3)
    assert audit.asset_identifiers == ("siem-01", "siem-02")
    assert audit.owner == Person(name="Dana Example", email="dana@example.com", org="NAVWAR")
    assert audit.original_risk is RiskLevel.MODERATE
    assert audit.adjusted_risk is RiskLevel.LOW
    assert audit.remediation_plan == "Automate the review report."
    got = [(m.id, m.description, m.status, m.due_date, m.completed_on) for m in audit.milestones]
    assert got == [
        ("1", "Weekly review procedure written", MilestoneStatus.COMPLETED, date(2026, 12, 1),
         date(2026, 11, 20)),
        ("2", "First weekly review held", MilestoneStatus.IN_PROGRESS, date(2027, 1, 15), None),
        ("3", "Review automated", MilestoneStatus.OPEN, date(2027, 3, 3), None),
    ]  # fmt: skip
    assert audit.extra["Milestone Status Comments"] == "1: Approved by the ISSM"
    assert audit.extra["Raw Severity"] == "CAT II"
    accepted = items["1002"]
    assert accepted.status is Status.RISK_ACCEPTED
    assert accepted.original_risk is RiskLevel.CRITICAL
    assert accepted.original_risk_label == "Very High"
    assert accepted.extra["POA&M Requested Risk Accepted Expiration Date"] == "6/30/2027"
    assert [m.description for m in accepted.milestones] == ["Host isolated", "Host replaced"]


def test_army_2026_cost_columns_are_kept_verbatim(tmp_path: Path) -> None:
    rows = [
        {
            "POA&M Item ID": "A-1",
            "Control Vulnerability Description": "Backups are not tested.",
            "Controls / APs": "CP-9",
            "POA&M Status": "Ongoing",
            "Identification Source ": "Assessment",
            "Identified in CFO Audit or other review": "Yes",
            "Personnel Resources: \nCost Code": "1101 - Personnel Resources",
            "Non-Personnel Resources: Funded Amount": 10000.95,
            "Milestone ID": 1,
            "Milestone Description": "Restore test",
            "Milestone Status": "Open",
        }
    ]
    path = b.build_emass_2026(tmp_path / "army.xlsx", b.ARMY_2026_HEADERS, rows)
    (item,) = formats.read(path).items
    assert item.detector_source == "Assessment"
    assert item.extra["Identified in CFO Audit or other review"] == "Yes"
    assert item.extra["Personnel Resources: Cost Code"] == "1101 - Personnel Resources"
    assert item.extra["Non-Personnel Resources: Funded Amount"] == "10000.95"


def test_unknown_status_names_the_cell(tmp_path: Path) -> None:
    rows = _navy_rows()
    rows[3] = {**rows[3], "POA&M Status": "Sort of done"}
    path = b.build_emass_2026(tmp_path / "bad-status.xlsx", b.NAVY_2026_HEADERS, rows)
    result = formats.read(path)
    assert [i.poam_id for i in result.items] == ["1001"]
    (p,) = result.problems
    assert (p.file, p.sheet, p.row, p.column) == ("bad-status.xlsx", "POA&M", 11, "POA&M Status")
    assert "Sort of done" in p.message and p.hint and "Ongoing" in p.hint
