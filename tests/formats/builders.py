"""Workbooks built in tests: real templates filled with rows, and the 2026 eMASS layouts.

The 2026 eMASS column names below were read from the Navy and Army templates of the C-PAT
project; those files are not copied here (their license does not fit this repository).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import openpyxl

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
POAM = FIXTURES / "poam"
FEDRAMP_V20 = POAM / "FedRAMP-POAM-Template_v2.0_2023-08-30_macros-stripped.xlsx"
FEDRAMP_V21 = POAM / "FedRAMP-POAM-Template_v2.1_2024-03-29.xlsx"
FEDRAMP_V30 = POAM / "FedRAMP-POAM-Template_v3.0_2025-11-17.xlsx"
EMASS_RMF = POAM / "eMASS_POAM_Import_Template_RMF-Standard_mitre-saf_macros-stripped.xlsx"
CHAINGUARD_CSV = POAM / "chainguard_FedRAMP-POAM_v3.0_header-only.csv"
NIST_JSON = POAM / "nist_oscal-content_ifa_plan-of-action-and-milestones.json"
NIST_XML = POAM / "nist_oscal-content_ifa_plan-of-action-and-milestones.xml"
FEDRAMP_OSCAL = POAM / "fedramp-automation_FedRAMP-POAM-OSCAL-Template_rev5.json"
AWESOME_XML = POAM / "fedramp-automation_AwesomeCloudPOAM_month1.xml"
OSCAL_SCHEMA = FIXTURES / "oscal-schema" / "oscal_poam_schema.json"

Row = Mapping[str, object]


def _fold(value: object) -> str:
    return " ".join(str(value).split()).casefold()


def _header(ws, marker: str) -> tuple[int, dict[str, int]]:
    for r in range(1, 21):
        names = {
            _fold(c.value): c.column for c in ws[r] if c.value is not None and str(c.value).strip()
        }
        if _fold(marker) in names:
            return r, names
    raise AssertionError(f"no header with {marker!r} on {ws.title}")


def _first_free_row(ws, header_row: int, columns: Sequence[int]) -> int:
    r = header_row + 1
    while True:
        values = [ws.cell(r, c).value for c in columns]
        if all(v is None or (isinstance(v, str) and v.startswith("=")) for v in values):
            return r
        r += 1


def fill_template(
    template: Path,
    dest: Path,
    sheets: Mapping[str, Sequence[Row]],
    *,
    marker: str = "POAM ID",
    banner: Mapping[tuple[int, int], object] | None = None,
    start_rows: Mapping[str, int] | None = None,
) -> Path:
    """Copy ``template`` to ``dest`` with ``rows`` written under each sheet's header, each row
    a {header name: value} mapping (names matched with case and spaces folded)."""
    wb = openpyxl.load_workbook(template)
    for title, rows in sheets.items():
        ws = wb[title]
        header_row, names = _header(ws, marker)
        r = (start_rows or {}).get(title) or _first_free_row(ws, header_row, list(names.values()))
        for row in rows:
            for name, value in row.items():
                ws.cell(r, names[_fold(name)]).value = value
            r += 1
    banner_ws = wb[next(iter(sheets))]
    for (row, col), value in (banner or {}).items():
        banner_ws.cell(row, col).value = value
    wb.save(dest)
    return dest


NAVY_2026_HEADERS = [
    "POA&M Item ID", "Control Vulnerability Description", "Controls / APs", "Security Checks",
    "POA&M Status", "POA&M Scheduled Completion Date",
    "POA&M Requested Risk Accepted Expiration Date", "POA&M Completion Date", "Milestone ID",
    "Milestone Description", "Milestone Status", "Milestone Status Comments",
    "Milestone Scheduled Completion Date", "Milestone Completion Date", "Identification Source",
    "Identification Source Details", "Office/Org", "Resources Required", "Comments",
    "Raw Severity", "Devices Affected",
    "Mitigations (in-house and in conjunction with the Navy CSSP)", "Predisposing Conditions",
    "Severity", "Relevance of Threat", "Threat Description", "Likelihood", "Impact",
    "Impact Description", "Residual Risk Level", "Recommendations",
    "Resulting Residual Risk after Proposed Mitigations",
]  # fmt: skip

ARMY_2026_HEADERS = [
    "POA&M Item ID", "Control Vulnerability Description", "Controls / APs", "Security Checks",
    "POA&M Status", "POA&M Scheduled Completion Date",
    "POA&M Requested Risk Accepted Expiration Date", "POA&M Completion Date", "Milestone ID",
    "Milestone Description", "Milestone Status", "Milestone Status Comments",
    "Milestone Scheduled Completion Date", "Milestone Completion Date", "Identification Source ",
    "Identification Source Details", "Office/Org", "Resources Required", "Comments",
    "Raw Severity", "Devices Affected", "Mitigations", "Severity", "Relevance of Threat",
    "Likelihood", "Impact", "Impact Description", "Residual Risk Level", "Recommendations",
    "Identified in CFO Audit or other review", "Personnel Resources: \nCost Code",
    "Personnel Resources: Funded Base Hours", "Personnel Resources: Unfunded Base Hours",
    "Personnel Resources: \nNon-Funding Obstacle",
    "Personnel Resources: Non-Funded Obstacle Other Reason",
    "Non-Personnel Resources: Cost Code", "Non-Personnel Resources: Funded Amount",
    "Non-Personnel Resources: Unfunded Amount", "Non-Personnel Resources: Non-Funding Obstacle",
    "Non-Personnel Resources: Non-Funding Obstacle Other reason",
]  # fmt: skip


def build_emass_2026(
    dest: Path, headers: Sequence[str], rows: Sequence[Row], *, system: str = "Demo System"
) -> Path:
    """A 2026-layout eMASS workbook: banner rows 1-6, header row 7 from column B, data from 8."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "POA&M"
    ws["A1"] = "***** CONTROLLED UNCLASSIFIED INFORMATION *****"
    ws["A2"] = "Date Exported:"
    ws["A3"] = "Exported By:"
    ws["A4"] = "CC/S/A/FA:"
    ws["A5"] = "System / Project Name:"
    ws["D5"] = system
    ws["L5"] = "POC Phone:"
    ws["A6"] = "DoW IT Registration No:"
    for c, name in enumerate(headers, start=2):
        ws.cell(7, c).value = name
    index = {_fold(h): c for c, h in enumerate(headers, start=2)}
    for r, row in enumerate(rows, start=8):
        for name, value in row.items():
            ws.cell(r, index[_fold(name)]).value = value
    wb.save(dest)
    return dest
