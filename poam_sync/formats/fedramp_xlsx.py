"""FedRAMP POA&M workbook (Appendix O) v2.0, v2.1 and v3.0: reading (writing: fedramp_write).

Reading: the Open, Closed and Configuration Findings tabs; the header row is found by name
(``POAM ID`` and ``Weakness Name``) in the first rows, wherever it starts (row 5 column A in
v2.x, row 5 column B on the v3.0 Open tab, row 2 on v3.0's other tabs). Template rows under
the header (guidance, formats, the ``V-1Example`` example, mandatory flags) are skipped.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from poam_sync.errors import InputError, Problem
from poam_sync.formats import _fedramp_columns as cols
from poam_sync.formats._common import (
    HeaderMap,
    fold,
    problem,
    row_is_empty,
    text_of,
)
from poam_sync.formats._xlsx_cells import iter_rows, open_workbook
from poam_sync.model import PoamItem

FORMAT = "fedramp-xlsx"
OPEN_SHEET = "Open POA&M Items"
CLOSED_SHEET = "Closed POA&M Items"
HEADER_SEARCH_ROWS = 20

_log = structlog.get_logger(__name__)

_TEMPLATE_LABELS = frozenset({"guidance", "examples", "example", "mandatory or situational"})
_TEMPLATE_IDS = ("unique identifier", "assign a unique identifier")
_EXAMPLE_ID = re.compile(r"(?:v-?\d+)?example")  # the templates' "V-1Example" row
_FLAG_WORDS = frozenset({"mandatory", "situational"})
_SYSTEM_LABELS = frozenset({"system name", "cloud service offering"})
_PLACEHOLDERS = frozenset({"text", "date", "low"})


def is_poam_sheet(title: str) -> bool:
    t = fold(title)
    return "poa&m items" in t or "poam items" in t or "configuration findings" in t


def _is_template_row(hm: HeaderMap, row: Sequence[object], offset: int) -> bool:
    """Guidance / format / example / mandatory-flag rows that sit under the template header."""
    label_cols = range(hm.first_index())
    for i in label_cols:
        if i < len(row) and row[i] is not None and fold(row[i]) in _TEMPLATE_LABELS:
            return True
    poam_id = text_of(hm.get(row, cols.POAM_ID))
    if poam_id and _EXAMPLE_ID.fullmatch(fold(poam_id)):
        return True
    if offset <= 4:
        if poam_id and fold(poam_id).startswith(_TEMPLATE_IDS):
            return True
        words = {fold(v) for v in row if v is not None and str(v).strip()}
        if words and words <= _FLAG_WORDS:
            return True
    return False


def _system_from_banner(rows: Sequence[Sequence[object]]) -> str | None:
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None or fold(value) not in _SYSTEM_LABELS:
                continue
            for below in rows[r + 1 :]:
                if any(
                    below[i] is not None and fold(below[i]) in _TEMPLATE_LABELS
                    for i in range(min(c, len(below)))
                ):
                    continue
                text = text_of(below[c]) if c < len(below) else None
                if text and fold(text) not in _PLACEHOLDERS:
                    return text
    return None


def read(
    path: Path,
    *,
    system: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[PoamItem], list[Problem], str | None]:
    """Items, problems and the system name the workbook gives (or None)."""
    with open_workbook(path) as wb:
        return read_workbook(wb, path.name, system, progress)


def read_workbook(
    wb: Any,
    file: str,
    system: str | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[PoamItem], list[Problem], str | None]:
    sheets = [ws for ws in wb.worksheets if is_poam_sheet(ws.title)] or list(wb.worksheets)
    total = sum((ws.max_row or 0) for ws in sheets)
    items: list[PoamItem] = []
    problems: list[Problem] = []
    seen: dict[str, tuple[str, int]] = {}
    file_system: str | None = None
    headerless: list[str] = []
    done = 0
    for ws in sheets:
        rows = iter_rows(ws, file)
        head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
        header_at = next(
            (i for i, r in enumerate(head) if cols.is_fedramp_header(HeaderMap.from_row(r))), None
        )
        if header_at is None:
            headerless.append(ws.title)
            continue
        hm = HeaderMap.from_row(head[header_at])
        if file_system is None:
            file_system = _system_from_banner(head[:header_at])
        ctx = cols.RowContext(
            file=file,
            sheet=ws.title,
            format=FORMAT,
            # what the file says may come from a later sheet: items are fixed up at the end
            system=system or file_system or "",
            closed_tab="closed" in fold(ws.title),
        )
        data = itertools.chain(head[header_at + 1 :], rows)
        for rownum, row in enumerate(data, header_at + 2):
            done += 1
            if progress and done % 500 == 0:
                progress(done, max(total, done))
            if row_is_empty(row) or _is_template_row(hm, row, rownum - header_at - 1):
                continue
            result = cols.row_to_item(hm, row, rownum, ctx)
            if isinstance(result, list):
                problems.extend(result)
                continue
            earlier = seen.get(result.poam_id)
            if earlier is not None:
                problems.append(
                    problem(
                        f"duplicate POAM ID {result.poam_id!r}: already used on sheet "
                        f"{earlier[0]!r} row {earlier[1]}; this row was not imported",
                        file=file,
                        sheet=ws.title,
                        row=rownum,
                        column=hm.name_of(cols.POAM_ID),
                        hint="give each POA&M item its own POAM ID, or delete the repeated row",
                        code="duplicate_id",
                    )
                )
                continue
            seen[result.poam_id] = (ws.title, rownum)
            items.append(result)
    if len(headerless) == len(sheets):
        raise InputError(
            Problem(
                "no FedRAMP POA&M header found (a row with 'POAM ID' and 'Weakness Name') "
                f"in the first {HEADER_SEARCH_ROWS} rows",
                file=file,
                sheet=headerless[0] if headerless else None,
                hint="use the FedRAMP POA&M template, or pass --format for another layout",
                code="no_header",
            )
        )
    for title in headerless:
        if is_poam_sheet(title):
            problems.append(
                problem(
                    "no FedRAMP POA&M header found on this sheet; it was skipped",
                    file=file,
                    sheet=title,
                    hint="restore the header row ('POAM ID', 'Weakness Name', ...)",
                    code="no_header",
                )
            )
    final_system = system or file_system or "default"
    items = [
        i if i.system == final_system else i.model_copy(update={"system": final_system})
        for i in items
    ]
    if progress:
        progress(done, done)
    _log.info("fedramp_xlsx.read", file=file, items=len(items), problems=len(problems))
    return items, problems, system or file_system
