"""Writing the FedRAMP POA&M v3.0 workbook onto the official template kept in the package.

The template (``poam_sync/data/FedRAMP-POAM-Template_v3.0_2025-11-17.xlsx``, see SOURCES.md
there) keeps everything it has: the Instructions, Configuration Findings, PL-2 Findings and
Record of Changes tabs, the guidance, example and mandatory-flag rows 6-8 of the Open tab, its
drop-downs and the Scheduled Completion Date formula of the rows left empty.

- Header fields: B4:E4 of the Open tab, under the labels of row 2 and the guidance of row 3:
  Cloud Service Provider, Cloud Service Offering (the system), Impact Level, POA&M Date (today
  unless given).
- Open items from row 9 of "Open POA&M Items" (header row 5 from column B); closed items from
  row 3 of "Closed POA&M Items" (header row 2 from column A); open items read from a
  Configuration Findings tab go back to it (header row 2, data from row 3).
- Columns the template lacks (Planned Milestones, Milestone Changes, a Status column when the
  tabs cannot say it, ``extra`` columns) are added right of its last column, so nothing is lost.
- Dates are real Excel dates; text is neutralized against formula injection. Each cell
  written takes the template's style for its column; a row without a scheduled date, and 100
  spare rows below the Open tab's items, get the template's Scheduled Completion Date formula.

The packaged copy is the official template without its 4,000 pre-formatted empty rows (made
by ``scripts/trim-fedramp-template.py``; see SOURCES.md): they made each export take seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from datetime import date
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import openpyxl
import structlog
from openpyxl.formula.translate import Translator
from openpyxl.styles import Alignment

from poam_sync.formats import _fedramp_columns as cols
from poam_sync.formats._common import fold
from poam_sync.formats._header import ExportHeader
from poam_sync.formats._xlsx_write import cell_value
from poam_sync.model import PoamItem

TEMPLATE_NAME = "FedRAMP-POAM-Template_v3.0_2025-11-17.xlsx"
OPEN_SHEET = "Open POA&M Items"
CLOSED_SHEET = "Closed POA&M Items"
CONFIG_SHEET = "Configuration Findings"
HEADER_VALUES_ROW = 4  # B4:E4, below the labels (row 2) and their guidance (row 3)
SCHEDULED = "Scheduled Completion Date"
SPARE_ROWS = 100

_log = structlog.get_logger(__name__)


class _Tab:
    """One tab of the template: where its header is, where data goes, which column is which,
    and the styled empty row (and on the Open tab the formula) each written row copies."""

    def __init__(self, ws: Any, header_row: int, first_data_row: int) -> None:
        self.ws = ws
        self.header_row = header_row
        self.next_row = first_data_row
        self.columns: dict[str, int] = {}
        for cell in ws[header_row]:
            if cell.value is not None and str(cell.value).strip():
                self.columns.setdefault(fold(cell.value), cell.column)
        self.last_column = max(self.columns.values())
        self.styles = [copy(ws.cell(first_data_row, c)._style) for c in range(1, ws.max_column + 1)]
        self.formula: tuple[int, str, str] | None = None
        scheduled = self.columns.get(fold(SCHEDULED))
        if scheduled is not None:
            for r in range(first_data_row, ws.max_row + 1):
                cell = ws.cell(r, scheduled)
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    self.formula = (scheduled, cell.value, cell.coordinate)
                    cell.value = None  # written again on the rows that need it
                    break

    def column(self, header: str) -> int:
        """The column of ``header`` (the other tabs' "Overall Remediation Plan" for the Open
        tab's "Remediation Plan"), added right of the last one when the template lacks it."""
        for name in cols.REMEDIATION_PLAN if header in cols.REMEDIATION_PLAN else (header,):
            found = self.columns.get(fold(name))
            if found is not None:
                return found
        self.last_column += 1
        self.ws.cell(self.header_row, self.last_column, cell_value(header))
        self.columns[fold(header)] = self.last_column
        return self.last_column

    def _rule(self, r: int) -> None:
        """The template's Scheduled Completion Date formula on row ``r``."""
        if self.formula is not None:
            c, text, origin = self.formula
            target = self._styled(r, c)
            target.value = Translator(text, origin=origin).translate_formula(target.coordinate)

    def _styled(self, r: int, c: int) -> Any:
        """Cell (r, c) in the template's style for its column (only cells that get a value:
        styling every empty cell makes the workbook slower to read)."""
        cell = self.ws.cell(r, c)
        if c <= len(self.styles):
            cell._style = copy(self.styles[c - 1])
        return cell

    def append(self, values: dict[str, object], wrap: Alignment) -> None:
        r = self.next_row
        for header, value in values.items():
            c = self.column(header)
            if value is None:
                if fold(header) == fold(SCHEDULED):
                    self._rule(r)  # the template computes it from the rule
                continue
            cell = self._styled(r, c)
            cell.value = cell_value(value)
            if isinstance(value, date):
                cell.number_format = "mm/dd/yyyy"
            elif isinstance(value, str) and "\n" in value:
                cell.alignment = wrap
        self.next_row += 1

    def spare_rows(self, count: int) -> None:
        """Rows with the formula below the data, for items added by hand."""
        for r in range(self.next_row, self.next_row + count):
            self._rule(r)


def _header_values(ws: Any, header: ExportHeader, today: date) -> None:
    for col, value in (
        (2, header.csp),
        (3, header.system_name),
        (4, header.impact_level),
        (5, header.poam_date or today),
    ):
        if value is None:
            continue
        cell = ws.cell(HEADER_VALUES_ROW, col, cell_value(value))
        if isinstance(value, date):
            cell.number_format = "mm/dd/yyyy"


def _tab_for(item: PoamItem, tabs: dict[str, _Tab]) -> _Tab:
    if item.status.is_closed:
        return tabs[CLOSED_SHEET]
    sheet = item.provenance.sheet if item.provenance else None
    if sheet and fold(sheet) == fold(CONFIG_SHEET):
        return tabs[CONFIG_SHEET]
    return tabs[OPEN_SHEET]


def write(
    items: Sequence[PoamItem],
    path: Path,
    *,
    header: ExportHeader | None = None,
    today: date | None = None,
) -> None:
    """Write ``items`` onto a copy of the official FedRAMP v3.0 template at ``path``."""
    header = (header or ExportHeader()).for_items(items)
    headers, with_status = cols.export_headers(items)
    if not with_status and cols.STATUS in headers:
        headers.remove(cols.STATUS)
    with as_file(files("poam_sync") / "data" / TEMPLATE_NAME) as template:
        wb = openpyxl.load_workbook(template)
    tabs = {
        OPEN_SHEET: _Tab(wb[OPEN_SHEET], header_row=5, first_data_row=9),
        CLOSED_SHEET: _Tab(wb[CLOSED_SHEET], header_row=2, first_data_row=3),
        CONFIG_SHEET: _Tab(wb[CONFIG_SHEET], header_row=2, first_data_row=3),
    }
    _header_values(wb[OPEN_SHEET], header, today or date.today())
    wrap = Alignment(wrap_text=True, vertical="top")
    for item in items:
        cells = cols.item_to_cells(item)
        values = {h: cells[h] if h in cells else cols.extra_cell(item, h) for h in headers}
        _tab_for(item, tabs).append(values, wrap)
    tabs[OPEN_SHEET].spare_rows(SPARE_ROWS)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    _log.info("fedramp_xlsx.write", file=path.name, items=len(items))
