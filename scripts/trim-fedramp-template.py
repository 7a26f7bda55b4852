"""Make the packaged FedRAMP v3.0 template from the official one (run it when FedRAMP publishes
a new template): ``python scripts/trim-fedramp-template.py OFFICIAL.xlsx OUT.xlsx``.

The official workbook pre-formats 4,000 empty rows on its Open tab (each with the Scheduled
Completion Date formula) and 1,000 on each other tab: 280,000 styled cells that make every
export take seconds to load and save, and every import of an export seconds to read. The copy
keeps every sheet, every value (Instructions, labels, guidance, examples, mandatory flags,
Record of Changes), the drop-downs and the column widths, and of the empty rows only the first
of each tab: the style pattern the exporter copies onto the rows it writes. On the Open tab it
also keeps row 10, the first row with the formula, which the exporter copies onto rows without
a scheduled date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import openpyxl


def last_value_row(ws: openpyxl.worksheet.worksheet.Worksheet) -> int:
    rows = [
        c.row
        for row in ws.iter_rows()
        for c in row
        if c.value is not None and not (isinstance(c.value, str) and c.value.startswith("="))
    ]
    return max(rows, default=0)


def trim(official: Path, out: Path) -> None:
    wb = openpyxl.load_workbook(official)
    for ws in wb.worksheets:
        keep = last_value_row(ws) + 1  # one empty, styled row: the pattern
        if ws.title == "Open POA&M Items":
            keep += 1  # and the first formula row
        if ws.max_row > keep:
            ws.delete_rows(keep + 1, ws.max_row - keep)
    wb.save(out)


if __name__ == "__main__":
    trim(Path(sys.argv[1]), Path(sys.argv[2]))
