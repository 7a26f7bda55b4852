"""OSCAL POA&M vocabulary: namespaces, versions, and the status and deviation words."""

from __future__ import annotations

from poam_sync.model import (
    DeviationStatus,
    Status,
)

FEDRAMP_NS = "https://fedramp.gov/ns/oscal"
# Our own namespace for props that carry poam-sync fields OSCAL has no place for.
POAM_SYNC_NS = "https://github.com/poam-sync/poam-sync/ns/oscal"
OSCAL_VERSION = "1.1.2"
ROOT = "plan-of-action-and-milestones"


RISK_STATUS: dict[str, Status] = {
    "open": Status.OPEN,
    "investigating": Status.INVESTIGATING,
    "remediating": Status.REMEDIATING,
    "deviation-requested": Status.DEVIATION_REQUESTED,
    "deviation-approved": Status.RISK_ACCEPTED,
    "closed": Status.COMPLETED,
    "not-applicable": Status.NOT_APPLICABLE,
    "archived": Status.ARCHIVED,
}
STATUS_TO_RISK: dict[Status, str] = {
    Status.OPEN: "open",
    Status.INVESTIGATING: "investigating",
    Status.REMEDIATING: "remediating",
    Status.DEVIATION_REQUESTED: "deviation-requested",
    Status.RISK_ACCEPTED: "deviation-approved",
    Status.COMPLETED: "closed",
    Status.FALSE_POSITIVE: "closed",
    Status.NOT_APPLICABLE: "not-applicable",
    Status.ARCHIVED: "archived",
}
FEDRAMP_DEVIATION = {
    "investigating": DeviationStatus.INVESTIGATING,
    "pending": DeviationStatus.PENDING,
    "approved": DeviationStatus.APPROVED,
    "withdrawn": DeviationStatus.WITHDRAWN,
    "rejected": DeviationStatus.REJECTED,
    "no": DeviationStatus.NO,
    "yes": DeviationStatus.APPROVED,
}
