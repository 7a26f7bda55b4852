"""Reading OSCAL poam-items into canonical items, references checked, problems named."""

from __future__ import annotations

import json
import re
import uuid as _uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from poam_sync.errors import InputError, Problem
from poam_sync.formats._common import (
    CellError,
    check_id,
    check_memory,
    fold,
    parse_date,
    parse_risk,
    problem,
)
from poam_sync.formats.oscal import _narrative
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


class _Bad(ValueError):
    """A value of a poam-item (or what it refers to) that cannot be used: where, and why."""

    def __init__(self, path: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


_UUID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[45][0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}",
    re.ASCII,
)  # the OSCAL uuid datatype (RFC 4122 versions 4 and 5)


def _date_at(value: object, path: str) -> date | None:
    """An OSCAL date / date-time: a value that does not parse is an error, never no date."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(path, f"{value!r} is not a date (a text value is expected)")
    try:
        return parse_date(value)
    except CellError as exc:
        raise _Bad(path, exc.message, "write it as YYYY-MM-DD or an ISO date-time") from exc


def _obj(value: object, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(path, f"an object is expected here, not {type(value).__name__}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(path, f"an array is expected here, not {type(value).__name__}")
    return value


def _opt_text(value: object, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(path, f"text is expected here, not {json.dumps(value)[:40]}")
    return value


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
    check_memory(path.name)
    fmt = "oscal-xml" if is_xml else "oscal-json"
    file = path.name
    problems: list[Problem] = []

    def entries(kind: str) -> list[Any]:
        found = doc.get(kind)
        if found is None:
            return []
        if not isinstance(found, list):
            raise InputError(
                _shape(f"'{kind}' must be an array, not {type(found).__name__}", file, None, kind)
            )
        return found

    def index(kind: str) -> dict[str, tuple[int, dict[str, Any]]]:
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, obj in enumerate(entries(kind)):
            if not isinstance(obj, dict):
                problems.append(
                    _shape(
                        f"{kind}[{i}] must be an object, not {type(obj).__name__}; it was not used",
                        file,
                        i + 1,
                        f"{kind}[{i}]",
                    )
                )
                continue
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
    if not isinstance(doc.get("metadata", {}), dict):
        raise InputError(_shape("'metadata' must be an object", file, None, "metadata"))
    poam_items = entries("poam-items")
    for i, pi in enumerate(poam_items):
        if progress:
            progress(i, len(poam_items))
        where = f"poam-items[{i}]"
        if not isinstance(pi, dict):
            problems.append(
                _shape(
                    f"{where} must be an object, not {type(pi).__name__}; it was not imported",
                    file,
                    i + 1,
                    where,
                )
            )
            continue
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
        try:
            result = _poam_item(pi, i, risks, observations, file, fmt, final_system)
        except _Bad as bad:
            result = [_bad_problem(bad, file, i)]
        except (AttributeError, TypeError, ValueError) as exc:  # a shape no check above foresaw
            result = [
                _bad_problem(
                    _Bad(where, f"an element has the wrong type ({type(exc).__name__}: {exc})"),
                    file,
                    i,
                )
            ]
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


def _shape(message: str, file: str, row: int | None, column: str) -> Problem:
    """A part of the document that has the wrong JSON type (checked where it is read)."""
    return problem(
        message,
        file=file,
        row=row,
        column=column,
        hint="check the document against the NIST OSCAL POA&M schema",
        code="bad_oscal",
    )


def _bad_problem(bad: _Bad, file: str, i: int) -> Problem:
    return problem(
        f"{bad.message}; the poam-item was not imported",
        file=file,
        row=i + 1,
        column=bad.path,
        hint=bad.hint or "fix the value (the NIST OSCAL POA&M schema says what it may be)",
        code="bad_oscal",
    )


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
    raw_uuid = pi.get("uuid")
    if raw_uuid is not None and not (isinstance(raw_uuid, str) and _UUID.fullmatch(raw_uuid)):
        raise _Bad(f"{where}.uuid", f"{raw_uuid!r} is not a uuid", "use an RFC 4122 uuid")
    title = _opt_text(pi.get("title"), f"{where}.title")
    description = _opt_text(pi.get("description"), f"{where}.description")
    remarks = _opt_text(pi.get("remarks"), f"{where}.remarks")
    for j, prop in enumerate(_list(pi.get("props"), f"{where}.props")):
        _obj(prop, f"{where}.props[{j}]")
    raw_id = _prop(pi, "poam-id")
    try:
        poam_id = check_id(raw_id).strip() if raw_id is not None else ""
    except CellError as exc:
        raise _Bad(f"{where}.props[POAM-ID]", exc.message, exc.hint) from exc
    problems: list[Problem] = []
    linked_risks: list[dict[str, Any]] = []
    for j, ref in enumerate(_list(pi.get("related-risks"), f"{where}.related-risks")):
        rid = str(_obj(ref, f"{where}.related-risks[{j}]").get("risk-uuid", "")).lower()
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
    for j, ref in enumerate(_list(pi.get("related-observations"), f"{where}.related-observations")):
        oid = str(
            _obj(ref, f"{where}.related-observations[{j}]").get("observation-uuid", "")
        ).lower()
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
    risk_at = f"risks[{risks[str(risk.get('uuid')).lower()][0]}]" if risk else where
    raw_status = _text(risk.get("status")) or "open"
    status = RISK_STATUS.get(fold(raw_status))
    if status is None:
        return [
            problem(
                f"unknown risk status {raw_status!r}",
                file=file,
                row=i + 1,
                column=f"{where} -> {risk_at}.status",
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
    title = title or _text(risk.get("title"))
    description = description or _text(risk.get("description"))
    extra |= _narrative.read(
        title=title, description=description, risks=linked_risks, observations=linked_obs
    )
    own = _own_fields(pi)
    extra.update(own.pop("extra", None) or {})

    milestones: list[Milestone] = []
    remediation_plan = None
    for n, rem in enumerate(_list(risk.get("remediations"), f"{risk_at}.remediations")):
        rem_at = f"{risk_at}.remediations[{n}]"
        lifecycle = fold(_obj(rem, rem_at).get("lifecycle", ""))
        if lifecycle == "planned" and remediation_plan is None:
            remediation_plan = _text(rem.get("description")) or None
        for t, task in enumerate(_list(rem.get("tasks"), f"{rem_at}.tasks")):
            task_at = f"{rem_at}.tasks[{t}]"
            if fold(_obj(task, task_at).get("type", "")) != "milestone":
                continue
            timing = _obj(task.get("timing"), f"{task_at}.timing")
            due = _date_at(
                _obj(timing.get("on-date"), f"{task_at}.timing.on-date").get("date"),
                f"{task_at}.timing.on-date.date",
            ) or _date_at(
                _obj(timing.get("within-date-range"), f"{task_at}.timing").get("end"),
                f"{task_at}.timing.within-date-range.end",
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
                    completed_on=_date_at(
                        _prop(task, "completed-on"), f"{task_at}.props[completed-on]"
                    ),
                )
            )
    changes: list[MilestoneChange] = []
    completed_on = None
    log_at = f"{risk_at}.risk-log.entries"
    for e, entry in enumerate(
        _list(_obj(risk.get("risk-log"), f"{risk_at}.risk-log").get("entries"), log_at)
    ):
        on = _date_at(_obj(entry, f"{log_at}[{e}]").get("start"), f"{log_at}[{e}].start")
        kind = _prop(entry, "type") or ("status-change" if entry.get("status-change") else "log")
        heading, body = _text(entry.get("title")), _text(entry.get("description"))
        # a description that repeats the title (OSCAL requires both) is said once
        text = " - ".join(t for t in (heading, body if body != heading else "") if t)
        if fold(_text(entry.get("status-change"))) == "closed":
            completed_on = on  # the closing entry: kept as the completion date
            continue
        changes.append(MilestoneChange(kind=kind, on=on, text=text))
    collected = [
        d
        for d in (
            _date_at(
                o.get("collected"),
                f"observations[{observations[str(o.get('uuid')).lower()][0]}].collected",
            )
            for o in linked_obs
        )
        if d
    ]
    vendor = _prop(risk, "vendor-dependency")
    kev = _prop(risk, "kev-catalog")
    poam_id = poam_id or str(pi.get("uuid", "")).strip()
    deadline = _date_at(risk.get("deadline"), f"{risk_at}.deadline")
    item = PoamItem(
        poam_id=poam_id or f"OSCAL-{i + 1}",
        system=system,
        uuid=str(pi.get("uuid") or _uuid.uuid4()).lower(),
        title=title,
        description=description,
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
        kev_due_date=_date_at(_prop(risk, "kev-due-date"), f"{risk_at}.props[kev-due-date]"),
        detected_on=min(collected) if collected else None,
        scheduled_completion_date=deadline,
        due_date=deadline,
        completed_on=completed_on if status.is_closed else None,
        milestones=tuple(milestones),
        milestone_changes=tuple(changes),
        remediation_plan=remediation_plan,
        comments=remarks or None,
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
