"""A corpus of broken and hostile POA&M files, built in a temporary folder at test time.

Each :class:`Case` builds one file from a good base (three items, ``V-1001`` to ``V-1003``,
the same ones the store is seeded with) with one thing wrong, and says what importing it must
give: ``refused`` (the file cannot be read at all), ``rows`` (some rows are errors, named by
row and column or JSON path) or ``ok`` (an odd but valid file that imports).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl

from poam_sync import formats
from poam_sync.samples.build import sample_items
from tests.formats import builders

SEED_IDS = ("V-1001", "V-1002", "V-1003")


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: str  # "refused" | "rows" | "ok"
    where: tuple[str, ...] = ()  # texts the error output must hold besides the file name


def seed_csv(folder: Path) -> Path:
    """The good base as CSV, one line per row (the store is seeded with it)."""
    path = folder / "seed.csv"
    lines = [",".join(_HEADER)]
    for row in _good_rows():
        lines.append(",".join("" if v is None else str(v)[:10] for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# CSV


def _csv_lines(folder: Path) -> list[str]:
    return seed_csv(folder).read_text(encoding="utf-8").splitlines()


def _csv(name: str, edit: Callable[[list[str]], list[str] | str], encoding: str = "utf-8"):
    def build(folder: Path) -> Path:
        lines = _csv_lines(folder)
        out = edit(lines)
        text = out if isinstance(out, str) else "\n".join(out) + "\n"
        path = folder / name
        path.write_bytes(text.encode(encoding))
        return path

    return build


def _set_cell(lines: list[str], row: int, column: str, value: str) -> list[str]:
    import csv
    import io

    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    rows[row][rows[0].index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().splitlines()


def _csv_cell(name: str, row: int, column: str, value: str) -> Callable[[Path], Path]:
    return _csv(name, lambda lines: _set_cell(lines, row, column, value))


def _unterminated(lines: list[str]) -> list[str]:
    many = [lines[0], lines[1]]
    template = lines[2]
    for n in range(50):
        many.append(template.replace("V-1002", f"V-2{n:03d}", 1))
    many[2] = many[2].replace(",", ',"runaway title,', 1)  # a quote opened, never closed
    return many


def _bytes_file(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return build


# ---------------------------------------------------------------------------------------------
# Workbooks

_HEADER = [
    "POAM ID",
    "Weakness Name",
    "Weakness Description",
    "Original Detection Date",
    "Scheduled Completion Date",
    "Original Risk Rating",
    "Comments",
]


def _good_rows() -> list[list[object]]:
    return [
        [pid, f"Weakness {pid}", f"About {pid}", datetime(2026, 1, 5), None, "High", None]
        for pid in SEED_IDS
    ]


def _xlsx(name: str, edit: Callable[[Any], None] | None = None, rows: int = 0):
    def build(folder: Path) -> Path:
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Open POA&M Items"
        ws.append(_HEADER)
        for row in _good_rows():
            ws.append(row)
        for n in range(rows):
            ws.append([f"V-3{n:03d}", "More", "More", datetime(2026, 1, 5), None, "Low", None])
        if edit:
            edit(ws)
        path = folder / name
        wb.save(path)
        return path

    return build


def _rezip(
    name: str,
    base: Callable[[Path], Path],
    edit: Callable[[str, bytes], bytes] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        src = base(folder)
        path = folder / name
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for info in zin.infolist():
                data = zin.read(info.filename)
                z.writestr(info.filename, edit(info.filename, data) if edit else data)
            for member, data in (extra or {}).items():
                z.writestr(member, data)
        return path

    return build


def _sheet_edit(fn: Callable[[str], str]) -> Callable[[str, bytes], bytes]:
    def edit(member: str, data: bytes) -> bytes:
        if member == "xl/worksheets/sheet1.xml":
            return fn(data.decode("utf-8")).encode("utf-8")
        return data

    return edit


def _truncated(folder: Path) -> Path:
    data = _xlsx("base.xlsx")(folder).read_bytes()
    path = folder / "truncated.xlsx"
    path.write_bytes(data[: len(data) // 2])
    return path


def _bomb(folder: Path) -> Path:
    path = folder / "bomb.xlsx"
    base = _xlsx("base.xlsx")(folder)
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetData>", b"<sheetData>" + b" " * (64 * 1024 * 1024))
            z.writestr(info.filename, data)
    return path


def _many_members(folder: Path) -> Path:
    extra = {f"customXml/item{n}.xml": b"<a/>" for n in range(10_001)}
    return _rezip("many-members.xlsx", _xlsx("base.xlsx"), extra=extra)(folder)


_XXE = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def _stale_dimension(text: str) -> str:
    import re

    return re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1:B2"/>', text)


def _row_past_limit(text: str) -> str:
    return text.replace(
        "</sheetData>",
        '<row r="1048577"><c r="A1048577" t="inlineStr"><is><t>V-9</t></is></c></row></sheetData>',
    )


def _cell(column: str, row: int, value: object) -> Callable[[Any], None]:
    def edit(ws: Any) -> None:
        ws[f"{column}{row}"] = value

    return edit


def _date_styled(column: str, row: int, serial: int) -> Callable[[Any], None]:
    def edit(ws: Any) -> None:
        ws[f"{column}{row}"] = serial
        ws[f"{column}{row}"].number_format = "yyyy-mm-dd"

    return edit


def _emass(name: str, value: object, column: str) -> Callable[[Path], Path]:
    """A 2026-layout eMASS workbook (header row 7) whose second item (row 9) has ``value`` in
    ``column``."""

    def build(folder: Path) -> Path:
        rows: list[dict[str, object]] = [
            {
                "POA&M Item ID": pid,
                "Control Vulnerability Description": f"Weakness {pid}",
                "Controls / APs": "AC-2",
                "POA&M Status": "Ongoing",
                "POA&M Scheduled Completion Date": datetime(2026, 6, 1),
            }
            for pid in SEED_IDS
        ]
        rows[1][column] = value
        return builders.build_emass_2026(folder / name, builders.NAVY_2026_HEADERS, rows)

    return build


# ---------------------------------------------------------------------------------------------
# OSCAL


def _oscal_doc(folder: Path) -> dict[str, Any]:
    path = folder / "base.json"
    formats.write(sample_items()[:3], path, format="oscal-json")
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _oscal(name: str, edit: Callable[[dict[str, Any]], object]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        doc = _oscal_doc(folder)
        out = edit(doc)
        path = folder / name
        text = out if isinstance(out, str) else json.dumps(doc)
        path.write_text(text, encoding="utf-8")
        return path

    return build


def _poam(doc: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = doc["plan-of-action-and-milestones"]
    return root


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """Set a value at a dotted path under the POA&M root (``risks.0.deadline``)."""

    def edit(doc: dict[str, Any]) -> None:
        node: Any = _poam(doc)
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return edit


def _poam_id(value: str) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        for prop in _poam(doc)["poam-items"][0]["props"]:
            if prop["name"] == "POAM-ID":
                prop["value"] = value

    return edit


def _duplicate_root(doc: dict[str, Any]) -> str:
    body = json.dumps(doc)
    return body[:-1] + ', "plan-of-action-and-milestones": {}}'


def _deep(doc: dict[str, Any]) -> str:
    return '{"plan-of-action-and-milestones": ' + "[" * 100_000 + "]" * 100_000 + "}"


def _huge_int(doc: dict[str, Any]) -> str:
    return json.dumps(doc).replace('"uuid"', '"x": ' + "9" * 5000 + ', "uuid"', 1)


def _xml(name: str, text: str) -> Callable[[Path], Path]:
    return _bytes_file(name, text.encode("utf-8"))


_NS = "http://csrc.nist.gov/ns/oscal/1.0"


def _deep_xml() -> str:
    return (
        f'<plan-of-action-and-milestones xmlns="{_NS}" uuid="x">'
        + "<a>" * 50_000
        + "</a>" * 50_000
        + "</plan-of-action-and-milestones>"
    )


ROW = ("row 3",)

CASES: list[Case] = [
    # CSV
    Case("csv-unterminated-quote", _csv("unterminated.csv", _unterminated), "refused", ("line 3",)),
    Case("csv-nul", _csv("nul.csv", lambda lines: "\x00".join(lines)), "refused"),
    Case("csv-binary", _bytes_file("random.csv", bytes(range(256)) * 40), "refused"),
    Case("csv-empty", _bytes_file("empty.csv", b""), "refused"),
    Case("csv-huge-cell", _csv_cell("huge-cell.csv", 2, "Comments", "x" * 200_000), "refused"),
    Case(
        "csv-two-digit-year",
        _csv_cell("yy.csv", 2, "Original Detection Date", "12/31/99"),
        "rows",
        ROW,
    ),
    Case(
        "csv-trailing-text",
        _csv_cell("trail.csv", 2, "Original Detection Date", "2027-03-03 garbage"),
        "rows",
        ROW,
    ),
    Case(
        "csv-bad-hour",
        _csv_cell("hour.csv", 2, "Original Detection Date", "2027-03-03T25:00"),
        "rows",
        ROW,
    ),
    Case(
        "csv-arabic-digits",
        _csv_cell(
            "digits.csv",
            2,
            "Original Detection Date",
            "\u0662\u0660\u0662\u0667-\u0660\u0663-\u0660\u0663",
        ),
        "rows",
        ROW,
    ),
    Case(
        "csv-excel-error-date",
        _csv_cell("ref.csv", 2, "Original Detection Date", "#REF!"),
        "rows",
        ROW,
    ),
    Case("csv-rtl-override-id", _csv_cell("rtl.csv", 2, "POAM ID", "V-1002\u202e"), "rows", ROW),
    Case("csv-control-char-id", _csv_cell("bell.csv", 2, "POAM ID", "V-10\x0702"), "rows", ROW),
    Case("csv-utf16", _csv("utf16.csv", lambda lines: lines, encoding="utf-16"), "ok"),
    Case("csv-bom", _csv("bom.csv", lambda lines: "\ufeff" + "\n".join(lines) + "\n"), "ok"),
    Case(
        "csv-mixed-newlines",
        _csv(
            "newlines.csv",
            lambda lines: lines[0] + "\r\n" + lines[1] + "\r" + lines[2] + "\n" + lines[3] + "\n",
        ),
        "ok",
    ),
    Case("csv-formula-text", _csv_cell("formula.csv", 2, "Comments", '=HYPERLINK("x")'), "ok"),
    # Workbooks
    Case("xlsx-truncated", _truncated, "refused"),
    Case(
        "xlsx-encrypted",
        _bytes_file("encrypted.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096),
        "refused",
        ("password",),
    ),
    Case("xlsx-zip-bomb", _bomb, "refused", ("zip bomb",)),
    Case("xlsx-many-members", _many_members, "refused", ("zip entries",)),
    Case(
        "xlsx-path-traversal",
        _rezip("traversal.xlsx", _xlsx("base.xlsx"), extra={"../../evil.xml": b"<a/>"}),
        "refused",
        ("unsafe name",),
    ),
    Case(
        "xlsx-xxe",
        _rezip("xxe.xlsx", _xlsx("base.xlsx"), _sheet_edit(lambda t: _XXE + t.split("?>", 1)[-1])),
        "refused",
        ("DTD",),
    ),
    Case(
        "xlsx-row-past-limit",
        _rezip("past-limit.xlsx", _xlsx("base.xlsx"), _sheet_edit(_row_past_limit)),
        "refused",
        ("1,048,576",),
    ),
    Case(
        "xlsx-formula-title",
        _xlsx("formula.xlsx", _cell("B", 3, "=A1&A2")),
        "rows",
        (*ROW, "Weakness Name"),
    ),
    Case(
        "xlsx-ref-error-date",
        _xlsx("ref.xlsx", _cell("D", 3, "#REF!")),
        "rows",
        (*ROW, "Original Detection Date"),
    ),
    Case("xlsx-div0-scheduled", _xlsx("div0.xlsx", _cell("E", 3, "#DIV/0!")), "ok"),
    Case("xlsx-serial-too-big", _xlsx("serial.xlsx", _date_styled("D", 3, 3_000_000)), "rows", ROW),
    Case("xlsx-serial-negative", _xlsx("negative.xlsx", _cell("D", 3, -5)), "rows", ROW),
    Case("xlsx-serial-60", _xlsx("sixty.xlsx", _date_styled("D", 3, 60)), "rows", ROW),
    Case("xlsx-boolean-title", _xlsx("bool.xlsx", _cell("B", 3, True)), "rows", ROW),
    Case("xlsx-fractional-id", _xlsx("fraction.xlsx", _cell("A", 3, 1.5)), "rows", ROW),
    Case(
        "xlsx-stale-dimension",
        _rezip("stale.xlsx", _xlsx("base.xlsx", rows=8), _sheet_edit(_stale_dimension)),
        "ok",
    ),
    Case(
        "xlsx-macro",
        _rezip(
            "macro.xlsm",
            _xlsx("base.xlsx"),
            extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + b"\0" * 512},
        ),
        "ok",
    ),
    Case(
        "emass-formula-description",
        _emass("emass-formula.xlsx", "=B1&C1", "Control Vulnerability Description"),
        "rows",
        ("row 9", "Control Vulnerability"),
    ),
    Case(
        "emass-boolean-description",
        _emass("emass-bool.xlsx", False, "Control Vulnerability Description"),
        "rows",
        ("row 9",),
    ),
    Case(
        "emass-rtl-id",
        _emass("emass-rtl.xlsx", "V-1002\u202e", "POA&M Item ID"),
        "rows",
        ("row 9", "POA&M Item ID"),
    ),
    Case(
        "emass-two-digit-year",
        _emass("emass-yy.xlsx", "6/1/26", "POA&M Scheduled Completion Date"),
        "rows",
        ("row 9",),
    ),
    # OSCAL JSON
    Case("json-duplicate-keys", _oscal("dup.json", _duplicate_root), "refused", ("twice",)),
    Case("json-deep", _oscal("deep.json", _deep), "refused", ("deep",)),
    Case("json-huge-int", _oscal("huge.json", _huge_int), "refused"),
    Case("json-top-array", _bytes_file("array.json", b"[1, 2, 3]"), "refused"),
    Case("json-not-utf8", _bytes_file("latin.json", b'{"a": "\xe9"}'), "refused"),
    Case(
        "json-poam-items-object",
        _oscal("obj.json", _set("poam-items", {"a": 1})),
        "refused",
        ("poam-items",),
    ),
    Case("json-risks-string", _oscal("risks.json", _set("risks", "none")), "refused", ("risks",)),
    Case(
        "json-poam-item-string",
        _oscal("item.json", _set("poam-items.0", "x")),
        "rows",
        ("poam-items[0]",),
    ),
    Case(
        "json-numeric-title",
        _oscal("title.json", _set("poam-items.0.title", 42)),
        "rows",
        ("poam-items[0].title",),
    ),
    Case(
        "json-bad-uuid",
        _oscal("uuid.json", _set("poam-items.0.uuid", "not-a-uuid")),
        "rows",
        ("poam-items[0].uuid",),
    ),
    Case(
        "json-bad-deadline",
        _oscal("deadline.json", _set("risks.0.deadline", "2026-13-45")),
        "rows",
        ("deadline",),
    ),
    Case(
        "json-bad-collected",
        _oscal("collected.json", _set("observations.0.collected", "2026-13-45T00:00:00Z")),
        "rows",
        ("collected",),
    ),
    Case("json-nul-id", _oscal("nulid.json", _poam_id("V-10\x0001")), "rows", ("POAM-ID",)),
    Case("json-rtl-id", _oscal("rtlid.json", _poam_id("V-1001\u202e")), "rows", ("POAM-ID",)),
    Case(
        "json-props-wrong-type",
        _oscal("props.json", _set("poam-items.0.props", 7)),
        "rows",
        ("poam-items[0].props",),
    ),
    # OSCAL XML
    Case(
        "xml-xxe",
        _xml(
            "xxe.xml",
            _XXE + f'<plan-of-action-and-milestones xmlns="{_NS}">'
            "&xxe;</plan-of-action-and-milestones>",
        ),
        "refused",
        ("DTD",),
    ),
    Case(
        "xml-malformed",
        _xml("broken.xml", f'<plan-of-action-and-milestones xmlns="{_NS}">'),
        "refused",
    ),
    Case("xml-deep", _xml("deep.xml", _deep_xml()), "refused", ("deep",)),
]
