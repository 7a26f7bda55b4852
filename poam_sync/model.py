"""The canonical POA&M record.

Pure data: pydantic models frozen with ``extra="forbid"`` and no I/O. Every other part of
poam-sync (formats, store, connectors, sync) speaks these types; this module imports nothing
of ours.

The JSON field names are a public interface (``--json`` output, exports, later issues): they
must not change.
"""

from __future__ import annotations

import functools
import re
import uuid as _uuid
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, TypeAlias, TypedDict

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

JsonValue: TypeAlias = pydantic.JsonValue
"""A JSON value: str, int, float, bool, None, a list of them or a dict of str to them.

pydantic's recursive alias: mypy checks it, and a model field of this type (``extra``) is
validated as JSON. Its lists and dicts are invariant: a ``list[str]`` is not a
``list[JsonValue]`` to mypy, nor a TypedDict a ``dict[str, JsonValue]``, so code that holds
synced values speaks :data:`SyncValue` instead."""


# -- the values connectors exchange (see poam_sync.connectors.base) --------------------------


class MilestoneValue(TypedDict):
    """One milestone as connectors speak it: exactly these four keys."""

    id: str
    description: str
    due_date: str | None  # YYYY-MM-DD
    status: str  # a poam_sync.model.MilestoneStatus value


SyncValue: TypeAlias = str | list[str] | list[MilestoneValue] | None
"""The value of one synced field (the table in :mod:`poam_sync.connectors.base`): text (also
status, risk, owner and dates), a list of control ids, a list of milestones, or None."""

SyncValues: TypeAlias = Mapping[str, SyncValue]
"""Synced fields by canonical name: what a connector reads, and what it is asked to write."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Status(StrEnum):
    """Canonical lifecycle of a POA&M item (crosswalk in docs/formats.md)."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    REMEDIATING = "remediating"
    DEVIATION_REQUESTED = "deviation_requested"
    RISK_ACCEPTED = "risk_accepted"
    COMPLETED = "completed"
    FALSE_POSITIVE = "false_positive"
    NOT_APPLICABLE = "not_applicable"
    ARCHIVED = "archived"

    @property
    def is_closed(self) -> bool:
        return self in CLOSED_STATUSES


CLOSED_STATUSES = frozenset(
    {Status.COMPLETED, Status.FALSE_POSITIVE, Status.NOT_APPLICABLE, Status.ARCHIVED}
)


class RiskLevel(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    CRITICAL = "critical"


class DeviationStatus(StrEnum):
    """State of one deviation type (FedRAMP Yes/No/Pending; OSCAL FedRAMP extension values)."""

    NO = "no"
    INVESTIGATING = "investigating"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class MilestoneStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class Person(_Frozen):
    """Point of contact (FedRAMP) or Office/Org (eMASS). Any part may be unknown."""

    name: str | None = None
    email: str | None = None
    org: str | None = None


class Deviation(_Frozen):
    risk_adjustment: DeviationStatus | None = None
    false_positive: DeviationStatus | None = None
    operational_requirement: DeviationStatus | None = None
    rationale: str | None = None


class VendorDependency(_Frozen):
    dependent: bool
    last_check_in: date | None = None
    product: str | None = None


class Milestone(_Frozen):
    id: str
    description: str
    due_date: date | None = None
    status: MilestoneStatus = MilestoneStatus.OPEN
    completed_on: date | None = None


class MilestoneChange(_Frozen):
    """One entry of FedRAMP's "Milestone Changes" history (also extensions of the due date)."""

    kind: str  # "new", "update", "complete", "extension" or the source's own word
    on: date | None = None
    text: str


class Note(_Frozen):
    """A comment or work note exchanged with Jira / ServiceNow.

    ``origin`` is where it was first written (``local``, or a connector name); ``source_id``
    the id it has there. Notes are unioned across sides, never echoed back.
    """

    id: str = Field(default_factory=lambda: _uuid.uuid4().hex)
    origin: str = "local"
    source_id: str | None = None
    author: str | None = None
    created: datetime | None = None
    body: str


class Provenance(_Frozen):
    format: str
    file: str | None = None
    sheet: str | None = None
    row: int | None = None


_CONTROL_RE = re.compile(r"^\s*([A-Za-z]{2})\s*-\s*0*(\d+)\s*(?:([(.])\s*0*(\d+)\s*\)?)?\s*$")


@functools.lru_cache(maxsize=8192)  # a small vocabulary, met on every item built or loaded
def normalize_control(raw: str) -> str:
    """``ac-2.1`` (OSCAL), ``AC-02 (1)``, ``ac-2(1)`` -> ``AC-2(1)``; anything else is kept
    stripped. An upper-case dotted id is an eMASS assessment procedure and stays one:
    ``SA-1.4`` is AP 4 of SA-1 (the eMASS template: "enter the appropriate AP Acronym (e.g.,
    AC-3.1)"), not the enhancement SA-1(4); OSCAL writes its control ids in lower case."""
    m = _CONTROL_RE.match(raw)
    if not m:
        return raw.strip()
    family, number, mark, enhancement = m.groups()
    out = f"{family.upper()}-{int(number)}"
    if not enhancement:
        return out
    if mark == "." and family.isupper():
        return f"{out}.{int(enhancement)}"
    return f"{out}({int(enhancement)})"


class PoamItem(_Frozen):
    """One POA&M item: FedRAMP row, eMASS item or OSCAL poam-item, without loss."""

    poam_id: Annotated[str, Field(min_length=1)]
    system: str = "default"
    uuid: str = Field(default_factory=lambda: str(_uuid.uuid4()))

    title: str = ""
    description: str = ""
    controls: tuple[str, ...] = ()
    detector_source: str | None = None
    source_identifier: str | None = None
    asset_identifiers: tuple[str, ...] = ()
    cves: tuple[str, ...] = ()

    owner: Person | None = None
    status: Status = Status.OPEN

    original_risk: RiskLevel | None = None
    adjusted_risk: RiskLevel | None = None
    original_risk_label: str | None = None  # the source's own word: "Very High", "CAT I", ...
    adjusted_risk_label: str | None = None
    deviation: Deviation | None = None
    vendor_dependency: VendorDependency | None = None
    kev: bool | None = None
    kev_due_date: date | None = None

    detected_on: date | None = None
    scheduled_completion_date: date | None = None
    due_date: date | None = None
    completed_on: date | None = None
    status_date: date | None = None

    milestones: tuple[Milestone, ...] = ()
    milestone_changes: tuple[MilestoneChange, ...] = ()
    remediation_plan: str | None = None
    resources_required: str | None = None
    comments: str | None = None
    supporting_documents: str | None = None
    notes: tuple[Note, ...] = ()

    provenance: Provenance | None = None
    extra: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("controls", mode="before")
    @classmethod
    def _normalize_controls(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(normalize_control(str(v)) for v in value if str(v).strip())
        return value

    @property
    def key(self) -> tuple[str, str]:
        """The human identity: (system, poam_id)."""
        return (self.system, self.poam_id)


# Fields that describe where a value came from rather than the weakness itself: a change to
# them alone is not a change of the item (re-importing the same rows from a renamed file
# writes nothing).
NON_TRACKED_FIELDS = frozenset({"uuid", "provenance"})
TRACKED_FIELDS: tuple[str, ...] = tuple(
    name for name in PoamItem.model_fields if name not in NON_TRACKED_FIELDS
)


def field_values(item: PoamItem) -> dict[str, JsonValue]:
    """The item's tracked fields as canonical JSON values (dates as ``YYYY-MM-DD``)."""
    dumped = item.model_dump(mode="json")
    return {name: dumped[name] for name in TRACKED_FIELDS}


def diff_items(old: PoamItem | None, new: PoamItem) -> dict[str, tuple[JsonValue, JsonValue]]:
    """Changed tracked fields as ``{field: (old, new)}`` (JSON values); all when ``old`` is None."""
    new_values = field_values(new)
    if old is None:
        return {k: (None, v) for k, v in new_values.items() if v not in (None, "", [], {})}
    old_values = field_values(old)
    return {k: (old_values[k], v) for k, v in new_values.items() if old_values[k] != v}


def with_fields(item: PoamItem, values: Mapping[str, object]) -> PoamItem:
    """A copy of ``item`` with some tracked fields replaced by canonical JSON values.

    The values are validated here, as a whole new item (a ``ValidationError`` for a wrong one),
    so any value is taken: a field's JSON value, a synced value, a ``date``..."""
    unknown = set(values) - set(TRACKED_FIELDS)
    if unknown:
        raise ValueError(f"not tracked fields of a POA&M item: {sorted(unknown)}")
    data = item.model_dump(mode="json")
    data.update(values)
    return PoamItem.model_validate(data)
