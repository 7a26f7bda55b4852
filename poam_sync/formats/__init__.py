"""POA&M files in and out: FedRAMP xlsx, eMASS xlsx, OSCAL JSON/XML, CSV.

``read`` gives items and the problems of bad rows (a bad row is left out, never half
imported); a file that cannot be read at all raises :class:`~poam_sync.errors.InputError`.
``write`` exports items. What is read from where is in docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poam_sync.errors import InputError, Problem, UsageError
from poam_sync.formats import (
    csv_format,
    emass_write,
    emass_xlsx,
    fedramp_write,
    fedramp_xlsx,
    oscal,
)
from poam_sync.formats._common import HeaderMap, fold
from poam_sync.formats._fedramp_columns import is_fedramp_header
from poam_sync.formats._header import ExportHeader
from poam_sync.formats._xlsx_cells import iter_rows, open_workbook
from poam_sync.model import PoamItem

READ_FORMATS = ("fedramp-xlsx", "emass-xlsx", "oscal", "csv")
WRITE_FORMATS = ("fedramp-xlsx", "emass-xlsx", "oscal-json", "oscal-xml", "csv")

__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "ExportHeader",
    "ReadResult",
    "detect_format",
    "read",
    "write",
]


@dataclass(frozen=True)
class ReadResult:
    items: tuple[PoamItem, ...]
    problems: tuple[Problem, ...]
    system: str | None
    format: str


def _missing(path: Path) -> InputError:
    return InputError(
        Problem(
            "the file does not exist or is not a regular file",
            file=path.name,
            hint="check the path",
            code="not_found",
        )
    )


def detect_format(path: Path) -> str:
    """``fedramp-xlsx``, ``emass-xlsx``, ``oscal`` or ``csv``, from the content (the header
    row of a workbook, the start of a text file) with the file name as a tie-breaker."""
    if not path.is_file():
        raise _missing(path)
    with path.open("rb") as fh:
        start = fh.read(512)
    suffix = path.suffix.lower()
    if start.startswith(b"PK") or suffix in {".xlsx", ".xlsm"}:
        return _detect_workbook(path)
    text = start.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"{", b"<")) or suffix in {".json", ".xml"}:
        return "oscal"
    if suffix == ".csv" or b"," in start:
        return "csv"
    raise InputError(
        Problem(
            "cannot tell the file's format (not a workbook, OSCAL JSON/XML or CSV)",
            file=path.name,
            hint="pass --format fedramp-xlsx, emass-xlsx, oscal or csv",
            code="unknown_format",
        )
    )


def _is_workbook(path: Path) -> bool:
    with path.open("rb") as fh:
        start = fh.read(4)
    return start.startswith(b"PK") or path.suffix.lower() in {".xlsx", ".xlsm"}


def _detect_workbook(path: Path) -> str:
    with open_workbook(path) as wb:
        return _detect_in_workbook(wb, path.name)


def _detect_in_workbook(wb: Any, file: str) -> str:
    for ws in wb.worksheets:
        if fold(ws.title) in {"instructions", "example", "record of changes"}:
            continue
        for n, row in enumerate(iter_rows(ws, file)):
            if n >= 20:
                break
            hm = HeaderMap.from_row(row)
            if emass_xlsx.is_emass_header(hm):
                return "emass-xlsx"
            if is_fedramp_header(hm):
                return "fedramp-xlsx"
    first = wb.worksheets[0].title if wb.worksheets else None
    raise InputError(
        Problem(
            "no FedRAMP ('POAM ID', 'Weakness Name') or eMASS ('POA&M Item ID', 'Control "
            "Vulnerability Description') header row found in the first 20 rows of any sheet",
            file=file,
            sheet=first,
            hint="use the FedRAMP or eMASS POA&M template layout",
            code="no_header",
        )
    )


def read(
    path: Path,
    *,
    format: str = "auto",
    system: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReadResult:
    """Read a POA&M file. ``system``: this argument, else what the file says, else None (the
    items then carry ``default``). ``progress(done, total)`` is called now and then."""
    if format != "auto" and format not in READ_FORMATS:
        raise UsageError(
            f"unknown input format {format!r}",
            hint="use auto, " + ", ".join(READ_FORMATS),
        )
    if not path.is_file():
        raise _missing(path)
    if format in {"auto", "fedramp-xlsx", "emass-xlsx"} and _is_workbook(path):
        # open the workbook once for detection and reading (a workbook without a dimension
        # record is parsed in full when it is opened)
        with open_workbook(path) as wb:
            fmt = _detect_in_workbook(wb, path.name) if format == "auto" else format
            read_wb = (
                fedramp_xlsx.read_workbook if fmt == "fedramp-xlsx" else emass_xlsx.read_workbook
            )
            items, problems, file_system = read_wb(wb, path.name, system, progress)
        return ReadResult(
            items=tuple(items), problems=tuple(problems), system=file_system, format=fmt
        )
    fmt = detect_format(path) if format == "auto" else format
    reader = {
        "fedramp-xlsx": fedramp_xlsx.read,
        "emass-xlsx": emass_xlsx.read,
        "oscal": oscal.read,
        "csv": csv_format.read,
    }[fmt]
    items, problems, file_system = reader(path, system=system, progress=progress)
    return ReadResult(items=tuple(items), problems=tuple(problems), system=file_system, format=fmt)


def write(
    items: Sequence[PoamItem],
    path: Path,
    *,
    format: str,
    system_name: str | None = None,
    header: ExportHeader | None = None,
) -> None:
    """Export ``items`` as ``fedramp-xlsx`` (v3.0), ``emass-xlsx`` (classic RMF import
    template), ``oscal-json`` or ``oscal-xml`` (OSCAL 1.1.2, one document) or ``csv``.
    ``header``: what the workbook says about itself (provider, system, impact level, date);
    ``system_name`` fills its system."""
    header = header or ExportHeader()
    if system_name and not header.system_name:
        header = header.model_copy(update={"system_name": system_name})
    system_name = header.system_name
    if format == "fedramp-xlsx":
        fedramp_write.write(items, path, header=header)
    elif format == "emass-xlsx":
        emass_write.write(items, path, header=header)
    elif format in {"oscal-json", "oscal"}:
        oscal.write(items, path, system_name=system_name)
    elif format == "oscal-xml":
        oscal.write(items, path, system_name=system_name, xml=True)
    elif format == "csv":
        csv_format.write(items, path)
    else:
        raise UsageError(
            f"unknown export format {format!r}", hint="use " + ", ".join(WRITE_FORMATS)
        )
