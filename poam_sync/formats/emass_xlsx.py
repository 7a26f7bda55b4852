"""DoD eMASS POA&M workbooks: the classic RMF import template and the 2026 layouts.

Both have an export banner in rows 1-6 and the header in row 7 (found by name here, wherever
it is). The classic template puts extra milestones on the following rows with only the
"Milestone with Completion Dates" cell filled; the 2026 Navy/Army layouts have milestone
columns of their own and one row per milestone. eMASS often leaves "POA&M Item ID" empty:
:func:`derived_poam_id` then gives a stable id (docs/formats.md, "eMASS ids").
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from poam_sync.errors import InputError, Problem
from poam_sync.formats._common import (
    CellError,
    HeaderMap,
    check_id,
    check_text,
    fold,
    parse_date,
    parse_milestone_changes,
    parse_office_org,
    parse_planned_milestones,
    parse_risk,
    problem,
    row_is_empty,
    split_list,
    text_of,
    unreadable_cells,
)
from poam_sync.formats._xlsx_cells import iter_rows, open_workbook
from poam_sync.model import (
    Milestone,
    MilestoneChange,
    MilestoneStatus,
    PoamItem,
    Provenance,
    Status,
)

FORMAT = "emass-xlsx"
HEADER_SEARCH_ROWS = 20

ITEM_ID = "POA&M Item ID"
DESCRIPTION = "Control Vulnerability Description"
CONTROLS = ("Security Control Number (NC/NA controls only)", "Controls / APs")
OFFICE = "Office/Org"
CHECKS = "Security Checks"
RESOURCES = "Resources Required"
SCHEDULED = ("Scheduled Completion Date", "POA&M Scheduled Completion Date")
MILESTONE_TEXT = "Milestone with Completion Dates"
MILESTONE_CHANGES = "Milestone Changes"
SOURCE = ("Source Identifying Vulnerability", "Identification Source")
STATUS = ("Status", "POA&M Status")
COMMENTS = "Comments"
RAW_SEVERITY = "Raw Severity"
SEVERITY = "Severity"
RESIDUAL = "Residual Risk Level"
COMPLETED = "POA&M Completion Date"
DEVICES = "Devices Affected"
RECOMMENDATIONS = "Recommendations"
M_ID = "Milestone ID"
M_DESCRIPTION = "Milestone Description"
M_STATUS = "Milestone Status"
M_COMMENTS = "Milestone Status Comments"
M_DUE = "Milestone Scheduled Completion Date"
M_DONE = "Milestone Completion Date"

MILESTONE_COLUMNS = (
    MILESTONE_TEXT,
    MILESTONE_CHANGES,
    M_ID,
    M_DESCRIPTION,
    M_STATUS,
    M_COMMENTS,
    M_DUE,
    M_DONE,
)
# Columns mapped to model fields; every other column goes verbatim into ``extra``. Office/Org
# and Raw Severity are also kept verbatim (phone numbers and CAT levels have no model field).
MAPPED = frozenset(
    fold(h)
    for h in (
        ITEM_ID,
        DESCRIPTION,
        *CONTROLS,
        CHECKS,
        RESOURCES,
        *SCHEDULED,
        *SOURCE,
        *STATUS,
        COMMENTS,
        SEVERITY,
        RESIDUAL,
        COMPLETED,
        DEVICES,
        RECOMMENDATIONS,
        *MILESTONE_COLUMNS,
    )
)

_STATUS_WORDS = {
    "ongoing": Status.OPEN,
    "open": Status.OPEN,
    "risk accepted": Status.RISK_ACCEPTED,
    "completed": Status.COMPLETED,
    "not applicable": Status.NOT_APPLICABLE,
    "archived": Status.ARCHIVED,
}
_STATUS_WITH_DATE = re.compile(r"^(.*?)\s+(\d{1,2}/\d{1,2}/\d{2,4}|\d{4}-\d{1,2}-\d{1,2})$")
_MILESTONE_STATUS = {
    "open": MilestoneStatus.OPEN,
    "not started": MilestoneStatus.OPEN,
    "pending": MilestoneStatus.OPEN,
    "in progress": MilestoneStatus.IN_PROGRESS,
    "ongoing": MilestoneStatus.IN_PROGRESS,
    "completed": MilestoneStatus.COMPLETED,
    "complete": MilestoneStatus.COMPLETED,
    "archived": MilestoneStatus.ARCHIVED,
}

_log = structlog.get_logger(__name__)


def is_emass_header(hm: HeaderMap) -> bool:
    return hm.has(ITEM_ID, DESCRIPTION)


def derived_poam_id(hm: HeaderMap, row: Sequence[object]) -> str:
    """A stable id for a row without POA&M Item ID: ``EMASS-`` and the first 10 hex digits
    (upper case) of SHA-256 over the row's identifying cells (description, controls, security
    checks, source), each as written with surrounding whitespace removed, joined by U+001F.
    Same content gives the same id on every import; dates, status and milestones may change
    without changing it."""
    parts = [
        text_of(hm.get(row, DESCRIPTION)) or "",
        text_of(hm.get(row, *CONTROLS)) or "",
        text_of(hm.get(row, CHECKS)) or "",
        text_of(hm.get(row, *SOURCE)) or "",
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"EMASS-{digest[:10].upper()}"


def parse_status(text: str | None) -> tuple[Status, str | None]:
    """eMASS status -> (status, date text). ``Completed 11/13/2018`` carries its date."""
    if not text:
        return Status.OPEN, None
    when = None
    found = _STATUS_WORDS.get(fold(text))
    if found is None:
        m = _STATUS_WITH_DATE.match(text.strip())
        if m:
            found, when = _STATUS_WORDS.get(fold(m[1])), m[2]
    if found is None:
        raise CellError(
            f"unknown status {text!r}",
            "use Ongoing, Risk Accepted, Completed, Not Applicable or Archived",
        )
    return found, when


def _system_from_banner(rows: Sequence[Sequence[object]]) -> str | None:
    for row in rows:
        for c, value in enumerate(row):
            if value is None or not fold(value).startswith("system / project name"):
                continue
            for later in row[c + 1 :]:
                text = text_of(later)
                if text and not text.endswith(":"):
                    return text
                if text:
                    break
    return None


@dataclass
class _Group:
    rownum: int
    row: Sequence[object]
    more: list[tuple[int, Sequence[object]]] = field(default_factory=list)


def read(
    path: Path,
    *,
    system: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[PoamItem], list[Problem], str | None]:
    with open_workbook(path) as wb:
        return read_workbook(wb, path.name, system, progress)


def read_workbook(
    wb: Any, file: str, system: str | None, progress: Callable[[int, int], None] | None
) -> tuple[list[PoamItem], list[Problem], str | None]:
    named = [ws for ws in wb.worksheets if fold(ws.title) in {"poa&m", "poam"}]
    candidates = named or list(wb.worksheets)
    for ws in candidates:
        rows = iter_rows(ws, file)
        head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
        header_at = next(
            (i for i, r in enumerate(head) if is_emass_header(HeaderMap.from_row(r))), None
        )
        if header_at is not None:
            break
    else:
        raise InputError(
            Problem(
                "no eMASS POA&M header found (a row with 'POA&M Item ID' and 'Control "
                f"Vulnerability Description') in the first {HEADER_SEARCH_ROWS} rows",
                file=file,
                sheet=candidates[0].title if candidates else None,
                hint="export the POA&M from eMASS again, or pass --format for another layout",
                code="no_header",
            )
        )
    hm = HeaderMap.from_row(head[header_at])
    file_system = _system_from_banner(head[:header_at])
    final_system = system or file_system or "default"
    problems: list[Problem] = []
    groups: list[_Group] = []
    total = ws.max_row or 0
    done = 0
    for rownum, row in enumerate(itertools.chain(head[header_at + 1 :], rows), header_at + 2):
        done += 1
        if progress and done % 500 == 0:
            progress(done, max(total, done))
        if row_is_empty(row):
            continue
        item_id = text_of(hm.get(row, ITEM_ID))
        has_item_cells = any(
            text_of(hm.get(row, h)) for h in (DESCRIPTION, *CONTROLS, CHECKS, *STATUS)
        )
        continues = groups and (
            (not item_id and not has_item_cells)
            or (item_id is not None and item_id == text_of(hm.get(groups[-1].row, ITEM_ID)))
        )
        if continues:
            groups[-1].more.append((rownum, row))
        elif not item_id and not has_item_cells:
            problems.append(
                problem(
                    "a milestone row comes before any POA&M item",
                    file=file,
                    sheet=ws.title,
                    row=rownum,
                    hint="put milestone rows under the row of their POA&M item",
                    code="orphan_row",
                )
            )
        else:
            groups.append(_Group(rownum, row))

    items: list[PoamItem] = []
    seen: dict[str, int] = {}
    derived_count: dict[str, int] = {}
    for g in groups:
        result = _group_to_item(hm, g, file, ws.title, final_system)
        if isinstance(result, list):
            problems.extend(result)
            continue
        explicit = text_of(hm.get(g.row, ITEM_ID)) is not None
        if not explicit:
            n = derived_count[result.poam_id] = derived_count.get(result.poam_id, 0) + 1
            if n > 1:
                result = result.model_copy(update={"poam_id": f"{result.poam_id}-{n}"})
        if result.poam_id in seen:
            problems.append(
                problem(
                    f"duplicate POA&M Item ID {result.poam_id!r}: already used on row "
                    f"{seen[result.poam_id]}; this row was not imported",
                    file=file,
                    sheet=ws.title,
                    row=g.rownum,
                    column=hm.name_of(ITEM_ID),
                    hint="give each POA&M item its own id, or delete the repeated row",
                    code="duplicate_id",
                )
            )
            continue
        seen[result.poam_id] = g.rownum
        items.append(result)
    if progress:
        progress(done, done)
    _log.info("emass_xlsx.read", file=file, items=len(items), problems=len(problems))
    return items, problems, system or file_system


def _group_to_item(
    hm: HeaderMap, g: _Group, file: str, sheet: str, system: str
) -> PoamItem | list[Problem]:
    problems: list[Problem] = []

    def fail(exc: CellError, rownum: int, *names: str) -> None:
        problems.append(
            problem(
                exc.message,
                file=file,
                sheet=sheet,
                row=rownum,
                column=hm.name_of(*names),
                hint=exc.hint,
            )
        )

    def parsed(fn: Callable[[Any], Any], row: Sequence[object], rownum: int, *names: str) -> Any:
        raw = hm.get(row, *names)
        try:
            return fn(raw if fn is parse_date else text_of(raw))
        except CellError as exc:
            fail(exc, rownum, *names)
            return None

    row, rownum = g.row, g.rownum

    def cell(*names: str) -> str | None:
        return text_of(hm.get(row, *names))

    for mrownum, mrow in [(rownum, row), *g.more]:
        for column, value in unreadable_cells(hm, mrow, MAPPED):
            fail(
                CellError(value.why, "type the value into the cell, or fix the formula"),
                mrownum,
                column,
            )
    for column, check in ((ITEM_ID, check_id), (DESCRIPTION, check_text)):
        try:
            check(hm.get(row, column))
        except CellError as exc:
            fail(exc, rownum, column)

    status, status_when = parsed(parse_status, row, rownum, *STATUS) or (Status.OPEN, None)
    completed_on = parsed(parse_date, row, rownum, COMPLETED)
    if completed_on is None and status_when:
        try:
            completed_on = parse_date(status_when)
        except CellError as exc:
            fail(exc, rownum, *STATUS)
    severity, severity_label = parsed(parse_risk, row, rownum, SEVERITY) or (None, None)
    if severity is None:
        severity, severity_label = parsed(parse_risk, row, rownum, RAW_SEVERITY) or (None, None)
        if severity is not None:
            raw = cell(RAW_SEVERITY) or ""
            severity_label = raw if fold(raw).startswith("cat") else f"CAT {raw}"
    residual, residual_label = parsed(parse_risk, row, rownum, RESIDUAL) or (None, None)
    scheduled = parsed(parse_date, row, rownum, *SCHEDULED)

    milestones: list[Milestone] = []
    changes: list[MilestoneChange] = []
    comments: list[str] = []
    for mrownum, mrow in [(rownum, row), *g.more]:
        text_ms = parsed(parse_planned_milestones, mrow, mrownum, MILESTONE_TEXT) or ()
        for m in text_ms:
            milestones.append(m.model_copy(update={"id": str(len(milestones) + 1)}))
        changes.extend(parsed(parse_milestone_changes, mrow, mrownum, MILESTONE_CHANGES) or ())
        desc = text_of(hm.get(mrow, M_DESCRIPTION))
        mid = text_of(hm.get(mrow, M_ID))
        if mid and not desc and len(text_ms) == 1:
            # the 2024 layouts: Milestone ID numbers the milestone written in "Milestone with
            # Completion Dates" on the same row; it is not a second, empty milestone
            milestones[-1] = milestones[-1].model_copy(update={"id": mid})
            mid = None
        if desc or mid:
            mstatus_text = text_of(hm.get(mrow, M_STATUS))
            mstatus = MilestoneStatus.OPEN
            if mstatus_text:
                found = _MILESTONE_STATUS.get(fold(mstatus_text))
                if found is None:
                    fail(
                        CellError(
                            f"unknown milestone status {mstatus_text!r}",
                            "use Open, In Progress, Completed or Archived",
                        ),
                        mrownum,
                        M_STATUS,
                    )
                else:
                    mstatus = found
            number = mid or str(len(milestones) + 1)
            milestones.append(
                Milestone(
                    id=number,
                    description=desc or "",
                    status=mstatus,
                    due_date=parsed(parse_date, mrow, mrownum, M_DUE),
                    completed_on=parsed(parse_date, mrow, mrownum, M_DONE),
                )
            )
            comment = text_of(hm.get(mrow, M_COMMENTS))
            if comment:
                comments.append(f"{number}: {comment}")
    if problems:
        return problems

    description = cell(DESCRIPTION) or ""
    first_line = description.strip().splitlines()[0] if description.strip() else ""
    title = first_line if len(first_line) <= 100 else first_line[:99].rstrip() + "…"
    extra = hm.unknown(row, MAPPED)
    if comments:
        extra[hm.name_of(M_COMMENTS)] = "\n".join(comments)
    return PoamItem(
        poam_id=cell(ITEM_ID) or derived_poam_id(hm, row),
        system=system,
        title=title,
        description=description,
        controls=split_list(cell(*CONTROLS)),
        detector_source=cell(*SOURCE),
        source_identifier=cell(CHECKS),
        asset_identifiers=split_list(cell(DEVICES)),
        owner=parse_office_org(cell(OFFICE)),
        status=status,
        original_risk=severity,
        original_risk_label=severity_label,
        adjusted_risk=residual,
        adjusted_risk_label=residual_label,
        scheduled_completion_date=scheduled,
        due_date=scheduled,
        completed_on=completed_on,
        milestones=tuple(milestones),
        milestone_changes=tuple(changes),
        remediation_plan=cell(RECOMMENDATIONS),
        resources_required=cell(RESOURCES),
        comments=cell(COMMENTS),
        provenance=Provenance(format=FORMAT, file=file, sheet=sheet, row=rownum),
        extra=extra,
    )
