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
from poam_sync.formats.oscal import _narrative, _native, _xml
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
    Person,
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


# poam-sync fields the OSCAL model holds natively are not repeated in the ``fields`` prop.
_NATIVE = frozenset({"owner", "asset_identifiers"})
_WRITTEN_OWN = tuple(k for k in OWN_FIELDS if k not in _NATIVE)
_UNKNOWN_DETECTOR = "Weakness detector not recorded"


class _Definitions:
    """The document-wide objects items point at: parties (points of contact), inventory items
    (assets) and components (weakness detectors), each made once and named by a stable uuid."""

    def __init__(self, system: str) -> None:
        self.system = system
        self.parties: dict[str, dict[str, Any]] = {}
        self.pocs: list[str] = []
        self.inventory: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, Any]] = {}

    def _org(self, name: str) -> str:
        uid = _uid(self.system, "party", "organization", name)
        self.parties.setdefault(uid, {"uuid": uid, "type": "organization", "name": name})
        return uid

    def poc(self, person: Person) -> str | None:
        """The party uuid of a point of contact (a person, member of their organization, or
        the organization alone)."""
        name, email, org = _clean(person.name), _clean(person.email), _clean(person.org)
        org_uuid = self._org(org) if org else None
        if name is None and email is None:
            uid = org_uuid
        else:
            uid = _uid(self.system, "party", "person", name or "", email or "", org or "")
            party: dict[str, Any] = {"uuid": uid, "type": "person"}
            if name:
                party["name"] = name
            if email:
                party["email-addresses"] = [email]
            if org_uuid:
                party["member-of-organizations"] = [org_uuid]
            self.parties.setdefault(uid, party)
        if uid and uid not in self.pocs:
            self.pocs.append(uid)
        return uid

    def asset(self, identifier: str) -> str:
        text = " ".join(identifier.split())
        uid = _uid(self.system, "inventory-item", text)
        self.inventory.setdefault(
            uid,
            {
                "uuid": uid,
                "description": text,
                "props": [{"name": "asset-id", "value": text}],
            },
        )
        return uid

    def tool(self, detector: str | None) -> str:
        title = _clean(detector) or _UNKNOWN_DETECTOR
        uid = _uid(self.system, "component", title)
        self.components.setdefault(
            uid,
            {
                "uuid": uid,
                "type": "software",
                "title": " ".join(title.split()),
                "description": "The source that detected the weakness (Weakness Detector Source).",
                "status": {"state": "operational"},
            },
        )
        return uid

    def metadata_part(self) -> dict[str, Any]:
        if not self.parties:
            return {}
        return {
            "roles": [{"id": _native.POC_ROLE, "title": "POA&M Point of Contact"}],
            "parties": list(self.parties.values()),
            "responsible-parties": [{"role-id": _native.POC_ROLE, "party-uuids": self.pocs}],
        }

    def local_definitions(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.components:
            out["components"] = list(self.components.values())
        if self.inventory:
            out["inventory-items"] = list(self.inventory.values())
        return out


def _entry(uid: str, title: str, description: str, start: date) -> dict[str, Any]:
    return {
        "uuid": uid,
        "title": _clean(title) or "Entry",
        "description": _clean(description) or _clean(title) or "Entry",
        "start": _dt(start),
    }


def _observation(
    item: PoamItem, key: str, defs: _Definitions, collected: date, tool: str
) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "uuid": _uid(key, "observation"),
        "title": _clean(item.title) or item.poam_id,
        "description": _narrative.text(item.extra, _narrative.OBSERVATION)
        or item.description.strip()
        or item.title
        or item.poam_id,
        "methods": ["TEST"],
        "types": ["finding"],
        "origins": [{"actors": [{"type": "tool", "actor-uuid": tool}]}],
    }
    subjects = [
        {"subject-uuid": defs.asset(a), "type": "inventory-item"}
        for a in item.asset_identifiers
        if a.strip()
    ]
    if subjects:
        observation["subjects"] = subjects
    if item.detected_on is None:
        # OSCAL requires `collected`; say that the detection date is not known, so an import
        # does not take the stand-in for one
        observation["props"] = _p("detection-date", "unknown", POAM_SYNC_NS)
    evidence = _narrative.evidence(item.extra)
    if evidence:
        observation["relevant-evidence"] = evidence
    observation["collected"] = _dt(collected)
    remarks = _narrative.text(item.extra, _narrative.OBSERVATION_REMARKS)
    if remarks:
        observation["remarks"] = remarks
    return observation


def _props(item: PoamItem) -> list[dict[str, str]]:
    props: list[dict[str, str]] = []
    for control in item.controls:
        props += _p("impacted-control-id", _native.oscal_control_id(control))
    dev = item.deviation or Deviation()
    for name, value in (
        ("risk-adjustment", dev.risk_adjustment),
        ("false-positive", dev.false_positive),
        ("operational-requirement", dev.operational_requirement),
    ):
        if value is not None:
            props += _p(name, _DEV_WORD[value])
    # the guide's words: "tracking" while the dependency lasts; none when there is none
    if item.vendor_dependency is not None and item.vendor_dependency.dependent:
        props += _p("vendor-dependency", "tracking")
    if item.kev is not None:
        props += _p("kev-catalog", "yes" if item.kev else "no")
    if item.kev_due_date:
        props += _p("kev-due-date", item.kev_due_date.isoformat())
    return props


def _facets(item: PoamItem) -> list[dict[str, Any]]:
    facets: list[dict[str, Any]] = []
    for level, state in ((item.original_risk, "initial"), (item.adjusted_risk, "adjusted")):
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
    return facets


def _remediation(item: PoamItem, key: str, poc: str | None) -> dict[str, Any] | None:
    if not (item.remediation_plan or item.milestones):
        return None
    remediation: dict[str, Any] = {
        "uuid": _uid(key, "remediation"),
        "lifecycle": "planned",
        "title": "Remediation plan",
        "description": _clean(item.remediation_plan) or "See milestones.",
    }
    if poc:
        remediation["origins"] = [
            {"actors": [{"type": "party", "actor-uuid": poc, "role-id": _native.POC_ROLE}]}
        ]
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
    return remediation


def _risk_log(item: PoamItem, key: str, collected: date, today: date) -> list[dict[str, Any]]:
    entries = []
    for n, change in enumerate(item.milestone_changes):
        entry = _entry(_uid(key, "log", str(n)), change.text or change.kind, change.text,
                       change.on or collected)  # fmt: skip
        entry["props"] = _p("type", change.kind, POAM_SYNC_NS)
        entries.append(entry)
    vendor = item.vendor_dependency
    if vendor is not None and vendor.last_check_in:
        # guide 4.5.4: each vendor check-in is an entry titled "Vendor Check-in"
        entry = _entry(_uid(key, "log", "vendor-check-in"), "Vendor Check-in",
                       f"Vendor check-in ({vendor.product})" if vendor.product
                       else "Vendor check-in", vendor.last_check_in)  # fmt: skip
        entry["props"] = _p("vendor-dependency", "vendor-check-in") + _p(
            "type", _native.VENDOR_CHECK_IN_ENTRY, POAM_SYNC_NS
        )
        entries.append(entry)
    if item.status_date:
        # guide 4.4: a periodic status update's start is the effective date of the status
        entry = _entry(_uid(key, "log", "status-date"), "Status update",
                       f"Status {item.status.value.replace('_', ' ')} as of this date",
                       item.status_date)  # fmt: skip
        entry["props"] = _p("type", _native.STATUS_DATE_ENTRY, POAM_SYNC_NS)
        entries.append(entry)
    if item.status.is_closed:
        entry = _entry(_uid(key, "log", "closed"), "Risk Closed",
                       f"Closed: {item.status.value.replace('_', ' ')}",
                       item.completed_on or item.status_date or today)  # fmt: skip
        entry["status-change"] = "closed"
        entries.append(entry)
    return entries


def _risk(
    item: PoamItem, key: str, poc: str | None, tool: str, collected: date, today: date
) -> dict[str, Any]:
    text = item.description.strip() or item.title or item.poam_id
    risk: dict[str, Any] = {
        "uuid": _uid(key, "risk"),
        "title": _clean(item.title) or item.poam_id,
        "description": text,
        "statement": _narrative.text(item.extra, _narrative.RISK_STATEMENT) or text,
        "status": STATUS_TO_RISK[item.status],
    }
    props = _props(item)
    if props:
        risk["props"] = props
    facets = _facets(item)
    if facets:
        actor: dict[str, Any] = {"type": "tool", "actor-uuid": tool}
        actor_props = _p("vulnerability-id", item.source_identifier)
        if actor_props:
            actor["props"] = actor_props
        risk["characterizations"] = [{"origin": {"actors": [actor]}, "facets": facets}]
    deadline = item.due_date or item.scheduled_completion_date
    if deadline:
        risk["deadline"] = _dt(deadline)
    remediation = _remediation(item, key, poc)
    if remediation:
        risk["remediations"] = [remediation]
    entries = _risk_log(item, key, collected, today)
    if entries:
        risk["risk-log"] = {"entries": entries}
    return risk


def _poam_item(
    item: PoamItem, key: str, poc: str | None, obs_uuid: str, risk_uuid: str
) -> dict[str, Any]:
    pi_props = _p("POAM-ID", item.poam_id)
    dumped = item.model_dump(mode="json")
    own = {k: dumped[k] for k in _WRITTEN_OWN if dumped[k] not in (None, "", [], {})}
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
    }
    if poc:
        poam_item["origins"] = [
            {"actors": [{"type": "party", "actor-uuid": poc, "role-id": _native.POC_ROLE}]}
        ]
    poam_item["related-observations"] = [{"observation-uuid": obs_uuid}]
    poam_item["related-risks"] = [{"risk-uuid": risk_uuid}]
    if _clean(item.comments):
        poam_item["remarks"] = item.comments
    return poam_item


def to_document(
    items: Sequence[PoamItem], *, system_name: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The OSCAL 1.1.2 POA&M JSON document for ``items`` (uuids are stable per item; every
    uuid the document refers to is defined in it)."""
    stamp = (now or datetime.now(UTC)).replace(microsecond=0)
    system = system_name or next((i.system for i in items), None) or "default"
    defs = _Definitions(system)
    observations, risks, poam_items = [], [], []
    for item in items:
        key = f"{item.system}/{item.poam_id}"
        collected = item.detected_on or item.status_date or stamp.date()
        poc = defs.poc(item.owner) if item.owner else None
        tool = defs.tool(item.detector_source)
        observation = _observation(item, key, defs, collected, tool)
        risk = _risk(item, key, poc, tool, collected, stamp.date())
        observations.append(observation)
        risks.append(risk)
        poam_items.append(_poam_item(item, key, poc, observation["uuid"], risk["uuid"]))
    doc: dict[str, Any] = {
        "uuid": _uid("document", system, *(i.poam_id for i in items)),
        "metadata": {
            "title": f"{system} Plan of Action and Milestones",
            "last-modified": stamp.isoformat().replace("+00:00", "Z"),
            "version": stamp.date().isoformat(),
            "oscal-version": OSCAL_VERSION,
            **defs.metadata_part(),
        },
        "system-id": {"identifier-type": "https://fedramp.gov", "id": system},
    }
    local = defs.local_definitions()
    if local:
        doc["local-definitions"] = local
    doc |= {"observations": observations, "risks": risks, "poam-items": poam_items}
    return {ROOT: doc}


def _is_uuid(value: str) -> bool:
    try:
        return str(_uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def write(
    items: Sequence[PoamItem], path: Path, *, system_name: str | None = None, xml: bool = False
) -> None:
    """The OSCAL POA&M of ``items`` as JSON, or with ``xml`` as XML (the same document)."""
    if not items:
        raise UsageError(
            "no POA&M items to export: an OSCAL POA&M needs at least one poam-item",
            hint="import items first, or choose the csv or fedramp-xlsx format",
        )
    doc = to_document(items, system_name=system_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if xml:
        _xml.write_xml(doc, path, indent=len(items) <= 1000)
        _log.info("oscal.write", file=path.name, items=len(items), xml=True)
        return
    # indented for people; large documents compact (the indenting encoder is pure Python)
    indent = 2 if len(items) <= 1000 else None
    path.write_text(json.dumps(doc, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    _log.info("oscal.write", file=path.name, items=len(items))
