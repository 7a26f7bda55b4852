"""Opening workbooks safely, and the openpyxl reader (read-only), with errors that say what to do.

The readers go through ``_xlsx_cells``, which reads cells with python-calamine and comes here
for the archive check and for the sheets calamine cannot read exactly. Before anything is
inflated, the zip's central directory is checked: entry count, total uncompressed size,
compression ratio and member names (a zip bomb or a path-traversal name is refused in
milliseconds). Rows are read to the sheet's real end, whatever its ``<dimension>`` record says,
up to Excel's own row limit. A formula without a cached value, an Excel error value and a date
serial outside Excel's calendar come back as :class:`Unreadable` cells, so a reader can tell
them from blank cells.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import openpyxl
from defusedxml import DefusedXmlException
from openpyxl.worksheet._reader import FORMULA_TAG, VALUE_TAG, WorkSheetParser

from poam_sync.errors import InputError, Problem
from poam_sync.formats._common import EXCEL_MAX_SERIAL, Unreadable, check_memory

# Limits on what a workbook may inflate to (docs/formats.md, "Limits").
MAX_MEMBERS = 10_000
MAX_UNCOMPRESSED = 1024 * 1024 * 1024  # 1 GiB in all
MAX_RATIO = 250  # for members of more than RATIO_FLOOR bytes; real sheets compress 5-20x
RATIO_FLOOR = 4 * 1024 * 1024
MAX_ROWS = 1_048_576  # Excel's own limit of rows per sheet
MAX_COLUMNS = 16_384  # column XFD
MEMORY_CHECK_ROWS = 5_000  # rows between two looks at the process's memory

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_RESAVE = "open it in Excel, save it again as .xlsx, and import the new file"


def _refused(path: Path, message: str, hint: str = _RESAVE, code: str = "bad_xlsx") -> InputError:
    return InputError(Problem(message, file=path.name, hint=hint, code=code))


def check_archive(path: Path) -> None:
    """Refuse a zip that is not an ordinary workbook, before anything is inflated."""
    with path.open("rb") as fh:
        start = fh.read(8)
    if start == _OLE_MAGIC:
        raise _refused(
            path,
            "the workbook is password-protected (encrypted) or in the old .xls format; "
            "neither can be read",
            hint="remove the password (File > Info > Protect Workbook) or save it as .xlsx, "
            "then import the new file",
            code="encrypted_xlsx",
        )
    if not zipfile.is_zipfile(path):
        raise _refused(
            path,
            "not an Excel workbook (.xlsx/.xlsm): the file is not a zip archive, or it is "
            "truncated",
            hint="save the POA&M as an Excel workbook (.xlsx) and import it again",
            code="not_xlsx",
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refused(path, f"the workbook's zip directory is damaged: {exc}") from exc
    if len(infos) > MAX_MEMBERS:
        raise _refused(path, f"the workbook holds {len(infos)} zip entries (at most {MAX_MEMBERS})")
    total = 0
    for info in infos:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or ":" in info.filename:
            raise _refused(
                path, f"the workbook holds a zip entry with an unsafe name: {info.filename!r}"
            )
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise _refused(
                path,
                f"the workbook looks like a zip bomb: {info.filename} would inflate "
                f"{ratio:.0f} times, to {info.file_size:,} bytes (at most {MAX_RATIO} times)",
                code="zip_bomb",
            )
    if total > MAX_UNCOMPRESSED:
        raise _refused(
            path,
            f"the workbook would inflate to {total:,} bytes (at most {MAX_UNCOMPRESSED:,})",
            hint="split the POA&M into smaller workbooks",
            code="zip_bomb",
        )


def _cause(exc: BaseException) -> str:
    inner: BaseException | None = exc
    while inner is not None and not isinstance(inner, DefusedXmlException):
        inner = inner.__cause__ or inner.__context__
    if inner is not None or "DTD" in str(exc) or "entit" in str(exc).lower():
        return (
            "it holds XML with a DTD, entity declarations or external references, which are "
            f"refused (an XML bomb or XXE attack looks like this): {exc}"
        )
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def open_openpyxl(path: Path) -> Iterator[Any]:
    """The workbook opened by openpyxl in read-only, values-only mode, closed (file included)
    on exit.

    openpyxl parses workbook XML with defusedxml when that is installed, which poam-sync
    requires: a DOCTYPE with entities is refused.
    """
    check_archive(path)
    check_memory(path.name)
    # We open the file ourselves: openpyxl leaves its own handle open when loading fails.
    with path.open("rb") as fh:
        try:
            wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        # openpyxl raises many types on a damaged workbook (KeyError, BadZipFile, XML errors)
        except Exception as exc:
            detail = _cause(exc).replace(str(path), path.name)
            raise _refused(path, f"the workbook cannot be read: {detail}") from exc
        try:
            yield wb
        finally:
            wb.close()


def _clip(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def formula_cell(formula: str) -> Unreadable:
    """A formula cell without a cached value (``formula`` without its ``=``)."""
    text = "=" + formula
    return Unreadable(
        text,
        f"the cell holds a formula without a cached value ({_clip(text)}): the tool "
        "that saved the file did not calculate it",
    )


def error_cell(value: str) -> Unreadable:
    """A cell holding an Excel error value such as ``#REF!``."""
    return Unreadable(value, f"the cell holds the Excel error value {value}")


class _Parser(WorkSheetParser):  # type: ignore[misc]
    """openpyxl's sheet parser, telling unusable cells from blank ones."""

    def parse_cell(self, element: Any) -> dict[str, Any]:
        data_type = element.get("t", "n")
        raw = element.findtext(VALUE_TAG, None) or None
        formula = element.find(FORMULA_TAG)
        style = int(element.get("s", 0) or 0)
        serial_bad = None
        if raw is not None and data_type == "n" and style in self.date_formats:
            try:
                day = int(float(raw))
            except ValueError:
                day = 0
            if not 1 <= day <= EXCEL_MAX_SERIAL or day == 60:
                serial_bad = raw
                element.find(VALUE_TAG).text = None  # keep openpyxl from converting it
        cell: dict[str, Any] = super().parse_cell(element)
        if serial_bad is not None:
            why = (
                "serial 60 is 1900-02-29, a day Excel shows but that does not exist"
                if int(float(serial_bad)) == 60
                else f"the date serial {serial_bad} is outside Excel's calendar "
                f"(1 = 1900-01-01 to {EXCEL_MAX_SERIAL} = 9999-12-31)"
            )
            cell["value"] = Unreadable(serial_bad, why)
        elif formula is not None and raw is None and cell["value"] is None:
            cell["value"] = formula_cell(formula.text or "")
        elif cell["data_type"] == "e" and isinstance(cell["value"], str):
            cell["value"] = error_cell(cell["value"])
        return cell


def openpyxl_rows(ws: Any, file: str) -> Iterator[tuple[object, ...]]:
    """Rows of an openpyxl read-only sheet as value tuples, from row 1 to the sheet's real last
    row (a missing row is an empty tuple); a damaged or oversized sheet becomes an InputError."""

    def damaged(message: str, code: str = "bad_xlsx", hint: str = _RESAVE) -> InputError:
        return InputError(Problem(message, file=file, sheet=ws.title, hint=hint, code=code))

    wb = ws.parent
    expected = 1
    try:
        with ws._get_source() as src:
            parser = _Parser(
                src,
                ws._shared_strings,
                data_only=True,
                epoch=wb.epoch,
                date_formats=wb._date_formats,
                timedelta_formats=wb._timedelta_formats,
            )
            for idx, cells in parser.parse():
                if idx > MAX_ROWS:
                    raise damaged(
                        f"the sheet has a row {idx:,}, past Excel's limit of {MAX_ROWS:,} rows",
                        code="too_many_rows",
                        hint="split the POA&M into smaller sheets or workbooks",
                    )
                while expected < idx:
                    expected += 1
                    yield ()
                if idx < expected:
                    continue  # a repeated row number: openpyxl keeps the first
                expected += 1
                if idx % MEMORY_CHECK_ROWS == 0:
                    check_memory(file, ws.title)
                width = max((c["column"] for c in cells), default=0)
                if width > MAX_COLUMNS:
                    raise damaged(f"row {idx} has a cell past column XFD (column {width:,})")
                values: list[object] = [None] * width
                for c in cells:
                    if c["column"] >= 1:
                        values[c["column"] - 1] = c["value"]
                yield tuple(values)
    except InputError:
        raise
    except Exception as exc:  # same reason as in open_openpyxl
        raise damaged(f"the sheet cannot be read: {_cause(exc)}") from exc
