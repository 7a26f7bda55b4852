"""CSV with the FedRAMP POA&M header (v3.0 columns, as the FedRAMP CSV flattenings use).

CSV has no Open/Closed tabs, so the export adds a ``Status`` column (canonical status words);
on import that column is optional (a file without it holds open items).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import structlog

from poam_sync.errors import InputError, Problem
from poam_sync.formats import _fedramp_columns as cols
from poam_sync.formats._common import (
    HeaderMap,
    check_memory,
    neutralize,
    problem,
    row_is_empty,
)
from poam_sync.model import PoamItem

FORMAT = "csv"
HEADER_SEARCH_ROWS = 20

_log = structlog.get_logger(__name__)


# A quoted field may hold line breaks, but one that runs on for this many lines is an
# unterminated quote swallowing the rows after it (docs/formats.md, "Limits").
MAX_FIELD_LINES = 200
MAX_CELL_CHARS = 131_072  # the csv module's own field limit


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)  # Excel's "Unicode Text" and some exports
    else:
        encodings = ("utf-8-sig", "cp1252")
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(
        Problem(
            "the CSV is neither UTF-8, UTF-16 (with a byte order mark) nor Windows-1252 text",
            file=path.name,
            hint="save it as CSV UTF-8",
            code="bad_csv",
        )
    )


def _bad_csv(file: str, message: str, line: int | None, hint: str) -> InputError:
    return InputError(Problem(message, file=file, row=line, hint=hint, code="bad_csv"))


def _records(text: str, file: str) -> list[tuple[int, list[str]]]:
    """(first line, fields) of each record; quoting errors name the line the quote opened."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out: list[tuple[int, list[str]]] = []
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return out
        except csv.Error as exc:
            if "end of data" in str(exc):
                raise _bad_csv(
                    file,
                    f"a quoted field opened on line {line} is never closed: the quote swallows "
                    "every row after it",
                    line,
                    'close the quote (or double a quote inside the text, ""), then import again',
                ) from exc
            raise _bad_csv(
                file,
                f"the CSV cannot be parsed at line {line}: {exc}",
                line,
                f"fix the quoting on that line (a cell holds at most {MAX_CELL_CHARS:,} "
                "characters)",
            ) from exc
        if reader.line_num - line >= MAX_FIELD_LINES:
            raise _bad_csv(
                file,
                f"a quoted field opened on line {line} runs on for {reader.line_num - line + 1} "
                f"lines (at most {MAX_FIELD_LINES}): a quote is probably not closed",
                line,
                "close the quote where the cell should end, then import again",
            )
        out.append((line, row))
        line = reader.line_num + 1


def read(
    path: Path,
    *,
    system: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[PoamItem], list[Problem], str | None]:
    file = path.name
    text = _read_text(path)
    if "\x00" in text:
        raise InputError(
            Problem(
                "not a CSV text file (it contains NUL bytes)",
                file=file,
                hint="export the POA&M as CSV, or import the workbook itself",
                code="bad_csv",
            )
        )
    records = _records(text, file)
    check_memory(file)
    rows = [r for _, r in records]
    header_at = next(
        (
            i
            for i, r in enumerate(rows[:HEADER_SEARCH_ROWS])
            if cols.is_fedramp_header(HeaderMap.from_row(r))
        ),
        None,
    )
    if header_at is None:
        raise InputError(
            Problem(
                "no FedRAMP POA&M header found (a row with 'POAM ID' and 'Weakness Name') "
                f"in the first {HEADER_SEARCH_ROWS} rows",
                file=file,
                hint="put the FedRAMP column names in the first row",
                code="no_header",
            )
        )
    hm = HeaderMap.from_row(rows[header_at])
    if system is None and hm.has(cols.SYSTEM):
        system = _file_system(hm, rows[header_at + 1 :], file)
    final_system = system or "default"
    ctx = cols.RowContext(
        file=file, sheet=None, format=FORMAT, system=final_system, closed_tab=False
    )
    items: list[PoamItem] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    data = rows[header_at + 1 :]
    for n, row in enumerate(data):
        rownum = records[header_at + 1 + n][0]
        if progress and n % 500 == 0:
            progress(n, len(data))
        cells: list[object] = [c if c.strip() else None for c in row]
        if row_is_empty(cells):
            continue
        result = cols.row_to_item(hm, cells, rownum, ctx)
        if isinstance(result, list):
            problems.extend(result)
            continue
        if result.poam_id in seen:
            problems.append(
                problem(
                    f"duplicate POAM ID {result.poam_id!r}: already used on row "
                    f"{seen[result.poam_id]}; this row was not imported",
                    file=file,
                    row=rownum,
                    column=hm.name_of(cols.POAM_ID),
                    hint="give each POA&M item its own POAM ID, or delete the repeated row",
                    code="duplicate_id",
                )
            )
            continue
        seen[result.poam_id] = rownum
        items.append(result)
    if progress:
        progress(len(data), len(data))
    _log.info("csv.read", file=file, items=len(items), problems=len(problems))
    return items, problems, system


def _file_system(hm: HeaderMap, rows: Sequence[Sequence[str]], file: str) -> str | None:
    """The one system the file's ``System`` column names (our export writes it), so that a
    CSV round trip lands where it came from; a file of several systems is refused whole."""
    named = {str(v).strip() for row in rows if (v := hm.get(row, cols.SYSTEM)) and str(v).strip()}
    if len(named) > 1:
        shown = ", ".join(repr(n) for n in sorted(named)[:5])
        raise InputError(
            Problem(
                f"the System column names more than one system ({shown}); an import goes "
                "into one system",
                file=file,
                column=hm.name_of(cols.SYSTEM),
                hint="export one system at a time, or import with --system NAME",
                code="several_systems",
            )
        )
    return next(iter(named), None)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return neutralize(str(value))


def write(items: Sequence[PoamItem], path: Path) -> None:
    headers, _ = cols.export_headers(items)
    if cols.STATUS not in headers:
        headers.append(cols.STATUS)
    if cols.SYSTEM not in headers:  # read back by the import: a round trip keeps the system
        headers.append(cols.SYSTEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for item in items:
            cells = {**cols.item_to_cells(item), cols.SYSTEM: item.system}
            writer.writerow(
                [_text(cells[h] if h in cells else cols.extra_cell(item, h)) for h in headers]
            )
    _log.info("csv.write", file=path.name, items=len(items))
