"""Workbook cells for the readers: python-calamine first, openpyxl for what calamine cannot give.

:func:`open_workbook` checks the zip (``_xlsx.check_archive``) and the process's memory, then
opens the workbook with python-calamine, which reads a sheet's cached values about twenty times
faster than openpyxl's read-only mode. :func:`iter_rows` yields the rows exactly as the openpyxl
reader (``_xlsx.openpyxl_rows``) does: numbers without a fraction as ``int``, dates as
``datetime``, blank cells as ``None``, and :class:`Unreadable` for formulas without a cached
value and Excel error values (found in the sheet's XML by ``_xlsx_scan``, since calamine empties
them).

Where calamine's answer could differ from openpyxl's, the sheet is read with openpyxl instead:
the scan is unsure of the XML's layout (a DTD, namespace prefixes, rows out of order or past
Excel's limit), a value could be a date serial outside Excel's calendar (calamine gives a date
before 1900-03-01, a time of day or a number past 2958465 where openpyxl, which sees the cell's
style, reports the serial), or calamine cannot open the file at all (openpyxl then gives
today's refusal). ``POAM_SYNC_XLSX_READER=openpyxl`` reads every sheet with openpyxl.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import structlog
from defusedxml import ElementTree as SafeET
from python_calamine import CalamineError, CalamineWorkbook, SheetTypeEnum

from poam_sync.formats._common import EXCEL_MAX_SERIAL, check_memory
from poam_sync.formats._xlsx import MAX_COLUMNS, check_archive, open_openpyxl, openpyxl_rows
from poam_sync.formats._xlsx_scan import (
    LOOSE_TEXT,
    SheetScan,
    Unsure,
    check_well_formed,
    scan_sheet,
)

READER_ENV = "POAM_SYNC_XLSX_READER"
READERS = ("calamine", "openpyxl")
_PROLOG_BYTES = 64 * 1024
_FIRST_REAL_DAY = datetime(1900, 3, 1)  # serials from 61 on; below, serial 60 is ambiguous
_MAX_EXACT = 2.0**53
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"

_log = structlog.get_logger(__name__)


def _give_up(exc: BaseException) -> bool:
    """Whether openpyxl should read what calamine failed on: calamine's own errors, the scan's
    doubts, and a Rust panic inside python-calamine (pyo3's PanicException, a BaseException)."""
    if isinstance(exc, Unsure | _Doubt | CalamineError):
        return True
    return type(exc).__name__ == "PanicException"


class _Doubt(Exception):
    """A value calamine gives that openpyxl might give differently (the message, logged at
    debug level, names the kind of value, never the value)."""


def reader_name() -> str:
    """``calamine`` unless ``POAM_SYNC_XLSX_READER`` says ``openpyxl``."""
    value = os.environ.get(READER_ENV, "").strip().lower()
    return value if value in READERS else "calamine"


class CalamineSheet:
    """One worksheet of a :class:`CalamineBook`, read on first use."""

    def __init__(self, book: CalamineBook, title: str, member: str) -> None:
        self.parent = book
        self.title = title
        self.member = member
        self._rows: list[tuple[object, ...]] | None = None
        self._fallback = False

    @property
    def max_row(self) -> int:
        rows = self.parent.rows_of(self)
        if rows is None:
            return int(self.parent.openpyxl_sheet(self.title).max_row or 0)
        return len(rows)


class CalamineBook:
    """A workbook read with python-calamine, with openpyxl at hand for the sheets it cannot
    read exactly."""

    def __init__(self, path: Path, wb: CalamineWorkbook, members: dict[str, str]) -> None:
        self.path = path
        self._wb = wb
        self._stack = ExitStack()
        self._openpyxl: Any = None
        self.worksheets = [
            CalamineSheet(self, meta.name, members[meta.name])
            for meta in wb.sheets_metadata
            if meta.typ == SheetTypeEnum.WorkSheet
        ]

    def close(self) -> None:
        self._wb.close()
        self._stack.close()

    def openpyxl_sheet(self, title: str) -> Any:
        if self._openpyxl is None:
            self._openpyxl = self._stack.enter_context(open_openpyxl(self.path))
        return self._openpyxl[title]

    def rows_of(self, ws: CalamineSheet) -> list[tuple[object, ...]] | None:
        """The sheet's rows, or None when the sheet is to be read with openpyxl."""
        if ws._rows is None and not ws._fallback:
            try:
                ws._rows = self._read(ws)
            except BaseException as exc:
                if not _give_up(exc):
                    raise
                _log.debug(
                    "xlsx.openpyxl_fallback", file=self.path.name, sheet=ws.title, reason=str(exc)
                )
                ws._fallback = True
        return ws._rows

    def _read(self, ws: CalamineSheet) -> list[tuple[object, ...]]:
        with zipfile.ZipFile(self.path) as zf:
            scan = scan_sheet(zf.read(ws.member))
        sheet = self._wb.get_sheet_by_name(ws.title)
        if sheet.width > MAX_COLUMNS:
            raise Unsure("a cell past column XFD")
        rows = [_row(values) for values in sheet.to_python(skip_empty_area=False)]
        check_memory(self.path.name, ws.title)
        return _merge(rows, scan)


def _row(values: list[Any]) -> tuple[object, ...]:
    """One calamine row as the openpyxl reader gives it (trailing blanks dropped)."""
    out: list[object] = []
    for v in values:
        t = type(v)
        if t is str:
            out.append(v or None)
        elif t is float:
            if v > EXCEL_MAX_SERIAL or v < -_MAX_EXACT:
                raise _Doubt("a number that may be a date serial past Excel's calendar")
            out.append(int(v) if v.is_integer() else v)
        elif t is bool or t is int:
            out.append(v)
        elif t is date:
            day = datetime(v.year, v.month, v.day)
            if day < _FIRST_REAL_DAY:
                raise _Doubt("a date that may be serial 60 or below")
            out.append(day)
        elif t is datetime:
            if v < _FIRST_REAL_DAY or v.microsecond:
                raise _Doubt("a date-time that may be rounded differently")
            out.append(v)
        elif t is timedelta:
            if v < timedelta(days=1) or v.microseconds:
                raise _Doubt("a duration that may be a serial below 1")
            out.append(v)
        elif t is time:
            raise _Doubt("a time of day: a serial below 1")
        else:
            raise _Doubt(f"a value of type {t.__name__}")
    while out and out[-1] is None:
        out.pop()
    return tuple(out)


def _merge(rows: list[tuple[object, ...]], scan: SheetScan) -> list[tuple[object, ...]]:
    """``rows`` with the scan's unreadable cells put in, to the sheet's last row."""
    while len(rows) < scan.last_row:
        rows.append(())
    for r, c in scan.floats:
        if r < len(rows) and c < len(rows[r]) and type(rows[r][c]) is int:
            row = list(rows[r])
            row[c] = float(row[c])  # type: ignore[arg-type]
            rows[r] = tuple(row)
    for (r, c), value in scan.cells.items():
        while len(rows) <= r:
            rows.append(())
        row = list(rows[r])
        row.extend([None] * (c + 1 - len(row)))
        row[c] = value
        rows[r] = tuple(row)
    return rows


def _target(base: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    parts: list[str] = []
    for part in (PurePosixPath(base).parent / target).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _rels(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationships: id -> (type, target member)."""
    p = PurePosixPath(part)
    name = str(p.parent / "_rels" / (p.name + ".rels")).lstrip("./")
    root = SafeET.fromstring(zf.read(name))
    return {
        rel.get("Id", ""): (rel.get("Type", ""), _target(part, rel.get("Target", "")))
        for rel in root.iter(f"{_PKG_REL}Relationship")
    }


def sheet_members(path: Path) -> dict[str, str]:
    """Sheet title -> zip member of its XML, read from the workbook part; raises
    :class:`Unsure` for a package it does not understand (a DTD anywhere, the 1904 date
    system, a sheet without its part)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.endswith((".xml", ".rels")):
                    with zf.open(info) as fh:
                        if b"<!" in fh.read(_PROLOG_BYTES):
                            raise Unsure(f"{info.filename} holds a DTD or a comment")
            office = [t for kind, t in _rels(zf, "").values() if kind.endswith("/officeDocument")]
            if len(office) != 1:
                raise Unsure("no single workbook part")
            book = SafeET.fromstring(zf.read(office[0]))
            pr = book.find(f"{_MAIN}workbookPr")
            if pr is not None and pr.get("date1904", "0").lower() in {"1", "true"}:
                raise Unsure("the 1904 date system")
            rels = _rels(zf, office[0])
            for kind, target in rels.values():
                if kind.endswith(("/sharedStrings", "/styles")) and target in zf.namelist():
                    part = zf.read(target)
                    check_well_formed(part)
                    if LOOSE_TEXT.search(part):
                        raise Unsure(f"{target}: text calamine reads otherwise")
            members: dict[str, str] = {}
            for sheet in book.iter(f"{_MAIN}sheet"):
                rel = rels.get(sheet.get(f"{_REL}id", ""))
                if rel is None or rel[1] not in zf.namelist():
                    raise Unsure("a sheet without its part")
                members[sheet.get("name", "")] = rel[1]
            return members
    except Unsure:
        raise
    except Exception as exc:  # a damaged package: openpyxl gives the refusal
        raise Unsure(f"{type(exc).__name__}: {exc}") from exc


@contextmanager
def open_workbook(path: Path, reader: str | None = None) -> Iterator[Any]:
    """The workbook for :func:`iter_rows`: read by ``reader`` (``calamine`` or ``openpyxl``;
    default :func:`reader_name`), closed on exit. Its ``worksheets`` have ``title`` and
    ``max_row``."""
    check_archive(path)
    check_memory(path.name)
    book: CalamineBook | None = None
    if (reader or reader_name()) == "calamine":
        try:
            members = sheet_members(path)
            wb = CalamineWorkbook.from_path(str(path))
        except BaseException as exc:
            if not _give_up(exc):
                raise
            reason = str(exc).replace(str(path), path.name)
            _log.debug("xlsx.openpyxl_fallback", file=path.name, reason=reason)
        else:
            try:
                book = CalamineBook(path, wb, members)
            except KeyError:
                wb.close()
    if book is None:
        with open_openpyxl(path) as owb:
            yield owb
        return
    try:
        yield book
    finally:
        book.close()


def iter_rows(ws: Any, file: str) -> Iterator[tuple[object, ...]]:
    """Rows of a sheet as value tuples, from row 1 to the sheet's real last row (a missing
    row is an empty tuple); a damaged or oversized sheet becomes an InputError."""
    if not isinstance(ws, CalamineSheet):
        yield from openpyxl_rows(ws, file)
        return
    rows = ws.parent.rows_of(ws)
    if rows is None:
        yield from openpyxl_rows(ws.parent.openpyxl_sheet(ws.title), file)
    else:
        yield from rows
