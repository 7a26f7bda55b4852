"""What python-calamine cannot say about a sheet, found in the sheet's XML.

python-calamine returns cached cell values only: an Excel error value (``t="e"``) and a formula
without a cached value both come back as an empty cell, and there is no style, so a date serial
outside Excel's calendar cannot be told from a number (python-calamine's ``src/types/cell.rs``
maps calamine's ``Data::Error`` and ``Data::Empty`` to the same empty value). This module scans
the raw sheet XML for just those cells, without parsing the rest, and for anything that would
make the scan unsure of itself (namespace prefixes, cells or rows without a reference, rows out
of order or past Excel's limit, ISO date cells, CDATA): then the sheet is read with openpyxl.

The cells found are given the same :class:`Unreadable` values as the openpyxl reader's
(``_xlsx.formula_cell`` / ``_xlsx.error_cell``), keyed by 0-based (row, column).
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass, field

from poam_sync.formats._xlsx import MAX_COLUMNS, MAX_ROWS, error_cell, formula_cell

# A formula element or an error type attribute: the only two marks of a cell calamine empties.
# Each pattern starts with a literal, which the re module finds fast; attributes written other
# than ``t="e"`` make the scan unsure (see _check_layout).
_FORMULA_MARK = re.compile(rb"<f[\s/>]")
_ERROR_MARK = re.compile(rb' t="e"')
_ATTR = re.compile(rb"([A-Za-z_][\w.:-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_VALUE = re.compile(rb"<v(?:\s[^>]*)?(?:/>|>(.*?)</v>)", re.S)
_FORMULA = re.compile(rb"<f(?:\s[^>]*)?(?:/>|>(.*?)</f>)", re.S)
# A number openpyxl reads as a float although it has no fraction ("19506.0", "1E3"): calamine
# reads every number as a float and cannot tell these from the integers openpyxl gives.
_FLOAT_TEXT = re.compile(rb"<v>(-?\d+\.0*|-?\d+(?:\.\d*)?[eE][-+]?\d+)</v>")
# Text calamine reads differently from openpyxl: a <t> or <v> without xml:space="preserve" whose
# text starts or ends with white space (calamine trims it, openpyxl keeps it), and the OOXML
# escape _xHHHH_ (calamine decodes it, openpyxl keeps it as written).
# The trailing white space is looked for in the reversed XML, where the pattern starts with the
# literal ">t/<" (a pattern starting with a character class is ten times slower).
LOOSE_TEXT = re.compile(rb"<[tv]>(?:[ \t\r\n][^<]*|[^<]*[ \t\r\n])</[tv]>|_x[0-9A-Fa-f]{4}_")
_LEADING = (re.compile(rb"<t>[ \t\r\n]"), re.compile(rb"<v>[ \t\r\n]"))
_TRAILING = (re.compile(rb">t/<[ \t\r\n][^<]*>t<"), re.compile(rb">v/<[ \t\r\n][^<]*>v<"))
_ESCAPE = re.compile(rb"_x[0-9A-Fa-f]{4}_")
_TEXT = re.compile(rb"<t(?:\s[^>]*)?(?:/>|>(.*?)</t>)", re.S)
_PHONETIC = re.compile(rb"<rPh[\s>].*?</rPh>", re.S)
_ROW_NUMBER = re.compile(rb"<row\s+r\s*=\s*[\"'](\d+)[\"']")
_REF = re.compile(r"([A-Z]{1,3})(\d+)")
_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#\d+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


class Unsure(Exception):
    """The sheet's XML is laid out in a way the scan does not read: use openpyxl for it."""


@dataclass
class SheetScan:
    """The cells of one sheet that calamine empties or reads otherwise than openpyxl, with
    openpyxl's value (an :class:`Unreadable`, or text as written); the cells whose number
    openpyxl reads as a float; the sheet's last row number (1-based, 0 for an empty sheet)."""

    cells: dict[tuple[int, int], str] = field(default_factory=dict)
    last_row: int = 0
    floats: set[tuple[int, int]] = field(default_factory=set)


def _unescape(text: bytes) -> str:
    """XML character data as a parser gives it: line ends normalised, references resolved."""
    text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def one(m: re.Match[str]) -> str:
        name = m[1]
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    return _ENTITY.sub(one, text.decode("utf-8"))


def _position(ref: str) -> tuple[int, int]:
    m = _REF.fullmatch(ref)
    if m is None:
        raise Unsure(f"cell reference {ref!r}")
    col = 0
    for ch in m[1]:
        col = col * 26 + ord(ch) - 64
    row = int(m[2])
    if col > MAX_COLUMNS or row > MAX_ROWS:
        raise Unsure(f"cell reference {ref!r} past the sheet's limits")
    return row - 1, col - 1


def check_well_formed(data: bytes) -> None:
    """Raise :class:`Unsure` unless ``data`` is well-formed XML without a DTD (calamine reads
    some damaged XML that openpyxl refuses: openpyxl then gives today's refusal). Expat with no
    handlers only checks, at about 100 MB/s."""
    if b"<!" in data:
        raise Unsure("a DTD, CDATA or a comment")
    try:
        xml.parsers.expat.ParserCreate().Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise Unsure(f"XML that is not well-formed: {exc}") from exc


def _check_layout(data: bytes) -> int:
    """The sheet's last row number; raises :class:`Unsure` for a layout the scan cannot read."""
    check_well_formed(data)
    if b"<sheetData" not in data:
        raise Unsure("namespace prefixes")
    if b"<c>" in data or data.count(b"<c ") != data.count(b'<c r="'):
        raise Unsure("a cell without a reference")
    if b"<row>" in data or data.count(b"<row ") != data.count(b'<row r="'):
        raise Unsure("a row without a number")
    if b' t="d"' in data:
        raise Unsure("an ISO date cell")
    if b" t='" in data or b" t =" in data or b" t= " in data:
        raise Unsure("a cell type written in an unusual way")
    last = 0
    for m in _ROW_NUMBER.finditer(data):
        number = int(m[1])
        if number <= last or number > MAX_ROWS:
            raise Unsure("rows out of order or past Excel's limit")
        last = number
    return last


def _cell_at(data: bytes, pos: int) -> tuple[dict[bytes, bytes], int, int]:
    """The attributes, end of the start tag and end of the ``<c>`` element around ``pos``."""
    start = data.rfind(b"<c ", 0, pos + 1)
    tag_end = data.find(b">", start) if start >= 0 else -1
    end = data.find(b"</c>", tag_end) if tag_end >= 0 else -1
    if end < 0 or not start < pos < end or data[tag_end - 1 : tag_end] == b"/":
        raise Unsure("a mark outside a cell")
    if data.find(b"<c ", tag_end, end) >= 0:
        raise Unsure("a mark outside a cell")
    attrs = {
        m[1]: m[2] if m[2] is not None else m[3] for m in _ATTR.finditer(data, start + 2, tag_end)
    }
    return attrs, tag_end, end


def _where(attrs: dict[bytes, bytes]) -> tuple[int, int]:
    ref = attrs.get(b"r")
    if ref is None:
        raise Unsure("a cell without a reference")
    return _position(ref.decode("ascii", "replace"))


def _loose(data: bytes) -> list[int]:
    """Where text starts that calamine reads otherwise than openpyxl (see LOOSE_TEXT)."""
    found = [m.start() for m in _ESCAPE.finditer(data)]
    for pattern in _LEADING:
        found += [m.start() for m in pattern.finditer(data)]
    if b" </" in data or b"\n</" in data or b"\t</" in data or b"\r</" in data:
        backwards = data[::-1]
        for pattern in _TRAILING:
            found += [len(data) - m.end() for m in pattern.finditer(backwards)]
    return found


def scan_sheet(data: bytes) -> SheetScan:
    """The error and uncalculated formula cells of a sheet's XML (``xl/worksheets/*.xml``)."""
    scan = SheetScan(last_row=_check_layout(data))
    done: set[int] = set()
    marks = [m.start() for m in _FORMULA_MARK.finditer(data)]
    marks += [m.start() for m in _ERROR_MARK.finditer(data)]
    for at in marks:
        attrs, tag_end, end = _cell_at(data, at)
        if tag_end in done:
            continue
        done.add(tag_end)
        body = data[tag_end + 1 : end]
        kind = attrs.get(b"t", b"n")
        value = _VALUE.search(body)
        raw = value[1] if value is not None and value[1] else None
        formula = _FORMULA.search(body)
        if formula is not None and raw is None:
            if kind == b"inlineStr":
                raise Unsure("a formula with an inline string")
            scan.cells[_where(attrs)] = formula_cell(_unescape(formula[1] or b""))
        elif kind == b"e" and raw is not None:
            scan.cells[_where(attrs)] = error_cell(_unescape(raw))
    seen: set[int] = set()
    for at in _loose(data):
        attrs, tag_end, end = _cell_at(data, at)
        if tag_end in seen or _where(attrs) in scan.cells:
            continue
        seen.add(tag_end)
        body = data[tag_end + 1 : end]
        kind = attrs.get(b"t", b"n")
        if kind == b"inlineStr" and b"<f" not in body:
            texts = _TEXT.findall(_PHONETIC.sub(b"", body))
            scan.cells[_where(attrs)] = "".join(_unescape(t) for t in texts)
        elif kind == b"str" and (value := _VALUE.search(body)) is not None and value[1]:
            scan.cells[_where(attrs)] = _unescape(value[1])
        elif kind != b"s":
            raise Unsure("white space or an escape in a cell calamine reads otherwise")
    for number in _FLOAT_TEXT.finditer(data):
        attrs, _, _ = _cell_at(data, number.start())
        if attrs.get(b"t", b"n") == b"n":
            scan.floats.add(_where(attrs))
    return scan
