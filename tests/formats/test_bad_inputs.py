"""Bad input: a clear error that names file, sheet, row and column, and nothing half-imported."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from poam_sync import formats
from poam_sync.errors import InputError, PoamSyncError, UsageError
from poam_sync.samples.build import sample_items
from tests.formats import builders as b

BAD = b.FIXTURES / "bad"


def _input_error(path: Path, **kw: str) -> InputError:
    with pytest.raises(InputError) as info:
        formats.read(path, **kw)  # type: ignore[arg-type]
    assert info.value.problem.file == path.name
    assert path.name in str(info.value)
    assert info.value.problem.hint
    return info.value


def test_truncated_xlsx() -> None:
    err = _input_error(BAD / "truncated.xlsx")
    assert err.problem.code == "not_xlsx"
    assert "truncated" in err.problem.message


def test_text_named_xlsx() -> None:
    err = _input_error(BAD / "not-a-workbook.xlsx")
    assert err.problem.code == "not_xlsx"


def test_xlsx_forced_as_fedramp_when_it_is_not_a_zip() -> None:
    err = _input_error(BAD / "not-a-workbook.xlsx", format="fedramp-xlsx")
    assert err.problem.code == "not_xlsx"


def test_sheet_with_no_header(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Open POA&M Items"
    ws["A1"] = "Our weaknesses"
    ws["A3"] = "ID"
    ws["B3"] = "Name"
    path = tmp_path / "no-header.xlsx"
    wb.save(path)
    err = _input_error(path, format="fedramp-xlsx")
    assert err.problem.code == "no_header"
    assert err.problem.sheet == "Open POA&M Items"
    with pytest.raises(InputError) as auto:
        formats.read(path)
    assert auto.value.problem.code == "no_header"


def test_one_headerless_poam_sheet_among_good_ones_is_a_problem(tmp_path: Path) -> None:
    src = tmp_path / "good.xlsx"
    formats.write(sample_items(), src, format="fedramp-xlsx")
    wb = openpyxl.load_workbook(src)
    ws = wb["Closed POA&M Items"]
    ws.delete_rows(1, 2)
    wb.save(src)
    result = formats.read(src)
    assert len(result.items) == 7  # the open tab
    (p,) = result.problems
    assert (p.sheet, p.code) == ("Closed POA&M Items", "no_header")


def _workbook_with_bad_rows(path: Path) -> Path:
    formats.write(sample_items()[:3], path, format="fedramp-xlsx")
    wb = openpyxl.load_workbook(path)
    ws = wb["Open POA&M Items"]
    header = {c.value: c.column for c in ws[5] if c.value}
    # row 9: V-1001, row 10: V-1002, row 11: V-1003 (the exporter writes under the template rows)
    ws.cell(10, header["Original Detection Date"]).value = "2025-02-30"
    ws.cell(11, header["False Positive"]).value = "Perhaps"
    ws.cell(12, header["POAM ID"]).value = "V-1001"
    ws.cell(12, header["Weakness Name"]).value = "Same id again"
    ws.cell(12, header["Original Detection Date"]).value = datetime(2025, 1, 1)
    ws.cell(13, header["Weakness Name"]).value = "A row without an id"
    wb.save(path)
    return path


def test_bad_rows_become_problems_and_good_rows_are_kept(tmp_path: Path) -> None:
    path = _workbook_with_bad_rows(tmp_path / "bad-rows.xlsx")
    result = formats.read(path)
    assert [i.poam_id for i in result.items] == ["V-1001"]
    problems = {p.row: p for p in result.problems}
    assert sorted(problems) == [10, 11, 12, 13]
    for p in result.problems:
        assert p.file == "bad-rows.xlsx" and p.sheet == "Open POA&M Items"
        assert p.hint
    bad_date = problems[10]
    assert bad_date.column == "Original Detection Date"
    assert "2025-02-30" in bad_date.message
    unknown = problems[11]
    assert unknown.column == "False Positive" and "Perhaps" in unknown.message
    duplicate = problems[12]
    assert duplicate.code == "duplicate_id" and duplicate.column == "POAM ID"
    assert "row 9" in duplicate.message  # names the earlier row
    assert problems[13].code == "missing_id"


def test_csv_bad_rows() -> None:
    path = BAD / "bad-rows.csv"
    result = formats.read(path)
    assert [i.poam_id for i in result.items] == ["V-1"]
    got = {(p.row, p.column) for p in result.problems}
    assert got == {
        (3, "Original Detection Date"),
        (4, "Status"),
        (5, "POAM ID"),
        (6, "Original Risk Rating"),
    }
    by_row = {p.row: p for p in result.problems}
    assert "half done" in by_row[4].message
    assert "row 2" in by_row[5].message
    assert all(p.file == "bad-rows.csv" and p.sheet is None for p in result.problems)


def test_xml_bomb_is_refused() -> None:
    err = _input_error(BAD / "billion-laughs.xml")
    assert err.problem.code == "xml_unsafe"


def test_xml_bomb_inside_a_workbook_is_refused(tmp_path: Path) -> None:
    # openpyxl parses workbook XML with defusedxml: a DOCTYPE with entities is refused
    src = tmp_path / "good.xlsx"
    formats.write(sample_items(), src, format="fedramp-xlsx")
    bomb = tmp_path / "bomb.xlsx"
    dtd = (
        '<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = (dtd + data.decode().replace("FedRAMP®", "&lol1;", 1)).encode()
            zout.writestr(info, data)
    err = _input_error(bomb)
    assert err.problem.code == "bad_xlsx"
    assert str(tmp_path) not in str(err)  # the file name, never the full path


def test_invalid_json_names_line_and_column() -> None:
    err = _input_error(BAD / "invalid.json")
    assert err.problem.code == "bad_json"
    assert err.problem.row == 4 and err.problem.column is not None


def test_dangling_oscal_reference() -> None:
    result = formats.read(BAD / "dangling-reference.json")
    assert [i.poam_id for i in result.items] == ["V-1"]
    (p,) = result.problems
    assert p.code == "dangling_reference"
    assert (p.row, p.column) == (2, "poam-items[1].related-risks[0].risk-uuid")


def test_json_that_is_not_a_poam(tmp_path: Path) -> None:
    path = tmp_path / "ssp.json"
    path.write_text('{"system-security-plan": {}}', encoding="utf-8")
    err = _input_error(path)
    assert err.problem.code == "not_poam" and "system-security-plan" in err.problem.message


def test_missing_file_and_unknown_formats(tmp_path: Path) -> None:
    err = _input_error(tmp_path / "nope.xlsx")
    assert err.problem.code == "not_found"
    with pytest.raises(UsageError):
        formats.read(BAD / "invalid.json", format="pdf")
    with pytest.raises(UsageError):
        formats.write(sample_items(), tmp_path / "x.pdf", format="pdf")
    with pytest.raises(UsageError):
        formats.write([], tmp_path / "empty.json", format="oscal-json")


@pytest.mark.parametrize("path", sorted(BAD.glob("*.*")), ids=lambda p: p.name)
def test_every_bad_file_gives_a_poam_sync_error_or_problems(path: Path) -> None:
    if path.suffix == ".md":
        return
    try:
        result = formats.read(path)
    except PoamSyncError as exc:
        assert path.name in str(exc)
    else:
        assert result.problems
