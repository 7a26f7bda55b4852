"""The FedRAMP POA&M columns (v2.0, v2.1, v3.0) <-> :class:`PoamItem`, shared by xlsx and CSV.

Columns are matched by name with case and whitespace folded, never by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from poam_sync import deadlines
from poam_sync.errors import Problem
from poam_sync.formats._common import (
    CellError,
    HeaderMap,
    Unreadable,
    check_id,
    check_text,
    deviation_word,
    fold,
    milestone_changes_text,
    milestones_text,
    parse_date,
    parse_deviation,
    parse_milestone_changes,
    parse_person,
    parse_planned_milestones,
    parse_risk,
    parse_yes_no,
    person_text,
    problem,
    risk_word,
    split_cves,
    split_list,
    text_of,
    unreadable_cells,
    yes_no,
)
from poam_sync.formats._milestones import complete_from_changes
from poam_sync.model import (
    Deviation,
    DeviationStatus,
    PoamItem,
    Provenance,
    Status,
    VendorDependency,
)

POAM_ID = "POAM ID"
REMEDIATION_PLAN = ("Remediation Plan", "Overall Remediation Plan")
BOD_TRACKING = "Binding Operational Directive 22-01 tracking"
BOD_DUE = "Binding Operational Directive 22-01 Due Date"
STATUS = "Status"
SYSTEM = "System"  # our CSV's column: the system each item belongs to (not a FedRAMP column)
PLANNED_MILESTONES = "Planned Milestones"
MILESTONE_CHANGES = "Milestone Changes"

# The v3.0 Open tab header, in order (the export writes exactly these first). The Closed and
# Configuration tabs spell the tenth column "Overall Remediation Plan".
V3_HEADERS: tuple[str, ...] = (
    "POAM ID",
    "Controls",
    "Weakness Name",
    "Weakness Description",
    "Weakness Detector Source",
    "Weakness Source Identifier",
    "Asset Identifier",
    "Point of Contact",
    "Resources Required",
    "Remediation Plan",
    "Original Detection Date",
    "Scheduled Completion Date",
    "Status Date",
    "Vendor Dependency",
    "Last Vendor Check-in Date",
    "Vendor Dependent Product Name",
    "Original Risk Rating",
    "Adjusted Risk Rating",
    "Risk Adjustment",
    "False Positive",
    "Operational Requirement",
    "Deviation Rationale",
    "Supporting Documents",
    "Comments",
    BOD_TRACKING,
    BOD_DUE,
    "CVE",
)

# FedRAMP v3.0 mandatory columns (row 8 of the template's Open tab).
MANDATORY_HEADERS: tuple[str, ...] = (
    "POAM ID",
    "Controls",
    "Weakness Name",
    "Weakness Description",
    "Weakness Detector Source",
    "Asset Identifier",
    "Point of Contact",
    "Remediation Plan",
    "Original Detection Date",
    "Scheduled Completion Date",
    "Status Date",
    "Vendor Dependency",
    "Original Risk Rating",
)

MODELED: frozenset[str] = frozenset(
    fold(h)
    for h in (*V3_HEADERS, *REMEDIATION_PLAN, STATUS, SYSTEM, PLANNED_MILESTONES, MILESTONE_CHANGES)
)
SCHEDULED = "Scheduled Completion Date"
# Modeled columns whose formula without a cached value, or error value, is a row error (the
# Scheduled Completion Date has a rule instead).
_MUST_READ = MODELED - {fold(SCHEDULED)}
_UNREADABLE_HINT = "type the value into the cell, or fix the formula in Excel and save again"

# Words accepted in our own "Status" column (CSV, or a FedRAMP sheet that carries one).
_STATUS_WORDS: dict[str, Status] = {s.value: s for s in Status} | {
    s.value.replace("_", " "): s for s in Status
}
_STATUS_WORDS |= {
    "closed": Status.COMPLETED,
    "complete": Status.COMPLETED,
    "ongoing": Status.OPEN,
    "new": Status.OPEN,
    "in progress": Status.REMEDIATING,
    "risk-accepted": Status.RISK_ACCEPTED,
    "deviation-requested": Status.DEVIATION_REQUESTED,
    "deviation-approved": Status.RISK_ACCEPTED,
    "false-positive": Status.FALSE_POSITIVE,
    "not-applicable": Status.NOT_APPLICABLE,
}


def is_fedramp_header(hm: HeaderMap) -> bool:
    return hm.has(POAM_ID, "Weakness Name")


def parse_status_word(text: str) -> Status:
    found = _STATUS_WORDS.get(fold(text))
    if found is None:
        raise CellError(
            f"unknown status {text!r}",
            "use one of " + ", ".join(s.value for s in Status),
        )
    return found


def derived_status(closed_tab: bool, deviation: Deviation | None) -> Status:
    """FedRAMP status crosswalk (docs/formats.md): the tab, then the deviation columns."""
    dev = deviation or Deviation()
    if dev.false_positive is DeviationStatus.APPROVED:
        return Status.FALSE_POSITIVE
    if closed_tab:
        return Status.COMPLETED
    states = (dev.risk_adjustment, dev.false_positive, dev.operational_requirement)
    if DeviationStatus.PENDING in states:
        return Status.DEVIATION_REQUESTED
    if DeviationStatus.APPROVED in (dev.risk_adjustment, dev.operational_requirement):
        return Status.RISK_ACCEPTED
    return Status.OPEN


@dataclass(frozen=True)
class RowContext:
    file: str
    sheet: str | None
    format: str
    system: str
    closed_tab: bool


def row_to_item(
    hm: HeaderMap, row: Sequence[object], rownum: int, ctx: RowContext
) -> PoamItem | list[Problem]:
    """One FedRAMP row as an item, or the problems that keep it out."""
    problems: list[Problem] = []

    def cell(*names: str) -> str | None:
        return text_of(hm.get(row, *names))

    def parsed(parser: Any, *names: str) -> Any:
        try:
            if parser is parse_date:
                return parse_date(hm.get(row, *names))
            return parser(cell(*names))
        except CellError as exc:
            problems.append(
                problem(
                    exc.message,
                    file=ctx.file,
                    sheet=ctx.sheet,
                    row=rownum,
                    column=hm.name_of(*names),
                    hint=exc.hint,
                )
            )
            return None

    def cell_problem(exc: CellError, column: str) -> Problem:
        return problem(
            exc.message,
            file=ctx.file,
            sheet=ctx.sheet,
            row=rownum,
            column=column,
            hint=exc.hint,
        )

    try:
        poam_id = check_id(hm.get(row, POAM_ID))
    except CellError as exc:
        return [cell_problem(exc, hm.name_of(POAM_ID))]
    if not poam_id:
        return [
            problem(
                "the row has data but no POAM ID",
                file=ctx.file,
                sheet=ctx.sheet,
                row=rownum,
                column=hm.name_of(POAM_ID),
                hint="give every POA&M item a unique POAM ID",
                code="missing_id",
            )
        ]

    for column, value in unreadable_cells(hm, row, _MUST_READ):
        problems.append(cell_problem(CellError(value.why, _UNREADABLE_HINT), column))
    for name in ("Weakness Name", "Weakness Description"):
        try:
            check_text(hm.get(row, name), name)
        except CellError as exc:
            problems.append(cell_problem(exc, hm.name_of(name)))
    original, original_label = parsed(parse_risk, "Original Risk Rating") or (None, None)
    adjusted, adjusted_label = parsed(parse_risk, "Adjusted Risk Rating") or (None, None)
    ra = parsed(parse_deviation, "Risk Adjustment")
    fp = parsed(parse_deviation, "False Positive")
    oreq = parsed(parse_deviation, "Operational Requirement")
    rationale = cell("Deviation Rationale")
    deviation = (
        Deviation(
            risk_adjustment=ra, false_positive=fp, operational_requirement=oreq, rationale=rationale
        )
        if any(v is not None for v in (ra, fp, oreq, rationale))
        else None
    )
    vendor_flag = parsed(parse_yes_no, "Vendor Dependency")
    check_in = parsed(parse_date, "Last Vendor Check-in Date")
    product = cell("Vendor Dependent Product Name")
    vendor = (
        VendorDependency(dependent=bool(vendor_flag), last_check_in=check_in, product=product)
        if vendor_flag is not None or check_in or product
        else None
    )
    detected = parsed(parse_date, "Original Detection Date")
    # the template's formula without a cached value, or its error value: the rule computes it
    raw_scheduled = hm.get(row, SCHEDULED)
    scheduled = None if isinstance(raw_scheduled, Unreadable) else parsed(parse_date, SCHEDULED)
    status_date = parsed(parse_date, "Status Date")
    kev = parsed(parse_yes_no, BOD_TRACKING)
    kev_due = parsed(parse_date, BOD_DUE)
    milestones = parsed(parse_planned_milestones, PLANNED_MILESTONES) or ()
    changes = parsed(parse_milestone_changes, MILESTONE_CHANGES) or ()
    status_text = cell(STATUS)
    status = (
        parsed(parse_status_word, STATUS)
        if status_text
        else derived_status(ctx.closed_tab, deviation)
    )
    if problems:
        return problems

    item = PoamItem(
        poam_id=poam_id,
        system=ctx.system,
        title=cell("Weakness Name") or "",
        description=cell("Weakness Description") or "",
        controls=split_list(cell("Controls")),
        detector_source=cell("Weakness Detector Source"),
        source_identifier=cell("Weakness Source Identifier"),
        asset_identifiers=split_list(cell("Asset Identifier"), lines_only=True),
        cves=split_cves(cell("CVE")),
        owner=parse_person(cell("Point of Contact")),
        status=status,
        original_risk=original,
        adjusted_risk=adjusted,
        original_risk_label=original_label,
        adjusted_risk_label=adjusted_label,
        deviation=deviation,
        vendor_dependency=vendor,
        kev=kev,
        kev_due_date=kev_due,
        detected_on=detected,
        scheduled_completion_date=scheduled,
        due_date=scheduled,
        completed_on=status_date if status.is_closed else None,
        status_date=status_date,
        milestones=complete_from_changes(milestones, changes),
        milestone_changes=changes,
        remediation_plan=cell(*REMEDIATION_PLAN),
        resources_required=cell("Resources Required"),
        comments=cell("Comments"),
        supporting_documents=cell("Supporting Documents"),
        provenance=Provenance(format=ctx.format, file=ctx.file, sheet=ctx.sheet, row=rownum),
        extra=hm.unknown(row, MODELED),
    )
    if scheduled is None:
        # The template's formula had no cached value (or the cell was left blank): the rule.
        computed = deadlines.scheduled_completion(item)
        if computed is not None:
            item = item.model_copy(
                update={"scheduled_completion_date": computed, "due_date": computed}
            )
    return item


def item_to_cells(item: PoamItem) -> dict[str, object]:
    """The item as FedRAMP cell values keyed by v3.0 header (dates stay dates)."""
    dev = item.deviation or Deviation()
    vendor = item.vendor_dependency
    return {
        "POAM ID": item.poam_id,
        "Controls": ", ".join(item.controls) or None,
        "Weakness Name": item.title or None,
        "Weakness Description": item.description or None,
        "Weakness Detector Source": item.detector_source,
        "Weakness Source Identifier": item.source_identifier,
        "Asset Identifier": "\n".join(item.asset_identifiers) or None,
        "Point of Contact": person_text(item.owner),
        "Resources Required": item.resources_required,
        "Remediation Plan": item.remediation_plan,
        "Original Detection Date": item.detected_on,
        "Scheduled Completion Date": item.scheduled_completion_date,
        "Status Date": item.status_date,
        "Vendor Dependency": yes_no(vendor.dependent) if vendor else None,
        "Last Vendor Check-in Date": vendor.last_check_in if vendor else None,
        "Vendor Dependent Product Name": vendor.product if vendor else None,
        "Original Risk Rating": risk_word(item.original_risk, item.original_risk_label),
        "Adjusted Risk Rating": risk_word(item.adjusted_risk, item.adjusted_risk_label),
        "Risk Adjustment": deviation_word(dev.risk_adjustment),
        "False Positive": deviation_word(dev.false_positive),
        "Operational Requirement": deviation_word(dev.operational_requirement),
        "Deviation Rationale": dev.rationale,
        "Supporting Documents": item.supporting_documents,
        "Comments": item.comments,
        BOD_TRACKING: yes_no(item.kev),
        BOD_DUE: item.kev_due_date,
        "CVE": ", ".join(item.cves) or None,
        PLANNED_MILESTONES: milestones_text(item.milestones),
        MILESTONE_CHANGES: milestone_changes_text(item.milestone_changes),
        STATUS: item.status.value,
    }


def export_headers(items: Sequence[PoamItem]) -> tuple[list[str], bool]:
    """Columns for an export: the v3.0 header, then the milestone columns when any item has
    milestones, then our Status column when the tab and deviation columns cannot say it, then
    every ``extra`` column (so an export loses nothing). Returns (headers, with_status)."""
    headers = list(V3_HEADERS)
    if any(i.milestones for i in items):
        headers.append(PLANNED_MILESTONES)
    if any(i.milestone_changes for i in items):
        headers.append(MILESTONE_CHANGES)
    with_status = any(
        derived_status(i.status.is_closed, i.deviation) is not i.status for i in items
    )
    if with_status:
        headers.append(STATUS)
    seen = {fold(h) for h in headers} | MODELED
    for item in items:
        for key in item.extra:
            if fold(key) not in seen:
                seen.add(fold(key))
                headers.append(key)
    return headers, with_status


def extra_cell(item: PoamItem, header: str) -> object:
    value = item.extra.get(header)
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)
