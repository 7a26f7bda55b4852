"""Export -> import gives back what was exported; exports are safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from poam_sync import formats
from poam_sync.formats._fedramp_columns import MANDATORY_HEADERS, V3_HEADERS
from poam_sync.model import PoamItem, Status, diff_items
from poam_sync.samples.build import sample_items
from tests.formats import builders as b


def test_fedramp_export_has_the_v30_layout_and_real_dates(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    formats.write(sample_items(), path, format="fedramp-xlsx", system_name="Example CSO")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[1:3] == ["Open POA&M Items", "Closed POA&M Items"]
    open_ws, closed_ws = wb["Open POA&M Items"], wb["Closed POA&M Items"]
    open_header = [c.value for c in open_ws[5]][1:]
    assert open_header[: len(V3_HEADERS)] == list(V3_HEADERS)
    closed_header = [c.value for c in closed_ws[2]]
    assert closed_header[9] == "Overall Remediation Plan"
    assert open_ws["C4"].value == "Example CSO"
    col = open_header.index("Original Detection Date") + 2
    cell = open_ws.cell(9, col)
    assert cell.is_date and cell.value == datetime(2026, 11, 2)
    assert closed_ws["A3"].value == "V-0998"


def _mandatory(item: PoamItem) -> dict[str, object]:
    from poam_sync.formats._fedramp_columns import item_to_cells

    cells = item_to_cells(item)
    return {h: cells[h] for h in MANDATORY_HEADERS}


def test_fedramp_round_trip_keeps_mandatory_columns_exactly(tmp_path: Path) -> None:
    items = sample_items()
    path = tmp_path / "rt.xlsx"
    formats.write(items, path, format="fedramp-xlsx")
    back = {i.poam_id: i for i in formats.read(path).items}
    assert sorted(back) == sorted(i.poam_id for i in items)
    for item in items:
        assert _mandatory(back[item.poam_id]) == _mandatory(item)
        # and in fact every field of these items
        assert diff_items(item, back[item.poam_id]) == {}


def test_fedramp_round_trip_of_a_filled_template(
    tmp_path: Path, v30_result: formats.ReadResult
) -> None:
    path = tmp_path / "again.xlsx"
    formats.write(v30_result.items, path, format="fedramp-xlsx")
    back = formats.read(path)
    assert back.problems == ()
    assert back.system == "Example Cloud Offering"
    before = {i.poam_id: i for i in v30_result.items}
    for item in back.items:
        assert diff_items(before[item.poam_id], item) == {}


def test_statuses_the_tabs_cannot_say_travel_in_a_status_column(tmp_path: Path) -> None:
    items = [
        PoamItem(poam_id="A", title="a", status=Status.REMEDIATING),
        PoamItem(poam_id="B", title="b", status=Status.ARCHIVED),
        PoamItem(poam_id="C", title="c", status=Status.OPEN),
    ]
    path = tmp_path / "status.xlsx"
    formats.write(items, path, format="fedramp-xlsx")
    back = {i.poam_id: i.status for i in formats.read(path).items}
    assert back == {"A": Status.REMEDIATING, "B": Status.ARCHIVED, "C": Status.OPEN}


def test_csv_round_trip(tmp_path: Path) -> None:
    items = sample_items()
    path = tmp_path / "poam.csv"
    formats.write(items, path, format="csv")
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    assert header[: len(V3_HEADERS)] == list(V3_HEADERS)
    back = formats.read(path, system="Example Cloud Service")
    assert back.format == "csv" and back.problems == ()
    by_id = {i.poam_id: i for i in back.items}
    for item in items:
        assert diff_items(item, by_id[item.poam_id]) == {}


def test_csv_with_the_chainguard_header_only() -> None:
    result = formats.read(b.CHAINGUARD_CSV)
    assert result.format == "csv"
    assert result.items == () and result.problems == ()


def test_csv_with_the_chainguard_header_and_a_row(tmp_path: Path) -> None:
    header = b.CHAINGUARD_CSV.read_text(encoding="utf-8").splitlines()[0]
    row = (
        "V-5,CM-7,Telnet enabled,Telnet listens on port 23,Nessus,10281,host-1 (23/TCP),"
        "Carol Example,,Disable telnet,01/15/2025,,01/16/2025,No,,,Moderate,,,,,,,,,,"
    )
    path = tmp_path / "cg.csv"
    path.write_text(header + "\n" + row + "\n", encoding="utf-8")
    (item,) = formats.read(path).items
    assert (item.poam_id, item.title, item.controls) == ("V-5", "Telnet enabled", ("CM-7",))
    assert item.detected_on == date(2025, 1, 15)
    assert item.scheduled_completion_date == date(2025, 4, 15)  # Moderate: 90 days


DANGEROUS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "=1+1"]


@pytest.mark.parametrize("fmt", ["fedramp-xlsx", "csv"])
def test_formula_injection_is_neutralized_and_round_trips(tmp_path: Path, fmt: str) -> None:
    items = [
        PoamItem(poam_id=f"X-{n}", title=text, description=text, comments=text)
        for n, text in enumerate(DANGEROUS)
    ]
    path = tmp_path / ("inj.xlsx" if fmt == "fedramp-xlsx" else "inj.csv")
    formats.write(items, path, format=fmt)
    if fmt == "fedramp-xlsx":
        ws = openpyxl.load_workbook(path)["Open POA&M Items"]
        # the items' rows, without column M: the template's Scheduled Completion Date formula
        rows = ws.iter_rows(min_row=9, max_row=8 + len(items))
        cells = [c for row in rows for c in row if isinstance(c.value, str) and c.column != 13]
        assert all(c.data_type == "s" for c in cells)
        texts = [c.value for c in cells]
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            texts = [v for row in list(csv.reader(fh))[1:] for v in row]
    for text in DANGEROUS:
        assert text not in texts
        assert "'" + text in texts
    back = {i.poam_id: i for i in formats.read(path).items}
    for n, text in enumerate(DANGEROUS):
        assert back[f"X-{n}"].title == text
