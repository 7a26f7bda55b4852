"""Writing OSCAL 1.1.2 POA&M JSON, valid against NIST's schema."""

from __future__ import annotations

import json
import uuid as _uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import structlog

from poam_sync.errors import UsageError
from poam_sync.formats.oscal._read import OWN_FIELDS
from poam_sync.formats.oscal._vocab import (
    FEDRAMP_NS,
    OSCAL_VERSION,
    POAM_SYNC_NS,
    ROOT,
    STATUS_TO_RISK,
)
from poam_sync.model import (
    Deviation,
    DeviationStatus,
    PoamItem,
)

_log = structlog.get_logger(__name__)


# ---------------------------------------------------------------------------------------------
# Writing (OSCAL 1.1.2 JSON, valid against NIST's schema)

_NAMESPACE = _uuid.UUID("8d0f5d0e-3c8e-4a53-9a8c-2f6f7a0c1b11")


def _uid(*parts: str) -> str:
    return str(_uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _dt(d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def _clean(text: str | None) -> str | None:
    """A value for an OSCAL string field (``^\\S(.*\\S)?$``): stripped, None when empty."""
    if text is None:
        return None
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    return text or None


def _p(name: str, value: str | None, ns: str = FEDRAMP_NS) -> list[dict[str, str]]:
    v = _clean(value)
    return [{"name": name, "ns": ns, "value": " ".join(v.split())}] if v else []


_DEV_WORD = {
    DeviationStatus.INVESTIGATING: "investigating",
    DeviationStatus.PENDING: "pending",
    DeviationStatus.APPROVED: "approved",
    DeviationStatus.WITHDRAWN: "withdrawn",
    DeviationStatus.REJECTED: "rejected",
    DeviationStatus.NO: "no",
}


def to_document(
    items: Sequence[PoamItem], *, system_name: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The OSCAL 1.1.2 POA&M JSON document for ``items`` (uuids are stable per item)."""
    stamp = (now or datetime.now(UTC)).replace(microsecond=0)
    system = system_name or next((i.system for i in items), None) or "default"
    observations, risks, poam_items = [], [], []
    for item in items:
        key = f"{item.system}/{item.poam_id}"
        obs_uuid, risk_uuid = _uid(key, "observation"), _uid(key, "risk")
        collected = item.detected_on or item.status_date or stamp.date()
        observation: dict[str, Any] = {
            "uuid": obs_uuid,
            "title": _clean(item.title) or item.poam_id,
            "description": item.description.strip() or item.title or item.poam_id,
            "methods": ["TEST"],
            "types": ["finding"],
            "collected": _dt(collected),
        }
        if item.detector_source:
            observation["props"] = _p("detector-source", item.detector_source, POAM_SYNC_NS)
        observations.append(observation)

        props: list[dict[str, str]] = []
        for control in item.controls:
            props += _p("impacted-control-id", control.lower())
        dev = item.deviation or Deviation()
        for name, value in (
            ("risk-adjustment", dev.risk_adjustment),
            ("false-positive", dev.false_positive),
            ("operational-requirement", dev.operational_requirement),
        ):
            if value is not None:
                props += _p(name, _DEV_WORD[value])
        if item.vendor_dependency is not None:
            props += _p("vendor-dependency", "yes" if item.vendor_dependency.dependent else "no")
        if item.kev is not None:
            props += _p("kev-catalog", "yes" if item.kev else "no")
        if item.kev_due_date:
            props += _p("kev-due-date", item.kev_due_date.isoformat())
        facets = []
        for level, state in (
            (item.original_risk, "initial"),
            (item.adjusted_risk, "adjusted"),
        ):
            if level is not None:
                facets.append(
                    {
                        "name": "risk",
                        "system": FEDRAMP_NS,
                        "value": level.value,
                        "props": [{"name": "state", "value": state}],
                    }
                )
        for cve in item.cves:
            facets.append({"name": "cve-id", "system": "http://cve.mitre.org", "value": cve})
        risk: dict[str, Any] = {
            "uuid": risk_uuid,
            "title": _clean(item.title) or item.poam_id,
            "description": item.description.strip() or item.title or item.poam_id,
            "statement": item.description.strip() or item.title or item.poam_id,
            "status": STATUS_TO_RISK[item.status],
        }
        if props:
            risk["props"] = props
        if facets:
            risk["characterizations"] = [
                {
                    "origin": {"actors": [{"type": "tool", "actor-uuid": _uid(key, "tool")}]},
                    "facets": facets,
                }
            ]
        deadline = item.due_date or item.scheduled_completion_date
        if deadline:
            risk["deadline"] = _dt(deadline)
        if item.remediation_plan or item.milestones:
            remediation: dict[str, Any] = {
                "uuid": _uid(key, "remediation"),
                "lifecycle": "planned",
                "title": "Remediation plan",
                "description": _clean(item.remediation_plan) or "See milestones.",
            }
            tasks = []
            for n, m in enumerate(item.milestones):
                task: dict[str, Any] = {
                    "uuid": _uid(key, "milestone", str(n), m.id),
                    "type": "milestone",
                    "title": _clean(m.description) or f"Milestone {m.id}",
                }
                if m.due_date:
                    task["timing"] = {"on-date": {"date": _dt(m.due_date)}}
                task["props"] = (
                    _p("milestone-id", m.id, POAM_SYNC_NS)
                    + _p("milestone-status", m.status.value, POAM_SYNC_NS)
                    + _p(
                        "completed-on",
                        m.completed_on.isoformat() if m.completed_on else None,
                        POAM_SYNC_NS,
                    )
                )
                tasks.append(task)
            if tasks:
                remediation["tasks"] = tasks
            risk["remediations"] = [remediation]
        entries = []
        for n, change in enumerate(item.milestone_changes):
            entry: dict[str, Any] = {
                "uuid": _uid(key, "log", str(n)),
                "title": _clean(change.text) or change.kind,
                "start": _dt(change.on or collected),
                "props": _p("type", change.kind, POAM_SYNC_NS),
            }
            entries.append(entry)
        if item.status.is_closed:
            entries.append(
                {
                    "uuid": _uid(key, "log", "closed"),
                    "title": "Risk closed",
                    "start": _dt(item.completed_on or item.status_date or stamp.date()),
                    "status-change": "closed",
                }
            )
        if entries:
            risk["risk-log"] = {"entries": entries}
        risks.append(risk)

        pi_props = _p("POAM-ID", item.poam_id)
        dumped = item.model_dump(mode="json")
        own = {k: dumped[k] for k in OWN_FIELDS if dumped[k] not in (None, "", [], {})}
        if item.extra:
            own["extra"] = item.extra
        if own:
            pi_props.append(
                {
                    "name": "fields",
                    "ns": POAM_SYNC_NS,
                    "value": json.dumps(own, ensure_ascii=False, sort_keys=True),
                }
            )
        poam_item: dict[str, Any] = {
            "uuid": item.uuid if _is_uuid(item.uuid) else _uid(key, "poam-item"),
            "title": _clean(item.title) or item.poam_id,
            "description": item.description.strip() or item.title or item.poam_id,
            "props": pi_props,
            "related-observations": [{"observation-uuid": obs_uuid}],
            "related-risks": [{"risk-uuid": risk_uuid}],
        }
        if _clean(item.comments):
            poam_item["remarks"] = item.comments
        poam_items.append(poam_item)
    return {
        ROOT: {
            "uuid": _uid("document", system, *(i.poam_id for i in items)),
            "metadata": {
                "title": f"{system} Plan of Action and Milestones",
                "last-modified": stamp.isoformat().replace("+00:00", "Z"),
                "version": stamp.date().isoformat(),
                "oscal-version": OSCAL_VERSION,
            },
            "system-id": {"identifier-type": "https://fedramp.gov", "id": system},
            "observations": observations,
            "risks": risks,
            "poam-items": poam_items,
        }
    }


def _is_uuid(value: str) -> bool:
    try:
        return str(_uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def write(items: Sequence[PoamItem], path: Path, *, system_name: str | None = None) -> None:
    if not items:
        raise UsageError(
            "no POA&M items to export: an OSCAL POA&M needs at least one poam-item",
            hint="import items first, or choose the csv or fedramp-xlsx format",
        )
    doc = to_document(items, system_name=system_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # indented for people; large documents compact (the indenting encoder is pure Python)
    indent = 2 if len(items) <= 1000 else None
    path.write_text(json.dumps(doc, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    _log.info("oscal.write", file=path.name, items=len(items))
