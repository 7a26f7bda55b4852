"""FedRAMP export: written onto the official v3.0 template, which keeps all it had."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from poam_sync import formats
from poam_sync.formats import ExportHeader
from poam_sync.formats._fedramp_columns import MANDATORY_HEADERS, item_to_cells
from poam_sync.model import PoamItem, Provenance, RiskLevel, Status, diff_items
from poam_sync.samples.build import sample_items
from tests.formats import builders as b

HEADER = ExportHeader(
    csp="Example CSP",
    system_name="Example Cloud Offering",
    impact_level="Moderate",
    poam_date=date(2026, 12, 1),
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    items = [
        *sample_items(),
        PoamItem(
            poam_id="CF-9",
            title="SSH allows password login",
            status=Status.OPEN,
            original_risk=RiskLevel.LOW,
            provenance=Provenance(format="fedramp-xlsx", sheet="Configuration Findings"),
        ),
    ]
    path = tmp_path_factory.mktemp("fedramp") / "poam.xlsx"
    formats.write(items, path, format="fedramp-xlsx", header=HEADER)
    return path


@pytest.fixture(scope="module")
def workbook(exported: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(exported)


def test_tabs_guidance_rows_and_instructions_stay(workbook: openpyxl.Workbook) -> None:
    template = openpyxl.load_workbook(b.FEDRAMP_V30)
    assert workbook.sheetnames == template.sheetnames
    ours, theirs = workbook["Open POA&M Items"], template["Open POA&M Items"]
    for r in (1, 2, 3, 5, 6, 7, 8):
        assert [c.value for c in ours[r]][:28] == [c.value for c in theirs[r]][:28], r
    for title in ("Instructions", "PL-2 Findings", "Record of Changes"):
        ws, tws = workbook[title], template[title]
        assert [[c.value for c in row] for row in ws.iter_rows(max_row=20)] == [
            [c.value for c in row] for row in tws.iter_rows(max_row=20)
        ], title
    # the drop-downs are still there
    assert len(ours.data_validations.dataValidation) == len(theirs.data_validations.dataValidation)


def test_header_fields_are_filled(workbook: openpyxl.Workbook) -> None:
    ws = workbook["Open POA&M Items"]
    assert [ws.cell(2, c).value for c in range(2, 6)] == [
        "Cloud Service Provider",
        "Cloud Service Offering",
        "Impact Level",
        "POA&M Date",
    ]
    assert [ws.cell(4, c).value for c in range(2, 6)] == [
        "Example CSP",
        "Example Cloud Offering",
        "Moderate",
        datetime(2026, 12, 1),
    ]


def test_items_go_under_the_template_rows_on_their_tab(workbook: openpyxl.Workbook) -> None:
    open_ws = workbook["Open POA&M Items"]
    assert open_ws["B9"].value == "V-1001"
    assert [open_ws.cell(r, 2).value for r in range(9, 16)] == [
        "V-1001", "V-1002", "V-1003", "V-1004", "V-1005", "V-1006", "V-1007",
    ]  # fmt: skip
    assert open_ws["B16"].value is None
    # the rows below keep the template's Scheduled Completion Date formula
    assert str(open_ws["M16"].value).startswith("=IF(")
    assert workbook["Closed POA&M Items"]["A3"].value == "V-0998"
    assert workbook["Configuration Findings"]["A3"].value == "CF-9"
    # columns the template lacks are added right of its last one
    header = [c.value for c in open_ws[5]]
    assert header[header.index("CVE") + 1 : header.index("CVE") + 3] == [
        "Planned Milestones",
        "Milestone Changes",
    ]


def test_export_reimports_without_loss(exported: Path) -> None:
    result = formats.read(exported)
    assert result.problems == ()
    assert result.system == "Example Cloud Offering"
    back = {i.poam_id: i for i in result.items}
    for item in sample_items():
        again = back[item.poam_id]
        assert {h: item_to_cells(again)[h] for h in MANDATORY_HEADERS} == {
            h: item_to_cells(item)[h] for h in MANDATORY_HEADERS
        }
        assert diff_items(item.model_copy(update={"system": "Example Cloud Offering"}), again) == {}
    assert back["CF-9"].provenance is not None
    assert back["CF-9"].provenance.sheet == "Configuration Findings"


def test_the_system_name_defaults_to_the_items_system(tmp_path: Path) -> None:
    path = tmp_path / "poam.xlsx"
    formats.write(sample_items()[:1], path, format="fedramp-xlsx")
    ws = openpyxl.load_workbook(path)["Open POA&M Items"]
    assert ws["C4"].value == "Example Cloud Service"
    assert ws["B4"].value is None
    assert isinstance(ws["E4"].value, datetime)  # the POA&M date: today
