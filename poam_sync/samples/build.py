"""Build the demo POA&M: ``python -m poam_sync.samples.build`` rewrites the sample workbook.

Eight invented items for an invented system (no real host, person or finding): mixed risks
and statuses, owners among three example.com people, milestones, and one closed item. The
workbook is written by poam-sync's own FedRAMP v3.0 exporter.
"""

from __future__ import annotations

import sys
import uuid
from datetime import date
from pathlib import Path

from poam_sync.formats import write
from poam_sync.model import (
    Deviation,
    DeviationStatus,
    Milestone,
    MilestoneChange,
    MilestoneStatus,
    Person,
    PoamItem,
    RiskLevel,
    Status,
    VendorDependency,
)
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX

SYSTEM = "Example Cloud Service"

ALICE = Person(name="Alice Example", email="alice@example.com", org="Platform Engineering")
BOB = Person(name="Bob Example", email="bob@example.com", org="Identity Team")
CAROL = Person(name="Carol Example", email="carol@example.com", org="Security Operations")


def _uuid(poam_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"poam-sync-sample:{poam_id}"))


def sample_items() -> list[PoamItem]:
    """The sample POA&M items (fixed dates, so the workbook is reproducible)."""
    raw = [
        PoamItem(
            poam_id="V-1001",
            title="OpenSSL package below the vendor's security release",
            description="The web tier image ships an OpenSSL build with a published "
            "vulnerability fixed in the vendor's latest security release.",
            controls=["RA-5", "SI-2"],
            detector_source="Container image scanner",
            source_identifier="IMG-2026-0412",
            asset_identifiers=["web-01.example.internal (443/TCP)", "web-02.example.internal"],
            cves=["CVE-2026-00001"],
            owner=ALICE,
            original_risk=RiskLevel.HIGH,
            detected_on=date(2026, 11, 2),
            scheduled_completion_date=date(2026, 12, 2),
            due_date=date(2026, 12, 2),
            status_date=date(2026, 11, 20),
            remediation_plan="Rebuild the web tier image on the patched base image and redeploy.",
            milestones=[
                Milestone(
                    id="1",
                    description="Patched base image built",
                    due_date=date(2026, 11, 16),
                    status=MilestoneStatus.COMPLETED,
                    completed_on=date(2026, 11, 14),
                ),
                Milestone(id="2", description="Web tier redeployed", due_date=date(2026, 12, 1)),
            ],
            milestone_changes=[
                MilestoneChange(
                    kind="complete",
                    on=date(2026, 11, 14),
                    text="(1) Base image rebuilt and scanned clean",
                ),
            ],
        ),
        PoamItem(
            poam_id="V-1002",
            title="Administrator accounts without phishing-resistant MFA",
            description="Three administrator accounts of the management console accept "
            "one-time codes instead of a phishing-resistant authenticator.",
            controls=["IA-2(1)", "IA-2(2)"],
            detector_source="Annual assessment",
            asset_identifiers=["console.example.internal"],
            owner=BOB,
            original_risk=RiskLevel.MODERATE,
            detected_on=date(2026, 9, 15),
            scheduled_completion_date=date(2026, 12, 14),
            due_date=date(2026, 12, 14),
            status_date=date(2026, 11, 1),
            remediation_plan="Enrol the accounts in hardware security keys; disable OTP.",
            milestones=[
                Milestone(id="1", description="Security keys issued", due_date=date(2026, 11, 30)),
                Milestone(
                    id="2",
                    description="OTP disabled for administrators",
                    due_date=date(2026, 12, 14),
                ),
            ],
        ),
        PoamItem(
            poam_id="V-1003",
            title="Audit log retention shorter than required",
            description="Application audit logs are kept for 30 days; the SSP commits to 90.",
            controls=["AU-11"],
            detector_source="Continuous monitoring review",
            asset_identifiers=["log-store.example.internal"],
            owner=CAROL,
            original_risk=RiskLevel.LOW,
            detected_on=date(2026, 6, 1),
            scheduled_completion_date=date(2026, 11, 28),
            due_date=date(2026, 11, 28),
            status_date=date(2026, 10, 15),
            remediation_plan="Raise the retention policy of the log store to 90 days.",
        ),
        PoamItem(
            poam_id="V-1004",
            title="TLS 1.0 enabled on the legacy API endpoint",
            description="The legacy API load balancer still negotiates TLS 1.0 for one "
            "partner integration.",
            controls=["SC-8", "SC-13"],
            detector_source="Network scanner",
            source_identifier="104743",
            asset_identifiers=["legacy-api.example.internal (443/TCP)"],
            owner=ALICE,
            status=Status.DEVIATION_REQUESTED,
            original_risk=RiskLevel.MODERATE,
            deviation=Deviation(
                operational_requirement=DeviationStatus.PENDING,
                rationale="Operational Requirement : the partner's client cannot use TLS 1.2 "
                "until its March release.",
            ),
            vendor_dependency=VendorDependency(
                dependent=True, last_check_in=date(2026, 11, 10), product="Partner gateway"
            ),
            detected_on=date(2026, 8, 20),
            scheduled_completion_date=date(2026, 11, 18),
            due_date=date(2026, 11, 18),
            status_date=date(2026, 11, 10),
            remediation_plan="Disable TLS 1.0 once the partner ships TLS 1.2 support.",
        ),
        PoamItem(
            poam_id="V-1005",
            title="Default SNMP community string on a network switch",
            description="A management switch answers SNMP v2c with a default community string.",
            controls=["CM-6", "IA-5"],
            detector_source="Network scanner",
            source_identifier="10264",
            asset_identifiers=["switch-03.example.internal (161/UDP)"],
            owner=CAROL,
            original_risk=RiskLevel.HIGH,
            adjusted_risk=RiskLevel.MODERATE,
            status=Status.RISK_ACCEPTED,
            deviation=Deviation(
                risk_adjustment=DeviationStatus.APPROVED,
                rationale="Risk Adjustment : the switch is reachable only from the "
                "management VLAN.",
            ),
            detected_on=date(2026, 10, 5),
            scheduled_completion_date=date(2027, 1, 3),
            due_date=date(2027, 1, 3),
            status_date=date(2026, 10, 30),
            remediation_plan="Move the switch to SNMP v3 with per-user credentials.",
            supporting_documents="Deviation Request : DR-2026-014.pdf",
        ),
        PoamItem(
            poam_id="V-1006",
            title="Container runtime affected by a known exploited vulnerability",
            description="The worker nodes run a container runtime version listed in the "
            "CISA KEV catalog.",
            controls=["SI-2", "RA-5"],
            detector_source="Container image scanner",
            source_identifier="IMG-2026-0533",
            asset_identifiers=["worker-pool-a"],
            cves=["CVE-2026-00002"],
            owner=BOB,
            original_risk=RiskLevel.CRITICAL,
            kev=True,
            kev_due_date=date(2026, 12, 4),
            detected_on=date(2026, 11, 20),
            scheduled_completion_date=date(2026, 12, 4),
            due_date=date(2026, 12, 4),
            status_date=date(2026, 11, 21),
            remediation_plan="Roll the node pool to the fixed runtime version.",
            milestones=[
                Milestone(
                    id="1",
                    description="Node pool rolled in staging",
                    due_date=date(2026, 11, 27),
                    status=MilestoneStatus.IN_PROGRESS,
                ),
                Milestone(
                    id="2", description="Node pool rolled in production", due_date=date(2026, 12, 3)
                ),
            ],
        ),
        PoamItem(
            poam_id="V-1007",
            title="Incident response plan not tested this year",
            description="The annual tabletop exercise of the incident response plan has not "
            "been held.",
            controls=["IR-3"],
            detector_source="Annual assessment",
            asset_identifiers=["Incident Response Plan v4"],
            owner=CAROL,
            original_risk=RiskLevel.LOW,
            detected_on=date(2026, 10, 1),
            scheduled_completion_date=date(2027, 3, 30),
            due_date=date(2027, 3, 30),
            status_date=date(2026, 10, 1),
            remediation_plan="Hold the tabletop exercise and record lessons learned.",
            resources_required="Half a day of the incident response team",
        ),
        PoamItem(
            poam_id="V-0998",
            title="Expired TLS certificate on the status page",
            description="The public status page served a certificate that expired.",
            controls=["SC-17"],
            detector_source="Network scanner",
            source_identifier="15901",
            asset_identifiers=["status.example.internal (443/TCP)"],
            owner=ALICE,
            status=Status.COMPLETED,
            original_risk=RiskLevel.MODERATE,
            detected_on=date(2026, 7, 1),
            scheduled_completion_date=date(2026, 9, 29),
            due_date=date(2026, 9, 29),
            completed_on=date(2026, 7, 3),
            status_date=date(2026, 7, 3),
            remediation_plan="Renew the certificate and automate renewal.",
            comments="Renewal is now automated.",
        ),
    ]
    return [i.model_copy(update={"system": SYSTEM, "uuid": _uuid(i.poam_id)}) for i in raw]


def build(path: Path = SAMPLE_FEDRAMP_XLSX) -> Path:
    write(sample_items(), path, format="fedramp-xlsx", system_name=SYSTEM)
    return path


def main() -> int:
    path = build()
    sys.stdout.write(f"wrote {path.name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
