"""The two workbook readers agree: python-calamine (the default) and openpyxl give the same
typed rows for every xlsx fixture, every hostile workbook and our own exports, refuse the same
files with the same message, and the public files import to exactly the same items."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from poam_sync import formats
from poam_sync.errors import InputError
from poam_sync.formats import _xlsx_cells
from poam_sync.formats._common import Unreadable
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.samples.build import sample_items
from tests.formats import builders as b
from tests.formats import hostile

FIXTURES = sorted(b.FIXTURES.rglob("*.xlsx"))
XLSX_CASES = [c for c in hostile.CASES if c.name.startswith("xlsx-")]
Cell = tuple[str, object, str | None]


def _cell(value: object) -> Cell:
    why = value.why if isinstance(value, Unreadable) else None
    return (type(value).__name__, value, why)


def _rows(ws: object, file: str) -> list[tuple[Cell, ...]]:
    """Rows with each cell's type (so 1, 1.0 and True differ), blanks and trailing blank cells
    and rows dropped (openpyxl keeps a styled empty cell, calamine does not see it)."""
    out: list[tuple[Cell, ...]] = []
    for row in _xlsx_cells.iter_rows(ws, file):
        cells = [None if v == "" and type(v) is str else v for v in row]
        while cells and cells[-1] is None:
            cells.pop()
        out.append(tuple(_cell(v) for v in cells))
    while out and not out[-1]:
        out.pop()
    return out


def _book(path: Path, reader: str) -> object:
    """What the reader makes of the file: sheet titles and rows, or the refusal."""
    try:
        with _xlsx_cells.open_workbook(path, reader) as wb:
            return [(ws.title, _rows(ws, path.name)) for ws in wb.worksheets]
    except InputError as exc:
        return ("refused", exc.problem.code, str(exc))


def _assert_agree(path: Path) -> None:
    assert _book(path, "calamine") == _book(path, "openpyxl")


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_readers_agree_on_the_fixtures(path: Path) -> None:
    _assert_agree(path)


@pytest.mark.parametrize("case", XLSX_CASES, ids=lambda c: c.name)
def test_readers_agree_on_the_hostile_workbooks(case: hostile.Case, tmp_path: Path) -> None:
    _assert_agree(case.build(tmp_path))


def test_readers_agree_on_our_exports_and_filled_templates(
    tmp_path: Path, filled_v30: Path, filled_v21: Path, filled_v20: Path
) -> None:
    fedramp = tmp_path / "export.xlsx"
    formats.write(sample_items(), fedramp, format="fedramp-xlsx")
    emass = tmp_path / "export-emass.xlsx"
    formats.write(sample_items(), emass, format="emass-xlsx")
    for path in (SAMPLE_FEDRAMP_XLSX, fedramp, emass, filled_v30, filled_v21, filled_v20):
        assert _book(path, "calamine") == _book(path, "openpyxl"), path.name


def _odd_cells(path: Path) -> Path:
    """A sheet of every kind of cell value, some date-styled."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Open POA&M Items"
    ws.append([1, 1.5, -3, 2.25e-3, "text", " padded ", "", True, False, "'=quoted"])
    ws.append([datetime(2026, 1, 5), datetime(2026, 1, 5, 13, 30, 15), "=A1&B1", "#N/A"])
    ws["F9"] = "=SUM(A1:A2)"
    for column, serial in zip("ABCDEFGH", (0, 1, 59, 60, 61, 2958465, 2958466, -1), strict=True):
        ws[f"{column}4"] = serial
        ws[f"{column}4"].number_format = "yyyy-mm-dd"
    ws["A6"] = 12_345_678
    path = path / "odd.xlsx"
    wb.save(path)
    return path


def test_readers_agree_on_odd_cells(tmp_path: Path) -> None:
    path = _odd_cells(tmp_path)
    _assert_agree(path)
    # the date serials outside Excel's calendar need the cell's style: openpyxl reads the sheet
    with _xlsx_cells.open_workbook(path, "calamine") as wb:
        (ws,) = wb.worksheets
        rows = list(_xlsx_cells.iter_rows(ws, path.name))
        assert ws._fallback
    assert isinstance(rows[3][3], Unreadable) and "1900-02-29" in rows[3][3].why


def test_calamine_reads_uncalculated_formulas_and_errors_itself(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["POAM ID", "Comments"])
    ws.append(["V-1", '=HYPERLINK("https://example.com/?a=1&b=2", "<link>")'])
    ws.append(["V-2", "#REF!"])
    ws["B40"] = "=B2"
    path = tmp_path / "formulas.xlsx"
    wb.save(path)
    _assert_agree(path)
    with _xlsx_cells.open_workbook(path, "calamine") as book:
        (sheet,) = book.worksheets
        rows = list(_xlsx_cells.iter_rows(sheet, path.name))
        assert not sheet._fallback
    assert rows[1][1] == '=HYPERLINK("https://example.com/?a=1&b=2", "<link>")'
    assert isinstance(rows[2][1], Unreadable) and "#REF!" in rows[2][1].why
    assert len(rows) == 40 and isinstance(rows[39][1], Unreadable)


def _read_with(reader: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """The import of ``path`` with items compared without their uuid (new at each read)."""
    monkeypatch.setenv(_xlsx_cells.READER_ENV, reader)
    try:
        result = formats.read(path)
    except InputError as exc:
        return ("refused", str(exc))
    items = [i.model_dump(exclude={"uuid"}) for i in result.items]
    return items, result.problems, result.system, result.format


def _public_files(folder: Path, filled: list[Path]) -> Iterator[Path]:
    yield from FIXTURES
    yield SAMPLE_FEDRAMP_XLSX
    yield from filled
    for case in XLSX_CASES:
        yield case.build(folder)


def test_imports_are_the_same_with_either_reader(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    filled_v30: Path,
    filled_v21: Path,
    filled_v20: Path,
) -> None:
    for path in _public_files(tmp_path, [filled_v30, filled_v21, filled_v20]):
        fast = _read_with("calamine", path, monkeypatch)
        slow = _read_with("openpyxl", path, monkeypatch)
        assert fast == slow, path.name


# Cells written into the sheet XML by hand, as other tools write them: each kind calamine reads
# otherwise than openpyxl (trimmed white space, decoded _xHHHH_ escapes, rich text runs) or
# cannot read (damaged XML); the readers must still agree.
_XML_CELLS = {
    "loose-space": '<c r="A2" t="inlineStr"><is><t>  padded  </t></is></c>',
    "blank-text": '<c r="A2" t="inlineStr"><is><t>      </t></is></c>',
    "rich-runs": '<c r="A2" t="inlineStr"><is><r><t>Apply the </t></r><r><t>patch</t></r></is></c>',
    "phonetic": '<c r="A2" t="inlineStr"><is><t>base</t>'
    '<rPh sb="0" eb="1"><t> PH</t></rPh></is></c>',
    "escape": '<c r="A2" t="inlineStr"><is><t>line_x000D_break</t></is></c>',
    "cached-string": '<c r="A2" t="str"><f>A1</f><v> cached </v></c>',
    "shared-formula": '<c r="A2"><f t="shared" si="0"/></c>',
    "error-no-value": '<c r="A2" t="e"><v>#NAME?</v></c>',
    "float-text": '<c r="A2"><v>19506.0</v></c><c r="B2"><v>1E3</v></c>',
    "entity-formula": '<c r="A2"><f>IF(A1&lt;&gt;"",&quot;a&amp;b&quot;,"")</f></c>',
    "damaged": '<c r="A2" t="inlineStr"><is><t>unclosed</is></c>',
    "comment": '<c r="A2" t="inlineStr"><is><t>a</t><!-- note --></is></c>',
    "no-reference": '<c t="inlineStr"><is><t>where</t></is></c>',
}


def _with_cells(folder: Path, name: str, cells: str) -> Path:
    base = folder / "base.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["POAM ID", "Weakness Name"])
    wb.save(base)
    path = folder / f"{name}.xlsx"
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(
                    b"</sheetData>", f'<row r="2">{cells}</row></sheetData>'.encode()
                )
            z.writestr(info.filename, data)
    return path


@pytest.mark.parametrize("name", sorted(_XML_CELLS))
def test_readers_agree_on_cells_written_by_other_tools(name: str, tmp_path: Path) -> None:
    _assert_agree(_with_cells(tmp_path, name, _XML_CELLS[name]))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<t>", b"<t>line_x000D_ "),  # escapes and trimmed white space: openpyxl reads it all
        (b"</sst>", b"</sst"),  # damaged: the same refusal
    ],
    ids=["escape", "damaged"],
)
def test_readers_agree_on_odd_shared_strings(old: bytes, new: bytes, tmp_path: Path) -> None:
    path = tmp_path / "shared.xlsx"
    with zipfile.ZipFile(b.FEDRAMP_V21) as zin, zipfile.ZipFile(path, "w") as z:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/sharedStrings.xml":
                assert old in data
                data = data.replace(old, new, 1)
            z.writestr(info.filename, data)
    _assert_agree(path)
