"""Writing cells safely: text a spreadsheet would run as a formula is quoted, and characters
XML 1.0 cannot hold are dropped (shared by the FedRAMP and eMASS writers)."""

from __future__ import annotations

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from poam_sync.formats._common import neutralize


def cell_value(value: object) -> object:
    """``value`` as it should be written into a cell (dates stay dates)."""
    if isinstance(value, str):
        # XML 1.0 cannot hold most control characters: drop them rather than fail the export;
        # XML parsers turn a carriage return into a line feed, so write line feeds
        text = ILLEGAL_CHARACTERS_RE.sub("", value).replace("\r\n", "\n").replace("\r", "\n")
        return neutralize(text)
    return value
