"""Workbooks filled from the real templates once per session (saving a template is slow)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from poam_sync import formats
from tests.formats import builders as b

V3_OPEN_ROWS = [
    {
        "POAM ID": "V-101",
        "Controls": "RA-5, sc-13",
        "Weakness Name": "Red Hat Update for glibc security (RHSA-2021:4358)",
        "Weakness Description": "The remote host is missing a glibc security update.",
        "Weakness Detector Source": "Nessus",
        "Weakness Source Identifier": 19506,
        "Asset Identifier": "10.0.0.5 (443/TCP)\nweb-01.example.internal",
        "Point of Contact": "Alice Example <alice@example.com> - Platform Engineering",
        "Resources Required": "None",
        "Remediation Plan": "Apply the vendor update during the monthly patch window.",
        "Original Detection Date": datetime(2025, 1, 15),
        "Scheduled Completion Date": datetime(2025, 2, 14),
        "Status Date": datetime(2025, 1, 20),
        "Vendor Dependency": "No",
        "Original Risk Rating": "High",
        "Adjusted Risk Rating": "N/A",
        "Risk Adjustment": "No",
        "False Positive": "No",
        "Operational Requirement": "No",
        "Comments": "Patch is staged.",
        "Binding Operational Directive 22-01 tracking": "Yes",
        "Binding Operational Directive 22-01 Due Date": datetime(2025, 2, 5),
        "CVE": "CVE-2024-1234, CVE-2024-5678",
    },
    {
        # Scheduled Completion Date left to the template's formula (no cached value).
        "POAM ID": "V-102",
        "Controls": "AC-2(1)",
        "Weakness Name": "Stale accounts",
        "Weakness Description": "Accounts inactive for 90 days are not disabled.",
        "Weakness Detector Source": "Annual assessment",
        "Asset Identifier": "idp.example.internal",
        "Point of Contact": "bob@example.com",
        "Remediation Plan": "Automate account disabling.",
        "Original Detection Date": datetime(2024, 2, 29),
        "Status Date": datetime(2024, 3, 1),
        "Vendor Dependency": "Yes",
        "Last Vendor Check-in Date": datetime(2024, 3, 15),
        "Vendor Dependent Product Name": "IdP appliance",
        "Original Risk Rating": "Moderate",
        "Adjusted Risk Rating": "Low",
        "Risk Adjustment": "Yes",
        "False Positive": "No",
        "Operational Requirement": "No",
        "Deviation Rationale": "Risk Adjustment : compensating monitoring in place",
    },
]
V3_CLOSED_ROWS = [
    {
        "POAM ID": "V-090",
        "Controls": "SC-17",
        "Weakness Name": "Expired certificate",
        "Weakness Description": "The status page served an expired certificate.",
        "Weakness Detector Source": "Qualys",
        "Asset Identifier": "status.example.internal",
        "Point of Contact": "Carol Example - Security Operations",
        "Overall Remediation Plan": "Renew and automate.",
        "Original Detection Date": datetime(2024, 12, 1),
        "Scheduled Completion Date": datetime(2025, 3, 1),
        "Status Date": datetime(2024, 12, 3),
        "Vendor Dependency": "No",
        "Original Risk Rating": "Moderate",
    },
    {
        "POAM ID": "V-091",
        "Controls": "SI-2",
        "Weakness Name": "Scanner reported outdated package",
        "Weakness Description": "The package version was back-ported by the vendor.",
        "Weakness Detector Source": "Nessus",
        "Asset Identifier": "db-01",
        "Point of Contact": "Bob Example",
        "Overall Remediation Plan": "None needed.",
        "Original Detection Date": datetime(2024, 11, 1),
        "Status Date": datetime(2024, 11, 20),
        "Vendor Dependency": "No",
        "Original Risk Rating": "Low",
        "False Positive": "Yes",
    },
]
V3_CONFIG_ROWS = [
    {
        "POAM ID": "CF-1",
        "Controls": "CM-6",
        "Weakness Name": "SSH allows password login",
        "Weakness Description": "sshd_config PasswordAuthentication yes",
        "Weakness Detector Source": "CIS benchmark scan",
        "Asset Identifier": "bastion-01",
        "Point of Contact": "Alice Example",
        "Overall Remediation Plan": "Disable password authentication.",
        "Original Detection Date": datetime(2025, 1, 2),
        "Status Date": datetime(2025, 1, 2),
        "Vendor Dependency": "No",
        "Original Risk Rating": "Low",
    }
]
V2_OPEN_ROWS = [
    {
        "POAM ID": "V-7",
        "Controls": "AC-2",
        "Weakness Name": "Shared administrator account",
        "Weakness Description": "Two engineers share one administrator account.",
        "Weakness Detector Source": "Security Assessment Report",
        "Weakness Source Identifier": "SAR-12",
        "Asset Identifier": "console",
        "Point of Contact": "Carol Example <carol@example.com>",
        "Overall Remediation Plan": "Issue named accounts.",
        "Original Detection Date": datetime(2024, 1, 10),
        "Scheduled Completion Date": datetime(2024, 4, 9),
        "Planned Milestones": "(1) 2024/02/01: Named accounts issued\n\n"
        "(2) 2024-03-15: Shared account disabled",
        "Milestone Changes": "(2) Update 2024-03-10 : Delayed by a vendor dependency\n\n"
        "(3) New 2024-03-12 : Audit the remaining shared accounts",
        "Status Date": datetime(2024, 3, 10),
        "Vendor Dependency": "No",
        "Original Risk Rating": "Moderate",
        "Adjusted Risk Rating": "N/A",
        "Risk Adjustment": "No",
        "False Positive": "No",
        "Operational Requirement": "Pending",
        "Deviation Rationale": "Operational Requirement : break-glass access",
        "Auto-Approve": "No",
        "CVE": None,
    }
]


@pytest.fixture(scope="session")
def filled_v30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("v30") / "agency-poam-v3.xlsx"
    return b.fill_template(
        b.FEDRAMP_V30,
        dest,
        {
            "Open POA&M Items": V3_OPEN_ROWS,
            "Closed POA&M Items": V3_CLOSED_ROWS,
            "Configuration Findings": V3_CONFIG_ROWS,
        },
        banner={(4, 2): "Example CSP", (4, 3): "Example Cloud Offering"},
    )


@pytest.fixture(scope="session")
def filled_v21(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("v21") / "agency-poam-v21.xlsx"
    rows = [{**V2_OPEN_ROWS[0], "Service Name": "Flux Capacitor"}]
    return b.fill_template(
        b.FEDRAMP_V21,
        dest,
        {"Open POA&M Items": rows, "Closed POA&M Items": [{**V3_CLOSED_ROWS[0]}]},
        banner={(3, 2): "Acme Government Cloud"},
    )


@pytest.fixture(scope="session")
def filled_v20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("v20") / "agency-poam-v20.xlsx"
    return b.fill_template(b.FEDRAMP_V20, dest, {"Open POA&M Items": V2_OPEN_ROWS})


# Reading a filled v2.1/v3.0 template takes seconds (thousands of formula rows): read once.
@pytest.fixture(scope="session")
def v30_result(filled_v30: Path) -> formats.ReadResult:
    return formats.read(filled_v30)


@pytest.fixture(scope="session")
def v21_result(filled_v21: Path) -> formats.ReadResult:
    return formats.read(filled_v21)
