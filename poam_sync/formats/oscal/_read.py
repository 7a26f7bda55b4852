"""Reading OSCAL poam-items into canonical items, references checked, problems named."""

from __future__ import annotations

import json
import uuid as _uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from poam_sync.errors import Problem
from poam_sync.formats._common import (
    CellError,
    fold,
    parse_date,
    parse_risk,
    problem,
)
from poam_sync.formats.oscal._load import load_json, load_xml
from poam_sync.formats.oscal._native import Index
from poam_sync.formats.oscal._vocab import (
    FEDRAMP_DEVIATION,
    POAM_SYNC_NS,
    RISK_STATUS,
    ROOT,
    STATUS_TO_RISK,
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

_log = structlog.get_logger(__name__)


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
    doc = (load_xml(path) if is_xml else load_json(path))[ROOT]
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
    native = Index.of(doc)
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
        result = native.complete(result, pi)  # owner, assets, status date where OSCAL has them
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
    """The system a POA&M is about, the same in every revision of it: its ``system-id``, else
    its metadata title. The ``import-ssp`` href is no identity (it names the SSP's file, which
    changes from one revision to the next), so month 2 lands where month 1 did."""
    sid = doc.get("system-id")
    if isinstance(sid, dict) and sid.get("id"):
        return str(sid["id"]).strip()
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
    status = RISK_STATUS.get(fold(raw_status))
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
        return FEDRAMP_DEVIATION.get(fold(value)) if value else None

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
        heading, body = _text(entry.get("title")), _text(entry.get("description"))
        # a description that repeats the title (OSCAL requires both) is said once
        text = " - ".join(t for t in (heading, body if body != heading else "") if t)
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
OWN_FIELDS = (
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
    for key in OWN_FIELDS:
        if key not in own:
            continue
        if key == "status":
            # only a finer word for the same OSCAL status (closed -> false_positive)
            try:
                finer = Status(own[key])
            except ValueError:
                continue
            if STATUS_TO_RISK[finer] != fold(native_status):
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
