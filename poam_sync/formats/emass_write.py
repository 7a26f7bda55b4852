"""Writing the eMASS POA&M import workbook in the layout of the classic RMF template.

The layout is the template's (the MITRE SAF copy of the DoD eMASS "RMF Standard" POA&M
template, whose Instructions sheet gives the rules quoted here): a banner in rows 1-6 (labels
in column A, values from column D), the header in row 7 from column B (B..V, spelled as the
template spells them, a trailing space in "Source Identifying Vulnerability " and a leading
one in " Raw Severity" included), data from row 8.

- One row per milestone: "If a POA&M Item has multiple milestones, each milestone must be
  entered in separate rows within the Milestone w/Completion Date field", and likewise each
  milestone change "in separate rows within the Milestone Changes field". The item's cells are
  on its first row only; the following rows hold only those two cells.
- "Dates in the Status (for Completed ...), Milestones w/Completion Dates, and Milestone
  Changes field must be entered after text": ``Completed 11/13/2018``,
  ``Implement Procedure A 10/25/2018``.
- "Office/Org: enter Organization, First Name Last Name, Phone Number, Email", comma separated.
- "Do not ... add additional columns": columns of other formats are not written; the
  template's own unmodelled columns (Mitigations, Likelihood, ...) come from ``extra``.

What the layout cannot hold (the item's title apart from its description, assets, milestone
states, change kinds) is listed in docs/formats.md, "eMASS export".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import structlog
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from poam_sync.formats import emass_xlsx as e
from poam_sync.formats._common import fold, parse_office_org
from poam_sync.formats._header import ExportHeader
from poam_sync.formats._xlsx_write import cell_value
from poam_sync.model import (
    Milestone,
    MilestoneChange,
    PoamItem,
    RiskLevel,
    Status,
)

SHEET = "POA&M"
HEADER_ROW = 7
FIRST_COLUMN = 2  # B
# The classic template's header row, B..V, exactly as the template writes it.
HEADERS: tuple[str, ...] = (
    e.ITEM_ID,
    e.DESCRIPTION,
    e.CONTROLS[0],
    e.OFFICE,
    e.CHECKS,
    e.RESOURCES,
    e.SCHEDULED[0],
    e.MILESTONE_TEXT,
    e.MILESTONE_CHANGES,
    e.SOURCE[0] + " ",
    e.STATUS[0],
    e.COMMENTS,
    " " + e.RAW_SEVERITY,
    "Mitigations",
    e.SEVERITY,
    "Relevance of Threat",
    "Likelihood",
    "Impact",
    "Impact Description",
    e.RESIDUAL,
    e.RECOMMENDATIONS,
)
# Required by the template's Instructions (item 19) for Ongoing items; Comments also for
# Completed and Risk Accepted ones. Milestones are what the POA&M is for.
MANDATORY: tuple[str, ...] = (
    e.ITEM_ID,
    e.DESCRIPTION,
    e.OFFICE,
    e.SCHEDULED[0],
    e.MILESTONE_TEXT,
    e.SOURCE[0],
    e.STATUS[0],
    e.COMMENTS,
)
CLASSIFICATION = "UNCLASSIFIED"

_STATUS_WORD = {
    Status.OPEN: "Ongoing",
    Status.INVESTIGATING: "Ongoing",
    Status.REMEDIATING: "Ongoing",
    Status.DEVIATION_REQUESTED: "Ongoing",
    Status.RISK_ACCEPTED: "Risk Accepted",
    Status.COMPLETED: "Completed",
    Status.FALSE_POSITIVE: "Not Applicable",
    Status.NOT_APPLICABLE: "Not Applicable",
    Status.ARCHIVED: "Archived",
}
# The template's rating words (Instructions item 17): Very Low, Low, Moderate, High, Very High.
_RATING_WORDS = frozenset({"very low", "low", "moderate", "high", "very high"})
_LEVEL_WORD = {
    RiskLevel.LOW: "Low",
    RiskLevel.MODERATE: "Moderate",
    RiskLevel.HIGH: "High",
    RiskLevel.CRITICAL: "Very High",
}

_log = structlog.get_logger(__name__)


def us_date(d: date) -> str:
    """``10/25/2018``: the template's date form inside text cells."""
    return f"{d.month}/{d.day}/{d.year}"


def status_text(item: PoamItem) -> str:
    word = _STATUS_WORD[item.status]
    if item.status is Status.COMPLETED and item.completed_on:
        return f"{word} {us_date(item.completed_on)}"
    return word


def rating(level: RiskLevel | None, label: str | None) -> str | None:
    """A Severity / Residual Risk Level word: the source's own word when it is one of the
    template's (``Very Low``), else the canonical level's (critical -> ``Very High``). A CAT
    label (from Raw Severity) is not a Severity word: Raw Severity keeps it."""
    if label and fold(label) in _RATING_WORDS:
        return label
    return _LEVEL_WORD[level] if level else None


def office_org(item: PoamItem) -> str | None:
    """``Org, First Last, Email``; the cell as imported (phone number included) when it still
    says the same person."""
    owner = item.owner
    if owner is None:
        return None
    verbatim = item.extra.get(e.OFFICE)
    if isinstance(verbatim, str) and parse_office_org(verbatim) == owner:
        return verbatim
    parts = [p for p in (owner.org, owner.name, owner.email) if p]
    return ", ".join(parts) or None


def milestone_text(m: Milestone) -> str:
    """One milestone on one line, its due date after the text."""
    text = " ".join(m.description.split()) or f"Milestone {m.id}"
    return f"{text} {us_date(m.due_date)}" if m.due_date else text


def change_text(c: MilestoneChange) -> str:
    text = " ".join(c.text.split())
    return f"{text} {us_date(c.on)}" if c.on else text


def _extra(item: PoamItem, header: str) -> object:
    key = fold(header)
    for name, value in item.extra.items():
        if fold(name) == key:
            return value if value is None or isinstance(value, str | int | float) else str(value)
    return None


def item_cells(item: PoamItem) -> dict[str, object]:
    """The item's first row, keyed by header with surrounding spaces removed."""
    cells: dict[str, object] = {
        e.ITEM_ID: item.poam_id,
        e.DESCRIPTION: item.description.strip() or item.title or None,
        e.CONTROLS[0]: "; ".join(item.controls) or None,
        e.OFFICE: office_org(item),
        e.CHECKS: item.source_identifier,
        e.RESOURCES: item.resources_required,
        e.SCHEDULED[0]: item.scheduled_completion_date or item.due_date,
        e.SOURCE[0]: item.detector_source,
        e.STATUS[0]: status_text(item),
        e.COMMENTS: item.comments,
        e.SEVERITY: rating(item.original_risk, item.original_risk_label),
        e.RESIDUAL: rating(item.adjusted_risk, item.adjusted_risk_label),
        e.RECOMMENDATIONS: item.remediation_plan,
    }
    for header in HEADERS:
        name = header.strip()
        if name not in cells:
            cells[name] = _extra(item, name)
    return cells


def item_rows(item: PoamItem) -> list[list[object]]:
    """The item's rows (B..V): its cells and first milestone, then one row per further
    milestone or milestone change."""
    cells = item_cells(item)
    milestones = [milestone_text(m) for m in item.milestones]
    changes = [change_text(c) for c in item.milestone_changes]
    rows: list[list[object]] = []
    for n in range(max(1, len(milestones), len(changes))):
        row: list[object] = [cells[h.strip()] if n == 0 else None for h in HEADERS]
        row[HEADERS.index(e.MILESTONE_TEXT)] = milestones[n] if n < len(milestones) else None
        row[HEADERS.index(e.MILESTONE_CHANGES)] = changes[n] if n < len(changes) else None
        rows.append(row)
    return rows


def _banner(ws: Any, header: ExportHeader, today: date) -> None:
    cell = ws.cell
    cell(1, 1, f"***** {CLASSIFICATION} *****").font = Font(bold=True)
    labels = {
        (2, 1): "Date Exported:",
        (2, 10): "System Type:",
        (2, 13): "OMB Project ID:",
        (3, 1): "Exported By:",
        (4, 1): "DoD Component:",
        (4, 10): "POC Name:",
        (5, 1): "System / Project Name:",
        (5, 10): "POC Phone:",
        (5, 13): "Security Costs:",
        (6, 1): "DoD IT Registration No:",
        (6, 10): "POC E-Mail:",
    }
    for (r, c), text in labels.items():
        cell(r, c, text).font = Font(bold=True)
    cell(2, 4, us_date(header.poam_date or today))
    cell(3, 4, "poam-sync")
    if header.system_name:
        cell(5, 4, cell_value(header.system_name))
    if header.csp:
        cell(4, 4, cell_value(header.csp))


def write(
    items: Sequence[PoamItem],
    path: Path,
    *,
    header: ExportHeader | None = None,
    today: date | None = None,
) -> None:
    """Write ``items`` as an eMASS POA&M import workbook (classic RMF layout)."""
    header = (header or ExportHeader()).for_items(items)
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    _banner(ws, header, today or date.today())
    for c, name in enumerate(HEADERS, FIRST_COLUMN):
        ws.cell(HEADER_ROW, c, name).font = Font(bold=True)
    r = HEADER_ROW + 1
    wrap = Alignment(wrap_text=True, vertical="top")
    scheduled_col = FIRST_COLUMN + HEADERS.index(e.SCHEDULED[0])
    for item in items:
        for row in item_rows(item):
            for c, value in enumerate(row, FIRST_COLUMN):
                if value is None:
                    continue
                cell = ws.cell(r, c, cell_value(value))
                cell.alignment = wrap
                if c == scheduled_col:
                    cell.number_format = "m/d/yyyy"
            r += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    _log.info("emass_xlsx.write", file=path.name, items=len(items), rows=r - HEADER_ROW - 1)


def missing_mandatory(item: PoamItem) -> list[str]:
    """Template-mandatory cells the item leaves empty (Comments only when Completed or Risk
    Accepted; milestones only when Ongoing)."""
    cells = item_cells(item)
    word = _STATUS_WORD[item.status]
    out = []
    for name in MANDATORY:
        if name == e.COMMENTS and word not in {"Completed", "Risk Accepted"}:
            continue
        if name == e.MILESTONE_TEXT:
            if word == "Ongoing" and not item.milestones:
                out.append(name)
            continue
        if name == e.SCHEDULED[0] and word != "Ongoing":
            continue
        if name == e.OFFICE and (item.owner is None or not item.owner.org):
            # "At a minimum, the Office/Org must be defined": a person alone is read back as
            # the organization
            out.append(name)
            continue
        if cells.get(name) in (None, ""):
            out.append(name)
    return out
