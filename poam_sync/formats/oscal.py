"""OSCAL plan-of-action-and-milestones (NIST 1.0.4 and 1.1.x), JSON and XML in, JSON out.

XML is parsed with defusedxml (no entities, no external references: a "billion laughs" file
is refused) and turned into the JSON shape, so one reader serves both. Cross-references
(poam-item -> risks / observations) are checked here because the JSON Schema cannot: a
dangling reference or a duplicated uuid is a :class:`Problem` and that poam-item is left out.
"""

from __future__ import annotations

import json
import uuid as _uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import structlog
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from poam_sync.errors import InputError, Problem, UsageError
from poam_sync.formats._common import (
    CellError,
    fold,
    parse_date,
    parse_risk,
    problem,
)
from poam_sync.model import (
    Deviation,
    DeviationStatus,
    Milestone,
    MilestoneChange,
    MilestoneStatus,
    PoamItem,
    Provenance,
    RiskLevel,
    Status,
    VendorDependency,
)

FEDRAMP_NS = "https://fedramp.gov/ns/oscal"
# Our own namespace for props that carry poam-sync fields OSCAL has no place for.
POAM_SYNC_NS = "https://github.com/poam-sync/poam-sync/ns/oscal"
OSCAL_VERSION = "1.1.2"
ROOT = "plan-of-action-and-milestones"

_log = structlog.get_logger(__name__)

_RISK_STATUS: dict[str, Status] = {
    "open": Status.OPEN,
    "investigating": Status.INVESTIGATING,
    "remediating": Status.REMEDIATING,
    "deviation-requested": Status.DEVIATION_REQUESTED,
    "deviation-approved": Status.RISK_ACCEPTED,
    "closed": Status.COMPLETED,
    "not-applicable": Status.NOT_APPLICABLE,
    "archived": Status.ARCHIVED,
}
_STATUS_TO_RISK: dict[Status, str] = {
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
_FEDRAMP_DEVIATION = {
    "investigating": DeviationStatus.INVESTIGATING,
    "pending": DeviationStatus.PENDING,
    "approved": DeviationStatus.APPROVED,
    "withdrawn": DeviationStatus.WITHDRAWN,
    "rejected": DeviationStatus.REJECTED,
    "no": DeviationStatus.NO,
    "yes": DeviationStatus.APPROVED,
}

# ---------------------------------------------------------------------------------------------
# XML -> the JSON shape

# XML element name -> JSON group name for elements that repeat (OSCAL metaschema groups).
_GROUPS = {
    "observation": "observations",
    "risk": "risks",
    "poam-item": "poam-items",
    "finding": "findings",
    "prop": "props",
    "link": "links",
    "facet": "facets",
    "characterization": "characterizations",
    "response": "remediations",
    "task": "tasks",
    "related-observation": "related-observations",
    "associated-risk": "related-risks",
    "related-risk": "related-risks",
    "entry": "entries",
    "actor": "actors",
    "origin": "origins",
    "method": "methods",
    "type": "types",
    "subject": "subjects",
    "mitigating-factor": "mitigating-factors",
    "threat-id": "threat-ids",
    "party": "parties",
    "role": "roles",
    "component": "components",
    "inventory-item": "inventory-items",
    "resource": "resources",
    "responsible-party": "responsible-parties",
    "responsible-role": "responsible-roles",
    "party-uuid": "party-uuids",
    "related-response": "related-responses",
    "relevant-evidence": "relevant-evidence",
    "logged-by": "logged-by",
    "location": "locations",
    "dependency": "dependencies",
    "related-task": "related-tasks",
    "associated-activity": "associated-activities",
    "required-asset": "required-assets",
    "rlink": "rlinks",
    "document-id": "document-ids",
    "revision": "revisions",
    "implemented-component": "implemented-components",
}
_MARKUP = frozenset({"description", "statement", "remarks", "text", "guidance"})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _markup_text(elem: Any) -> str:
    """Markup (``<p>``, ``<h1>``, ``<ul>``...) as plain text, blocks separated by blank lines."""
    blocks = []
    children = list(elem)
    if not children:
        return " ".join((elem.text or "").split())
    if elem.text and elem.text.strip():
        blocks.append(" ".join(elem.text.split()))
    for child in children:
        text = " ".join("".join(child.itertext()).split())
        if text:
            blocks.append(text)
        if child.tail and child.tail.strip():
            blocks.append(" ".join(child.tail.split()))
    return "\n\n".join(blocks)


def _xml_to_json(elem: Any) -> Any:
    out: dict[str, Any] = dict(elem.attrib)
    children = list(elem)
    if not children:
        text = (elem.text or "").strip()
        if not out:
            return text
        if text:
            out["value" if "value" not in out else "text"] = text
        return out
    for child in children:
        name = _local(child.tag)
        if name in _MARKUP:
            value: Any = _markup_text(child)
        elif name == "title":
            value = " ".join("".join(child.itertext()).split())
        else:
            value = _xml_to_json(child)
        group = _GROUPS.get(name)
        if group:
            out.setdefault(group, []).append(value)
        else:
            out[name] = value
    return out


def _load_xml(path: Path) -> dict[str, Any]:
    try:
        root = SafeET.parse(str(path), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise InputError(
            Problem(
                f"the XML declares entities or external references, which are refused: {exc}",
                file=path.name,
                hint="remove the DOCTYPE / ENTITY declarations (OSCAL needs none)",
                code="xml_unsafe",
            )
        ) from exc
    except SafeET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        raise InputError(
            Problem(
                f"the XML is not well-formed: {exc}",
                file=path.name,
                row=line,
                column=str(col) if col is not None else None,
                hint="fix the XML (an OSCAL validator names the spot), then import again",
                code="bad_xml",
            )
        ) from exc
    name = _local(root.tag)
    if name != ROOT:
        raise _not_poam(path, name)
    doc = _xml_to_json(root)
    # system-id in XML is an element whose text is the id
    sid = doc.get("system-id")
    if isinstance(sid, dict) and "value" in sid:
        sid["id"] = sid.pop("value")
    elif isinstance(sid, str):
        doc["system-id"] = {"id": sid}
    return {ROOT: doc}


def _not_poam(path: Path, found: str) -> InputError:
    return InputError(
        Problem(
            f"not an OSCAL POA&M: the root is {found!r}, not {ROOT!r}",
            file=path.name,
            hint="export the plan-of-action-and-milestones document, not an SSP/SAP/SAR",
            code="not_poam",
        )
    )


def _load_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(
            Problem(
                f"invalid JSON: {exc.msg}",
                file=path.name,
                row=exc.lineno,
                column=str(exc.colno),
                hint="fix the JSON syntax at that line and column, then import again",
                code="bad_json",
            )
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            Problem(
                f"the file is not UTF-8 text: {exc}",
                file=path.name,
                hint="save it as UTF-8 JSON",
                code="bad_json",
            )
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get(ROOT), dict):
        found = next(iter(doc), "nothing") if isinstance(doc, dict) else type(doc).__name__
        raise _not_poam(path, str(found))
    return doc


# ---------------------------------------------------------------------------------------------
# Reading


def _props(obj: dict[str, Any]) -> list[dict[str, Any]]:
    props = obj.get("props") or []
    return [p for p in props if isinstance(p, dict)]


def _prop(obj: dict[str, Any], name: str) -> str | None:
    for p in _props(obj):
        if fold(p.get("name", "")) == fold(name):
            value = p.get("value")
            return str(value) if value is not None else None
    return None


def _as_date(text: object) -> date | None:
    try:
        return parse_date(text)
    except CellError:
        return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def read(
    path: Path,
    *,
    system: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[PoamItem], list[Problem], str | None]:
    is_xml = path.suffix.lower() == ".xml" or path.read_bytes()[:64].lstrip().startswith(b"<")
    doc = (_load_xml(path) if is_xml else _load_json(path))[ROOT]
    fmt = "oscal-xml" if is_xml else "oscal-json"
    file = path.name
    problems: list[Problem] = []

    def index(kind: str) -> dict[str, tuple[int, dict[str, Any]]]:
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, obj in enumerate(doc.get(kind) or []):
            uid = str(obj.get("uuid", "")).lower()
            if uid in out:
                problems.append(
                    problem(
                        f"duplicate uuid {uid} in {kind}: entry {i + 1} repeats entry "
                        f"{out[uid][0] + 1}; the later one was not used",
                        file=file,
                        row=i + 1,
                        column=f"{kind}[{i}].uuid",
                        hint="give every OSCAL object its own uuid",
                        code="duplicate_uuid",
                    )
                )
                continue
            out[uid] = (i, obj)
        return out

    risks = index("risks")
    observations = index("observations")
    file_system = _file_system(doc)
    final_system = system or file_system or "default"
    items: list[PoamItem] = []
    seen_uuid: dict[str, int] = {}
    seen_id: dict[str, int] = {}
    poam_items = doc.get("poam-items") or []
    for i, pi in enumerate(poam_items):
        if progress:
            progress(i, len(poam_items))
        where = f"poam-items[{i}]"
        uid = str(pi.get("uuid", "")).lower()
        if uid in seen_uuid:
            problems.append(
                problem(
                    f"duplicate poam-item uuid {uid}: poam-item {i + 1} repeats poam-item "
                    f"{seen_uuid[uid]}; it was not imported",
                    file=file,
                    row=i + 1,
                    column=f"{where}.uuid",
                    hint="give each poam-item its own uuid",
                    code="duplicate_uuid",
                )
            )
            continue
        seen_uuid[uid] = i + 1
        result = _poam_item(pi, i, risks, observations, file, fmt, final_system)
        if isinstance(result, list):
            problems.extend(result)
            continue
        if result.poam_id in seen_id:
            problems.append(
                problem(
                    f"duplicate POAM-ID {result.poam_id!r}: already used by poam-item "
                    f"{seen_id[result.poam_id]}; it was not imported",
                    file=file,
                    row=i + 1,
                    column=f"{where}.props[POAM-ID]",
                    hint="give each poam-item its own POAM-ID",
                    code="duplicate_id",
                )
            )
            continue
        seen_id[result.poam_id] = i + 1
        items.append(result)
    if progress:
        progress(len(poam_items), len(poam_items))
    _log.info("oscal.read", file=file, items=len(items), problems=len(problems))
    return items, problems, system or file_system


def _file_system(doc: dict[str, Any]) -> str | None:
    sid = doc.get("system-id")
    if isinstance(sid, dict) and sid.get("id"):
        return str(sid["id"]).strip()
    ssp = doc.get("import-ssp")
    if isinstance(ssp, dict) and ssp.get("href"):
        href = str(ssp["href"]).strip()
        name = href.rsplit("/", 1)[-1] or href
        return name.rsplit(".", 1)[0] if name.lower().endswith((".xml", ".json")) else name
    title = (doc.get("metadata") or {}).get("title")
    return str(title).strip() if title else None


def _poam_item(
    pi: dict[str, Any],
    i: int,
    risks: dict[str, tuple[int, dict[str, Any]]],
    observations: dict[str, tuple[int, dict[str, Any]]],
    file: str,
    fmt: str,
    system: str,
) -> PoamItem | list[Problem]:
    where = f"poam-items[{i}]"
    problems: list[Problem] = []
    linked_risks: list[dict[str, Any]] = []
    for j, ref in enumerate(pi.get("related-risks") or []):
        rid = str(ref.get("risk-uuid", "")).lower()
        if rid not in risks:
            problems.append(
                problem(
                    f"poam-item {pi.get('uuid')} refers to risk {rid}, which is not a risk "
                    "in this document (a dangling reference); the item was not imported",
                    file=file,
                    row=i + 1,
                    column=f"{where}.related-risks[{j}].risk-uuid",
                    hint="point related-risks at the uuid of a risk in 'risks'",
                    code="dangling_reference",
                )
            )
        else:
            linked_risks.append(risks[rid][1])
    linked_obs: list[dict[str, Any]] = []
    for j, ref in enumerate(pi.get("related-observations") or []):
        oid = str(ref.get("observation-uuid", "")).lower()
        if oid not in observations:
            problems.append(
                problem(
                    f"poam-item {pi.get('uuid')} refers to observation {oid}, which is not "
                    "in this document (a dangling reference); the item was not imported",
                    file=file,
                    row=i + 1,
                    column=f"{where}.related-observations[{j}].observation-uuid",
                    hint="point related-observations at an observation's uuid",
                    code="dangling_reference",
                )
            )
        else:
            linked_obs.append(observations[oid][1])
    if problems:
        return problems

    risk = linked_risks[0] if linked_risks else {}
    raw_status = _text(risk.get("status")) or "open"
    status = _RISK_STATUS.get(fold(raw_status))
    if status is None:
        return [
            problem(
                f"unknown risk status {raw_status!r}",
                file=file,
                row=i + 1,
                column=f"{where} -> risks[{risks[str(risk.get('uuid')).lower()][0]}].status",
                hint="use open, investigating, remediating, deviation-requested, "
                "deviation-approved or closed",
                code="unknown_status",
            )
        ]

    def deviation_prop(name: str) -> DeviationStatus | None:
        value = _prop(risk, name)
        return _FEDRAMP_DEVIATION.get(fold(value)) if value else None

    deviation = Deviation(
        risk_adjustment=deviation_prop("risk-adjustment"),
        false_positive=deviation_prop("false-positive"),
        operational_requirement=deviation_prop("operational-requirement"),
    )
    if status is Status.COMPLETED and deviation.false_positive is DeviationStatus.APPROVED:
        status = Status.FALSE_POSITIVE

    controls: list[str] = []
    cves: list[str] = []
    original = adjusted = None
    original_label = adjusted_label = None
    source_identifier = None
    extra: dict[str, Any] = {}
    for r in linked_risks:
        controls += [
            str(p["value"]) for p in _props(r) if fold(p.get("name", "")) == "impacted-control-id"
        ]
        for ch in r.get("characterizations") or []:
            origin: dict[str, Any] = ch.get("origin") or next(iter(ch.get("origins") or []), {})
            for actor in origin.get("actors") or []:
                source_identifier = source_identifier or _prop(actor, "vulnerability-id")
            for facet in ch.get("facets") or []:
                name, value = fold(facet.get("name", "")), str(facet.get("value", ""))
                if name == "cve-id" and value not in cves:
                    cves.append(value)
                elif name == "risk":
                    state = fold(_prop(facet, "state") or "initial")
                    level, label = _risk_level(value)
                    if state == "adjusted":
                        adjusted, adjusted_label = level, label
                    else:
                        original, original_label = level, label
                elif name in {"likelihood", "impact", "priority"}:
                    extra.setdefault(f"risk {name}", value)
    for key, prop_name in (("priority", "priority"), ("plugin id", "plugin-id")):
        prop_value = _prop(risk, prop_name)
        if prop_value:
            extra[key] = prop_value
    own = _own_fields(pi)
    extra.update(own.pop("extra", None) or {})

    milestones: list[Milestone] = []
    remediation_plan = None
    for rem in risk.get("remediations") or []:
        lifecycle = fold(rem.get("lifecycle", ""))
        if lifecycle == "planned" and remediation_plan is None:
            remediation_plan = _text(rem.get("description")) or None
        for task in rem.get("tasks") or []:
            if fold(task.get("type", "")) != "milestone":
                continue
            timing = task.get("timing") or {}
            due = _as_date((timing.get("on-date") or {}).get("date")) or _as_date(
                (timing.get("within-date-range") or {}).get("end")
            )
            done = lifecycle == "completed"
            mstatus = MilestoneStatus.COMPLETED if done else MilestoneStatus.OPEN
            own_status = _prop(task, "milestone-status")
            if own_status in {s.value for s in MilestoneStatus}:
                mstatus = MilestoneStatus(own_status)
            milestones.append(
                Milestone(
                    id=_prop(task, "milestone-id") or str(task.get("uuid", len(milestones) + 1)),
                    description=_text(task.get("title")),
                    due_date=due,
                    status=mstatus,
                    completed_on=_as_date(_prop(task, "completed-on")),
                )
            )
    changes: list[MilestoneChange] = []
    completed_on = None
    for entry in (risk.get("risk-log") or {}).get("entries") or []:
        on = _as_date(entry.get("start"))
        kind = _prop(entry, "type") or ("status-change" if entry.get("status-change") else "log")
        text = " - ".join(
            t for t in (_text(entry.get("title")), _text(entry.get("description"))) if t
        )
        if fold(_text(entry.get("status-change"))) == "closed":
            completed_on = on  # the closing entry: kept as the completion date
            continue
        changes.append(MilestoneChange(kind=kind, on=on, text=text))
    collected = [d for d in (_as_date(o.get("collected")) for o in linked_obs) if d]
    vendor = _prop(risk, "vendor-dependency")
    kev = _prop(risk, "kev-catalog")
    poam_id = (_prop(pi, "poam-id") or str(pi.get("uuid", ""))).strip()
    deadline = _as_date(risk.get("deadline"))
    item = PoamItem(
        poam_id=poam_id or f"OSCAL-{i + 1}",
        system=system,
        uuid=str(pi.get("uuid") or _uuid.uuid4()).lower(),
        title=_text(pi.get("title")) or _text(risk.get("title")),
        description=_text(pi.get("description")) or _text(risk.get("description")),
        controls=controls,
        source_identifier=source_identifier,
        cves=tuple(cves),
        status=status,
        original_risk=original,
        adjusted_risk=adjusted,
        original_risk_label=original_label,
        adjusted_risk_label=adjusted_label,
        deviation=deviation if deviation != Deviation() else None,
        vendor_dependency=(
            VendorDependency(dependent=fold(vendor) not in {"no", "false"}) if vendor else None
        ),
        kev=(fold(kev) in {"yes", "true"}) if kev else None,
        kev_due_date=_as_date(_prop(risk, "kev-due-date")),
        detected_on=min(collected) if collected else None,
        scheduled_completion_date=deadline,
        due_date=deadline,
        completed_on=completed_on if status.is_closed else None,
        milestones=tuple(milestones),
        milestone_changes=tuple(changes),
        remediation_plan=remediation_plan,
        comments=_text(pi.get("remarks")) or None,
        provenance=Provenance(format=fmt, file=file, sheet=None, row=i + 1),
        extra=extra,
    )
    if own:
        item = _overlay(item, own, _text(risk.get("status")) or "open")
    return item


# Fields OSCAL has no natural place for travel in one poam-item prop (our namespace) as JSON,
# so an OSCAL export -> import keeps them. Native OSCAL values win where both exist.
_OWN_FIELDS = (
    "owner",
    "asset_identifiers",
    "detector_source",
    "source_identifier",
    "status",
    "status_date",
    "deviation",
    "vendor_dependency",
    "supporting_documents",
    "resources_required",
    "original_risk_label",
    "adjusted_risk_label",
    "completed_on",
)


def _own_fields(pi: dict[str, Any]) -> dict[str, Any]:
    for p in _props(pi):
        if p.get("ns") == POAM_SYNC_NS and p.get("name") == "fields":
            try:
                value = json.loads(str(p.get("value")))
            except json.JSONDecodeError:
                _log.warning("oscal.own_fields_unreadable", poam_item=pi.get("uuid"))
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def _overlay(item: PoamItem, own: dict[str, Any], native_status: str) -> PoamItem:
    data = item.model_dump(mode="json")
    for key in _OWN_FIELDS:
        if key not in own:
            continue
        if key == "status":
            # only a finer word for the same OSCAL status (closed -> false_positive)
            try:
                finer = Status(own[key])
            except ValueError:
                continue
            if _STATUS_TO_RISK[finer] != fold(native_status):
                continue
        if key == "deviation" and data.get("deviation"):
            data["deviation"] = {**own[key], **{k: v for k, v in data[key].items() if v}}
            continue
        data[key] = own[key]
    try:
        return PoamItem.model_validate(data)
    except ValueError:
        _log.warning("oscal.own_fields_invalid", poam_id=item.poam_id)
        return item


def _risk_level(value: str) -> tuple[RiskLevel | None, str | None]:
    try:
        return parse_risk(value)
    except CellError:
        return None, value


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
            "status": _STATUS_TO_RISK[item.status],
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
        own = {k: dumped[k] for k in _OWN_FIELDS if dumped[k] not in (None, "", [], {})}
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
