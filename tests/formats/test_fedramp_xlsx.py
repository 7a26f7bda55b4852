"""FedRAMP POA&M workbooks: the official templates, filled with rows, read back."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from poam_sync import formats
from poam_sync.model import (
    DeviationStatus,
    MilestoneStatus,
    Person,
    PoamItem,
    Provenance,
    RiskLevel,
    Status,
)
from tests.formats import builders as b


@pytest.mark.parametrize("template", [b.FEDRAMP_V20, b.FEDRAMP_V21, b.FEDRAMP_V30])
def test_empty_templates_have_no_items(template: Path) -> None:
    # guidance, format, example (V-1Example) and mandatory-flag rows are skipped, and the
    # thousands of rows that hold only the Scheduled Completion Date formula are empty
    result = formats.read(template)
    assert result.format == "fedramp-xlsx"
    assert result.items == ()
    assert result.problems == ()


def _by_id(result: formats.ReadResult) -> tuple[formats.ReadResult, dict[str, PoamItem]]:
    return result, {i.poam_id: i for i in result.items}


def test_v30_open_row_values(v30_result: formats.ReadResult) -> None:
    result, items = _by_id(v30_result)
    assert result.problems == ()
    assert sorted(items) == ["CF-1", "V-090", "V-091", "V-101", "V-102"]
    v101 = items["V-101"]
    assert v101.title == "Red Hat Update for glibc security (RHSA-2021:4358)"
    assert v101.description == "The remote host is missing a glibc security update."
    assert v101.controls == ("RA-5", "SC-13")
    assert v101.detector_source == "Nessus"
    assert v101.source_identifier == "19506"
    assert v101.asset_identifiers == ("10.0.0.5 (443/TCP)", "web-01.example.internal")
    assert v101.owner == Person(
        name="Alice Example", email="alice@example.com", org="Platform Engineering"
    )
    assert v101.status is Status.OPEN
    assert v101.original_risk is RiskLevel.HIGH
    assert v101.adjusted_risk is None
    assert v101.detected_on == date(2025, 1, 15)
    assert v101.scheduled_completion_date == date(2025, 2, 14)
    assert v101.status_date == date(2025, 1, 20)
    assert v101.kev is True
    assert v101.kev_due_date == date(2025, 2, 5)
    assert v101.cves == ("CVE-2024-1234", "CVE-2024-5678")
    assert v101.comments == "Patch is staged."
    assert v101.remediation_plan == "Apply the vendor update during the monthly patch window."
    assert v101.vendor_dependency is not None and v101.vendor_dependency.dependent is False
    assert v101.provenance == Provenance(
        format="fedramp-xlsx", file="agency-poam-v3.xlsx", sheet="Open POA&M Items", row=9
    )


def test_v30_formula_without_cached_value_uses_the_deadline_rule(
    v30_result: formats.ReadResult,
) -> None:
    _, items = _by_id(v30_result)
    v102 = items["V-102"]
    # Moderate adjusted to Low with an approved risk adjustment: 180 days from 2024-02-29
    assert v102.original_risk is RiskLevel.MODERATE
    assert v102.adjusted_risk is RiskLevel.LOW
    assert v102.deviation is not None
    assert v102.deviation.risk_adjustment is DeviationStatus.APPROVED
    assert v102.deviation.rationale == "Risk Adjustment : compensating monitoring in place"
    assert v102.scheduled_completion_date == date(2024, 8, 27)
    assert v102.status is Status.RISK_ACCEPTED
    assert v102.owner == Person(email="bob@example.com")
    assert v102.vendor_dependency is not None
    assert v102.vendor_dependency.dependent is True
    assert v102.vendor_dependency.last_check_in == date(2024, 3, 15)
    assert v102.vendor_dependency.product == "IdP appliance"


def test_v30_closed_and_configuration_tabs(v30_result: formats.ReadResult) -> None:
    _, items = _by_id(v30_result)
    closed = items["V-090"]
    assert closed.status is Status.COMPLETED
    assert closed.completed_on == date(2024, 12, 3)
    assert closed.remediation_plan == "Renew and automate."  # "Overall Remediation Plan"
    assert closed.owner == Person(name="Carol Example", org="Security Operations")
    assert closed.provenance is not None and closed.provenance.sheet == "Closed POA&M Items"
    assert closed.provenance.row == 3
    fp = items["V-091"]
    assert fp.status is Status.FALSE_POSITIVE
    assert fp.scheduled_completion_date == date(2025, 4, 30)  # Low: 180 days from 2024-11-01
    config = items["CF-1"]
    assert config.status is Status.OPEN
    assert config.provenance is not None and config.provenance.sheet == "Configuration Findings"
    assert config.controls == ("CM-6",)


def test_system_name_comes_from_the_banner_unless_given(
    v30_result: formats.ReadResult, filled_v20: Path
) -> None:
    result, _items = _by_id(v30_result)
    assert result.system == "Example Cloud Offering"
    assert {i.system for i in result.items} == {"Example Cloud Offering"}
    given = formats.read(filled_v20, system="override")
    assert given.system == "override"
    assert {i.system for i in given.items} == {"override"}


def test_v21_milestones_changes_and_extra_columns(v21_result: formats.ReadResult) -> None:
    result, items = _by_id(v21_result)
    assert result.problems == ()
    assert result.system == "Acme Government Cloud"
    v7 = items["V-7"]
    assert [(m.id, m.due_date, m.description, m.status) for m in v7.milestones] == [
        ("1", date(2024, 2, 1), "Named accounts issued", MilestoneStatus.OPEN),
        ("2", date(2024, 3, 15), "Shared account disabled", MilestoneStatus.OPEN),
    ]
    assert [(c.kind, c.on, c.text) for c in v7.milestone_changes] == [
        ("update", date(2024, 3, 10), "(2) Delayed by a vendor dependency"),
        ("new", date(2024, 3, 12), "(3) Audit the remaining shared accounts"),
    ]
    assert v7.status is Status.DEVIATION_REQUESTED  # Operational Requirement = Pending
    assert v7.deviation is not None
    assert v7.deviation.operational_requirement is DeviationStatus.PENDING
    # columns we do not model are kept verbatim
    assert v7.extra == {"Auto-Approve": "No", "Service Name": "Flux Capacitor"}
    assert items["V-090"].status is Status.COMPLETED


def test_v20_reads_the_xlsm_era_layout(filled_v20: Path) -> None:
    result, items = _by_id(formats.read(filled_v20))
    assert result.problems == ()
    assert result.system is None
    assert {i.system for i in result.items} == {"default"}
    v7 = items["V-7"]
    assert v7.detected_on == date(2024, 1, 10)
    assert v7.scheduled_completion_date == date(2024, 4, 9)
    assert v7.source_identifier == "SAR-12"
    assert v7.owner == Person(name="Carol Example", email="carol@example.com")


def test_headers_are_matched_by_name_not_position(tmp_path: Path) -> None:
    # columns shuffled, odd case and spacing, starting in column D: still read by name
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Open POA&M Items"
    headers = ["weakness  NAME", " POAM id", "Original Detection Date", "original risk rating"]
    for c, h in enumerate(headers, start=4):
        ws.cell(3, c).value = h
    for c, v in enumerate(["Open port", "V-9", "03/01/2024", "high"], start=4):
        ws.cell(4, c).value = v
    path = tmp_path / "shuffled.xlsx"
    wb.save(path)
    result = formats.read(path)
    assert result.problems == ()
    (item,) = result.items
    assert (item.poam_id, item.title, item.original_risk) == ("V-9", "Open port", RiskLevel.HIGH)
    assert item.detected_on == date(2024, 3, 1)
    assert item.scheduled_completion_date == date(2024, 3, 31)


def test_progress_is_reported(filled_v20: Path) -> None:
    calls: list[tuple[int, int]] = []
    formats.read(filled_v20, progress=lambda done, total: calls.append((done, total)))
    assert calls
    done, total = calls[-1]
    assert done == total and done > 0
