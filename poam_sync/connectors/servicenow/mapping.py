"""The ServiceNow mapping: which record fields hold which canonical fields, and how values map.

Loaded from the file the connector's ``mapping:`` names (the starter is ``mapping.yaml`` beside
this module, documented line by line) by :func:`load_servicenow_mapping`. Pure data and pure
transforms: :mod:`.metadata` discovers choice codes (``sys_choice``) and column lengths
(``sys_dictionary``), :mod:`.directory` users (``sys_user``); this module speaks choice *labels*
and e-mails.

Mappings can be lossy (GRC's playbook has five states, the canonical record nine statuses):
:meth:`ServiceNowMapping.project` is the canonical value that survives a round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from poam_sync._settings_io import read_yaml, validation_error
from poam_sync.connectors.base import (
    SYNCABLE_FIELDS,
    MilestoneValue,
    SyncValue,
    as_milestones,
    as_strings,
    as_text,
)
from poam_sync.errors import ConfigError
from poam_sync.model import MilestoneStatus, RiskLevel, Status, normalize_control


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MilestoneMapping(_Frozen):
    """Milestones as child records of the POA&M record."""

    table: str | None = None  # None: the connector settings' ``milestone_table``
    parent_field: str = "parent"
    id_field: str = "correlation_id"
    description_field: str = "short_description"
    due_date_field: str = "due_date"
    state_field: str = "state"
    states: dict[MilestoneStatus, str] = Field(
        default_factory=lambda: {
            MilestoneStatus.OPEN: "Open",
            MilestoneStatus.IN_PROGRESS: "Work in Progress",
            MilestoneStatus.COMPLETED: "Closed Complete",
            MilestoneStatus.ARCHIVED: "Closed Skipped",
        }
    )

    @model_validator(mode="after")
    def _every_status(self) -> MilestoneMapping:
        missing = [s.value for s in MilestoneStatus if s not in self.states]
        if missing:
            raise ValueError(f"states: no label for milestone status(es) {', '.join(missing)}")
        return self

    def read_back(self, label: str) -> MilestoneStatus | None:
        for status, mapped in self.states.items():
            if mapped == label:
                return status
        return None

    @cached_property
    def round_trip(self) -> dict[str, str]:
        """What each milestone status reads back as through its state label (computed once:
        the projection's hot path)."""
        return {
            status.value: (self.read_back(label) or status).value
            for status, label in self.states.items()
        }


_DEFAULT_MILESTONES = MilestoneMapping()


class ServiceNowMapping(_Frozen):
    """Canonical field -> ServiceNow column, and the value maps for choice fields."""

    fields: dict[str, str]
    states: dict[Status, str] = Field(default_factory=dict)
    #: label -> status it reads back as: for a label several statuses share, or for a state
    #: poam-sync never writes but an analyst may pick (read-only)
    state_read_back: dict[str, Status] = Field(default_factory=dict)
    risks: dict[RiskLevel, str] = Field(default_factory=dict)
    #: label -> risk it reads back as, for a priority no risk writes ("5 - Planning": low)
    risk_read_back: dict[str, RiskLevel] = Field(default_factory=dict)
    milestones: MilestoneMapping | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ServiceNowMapping:
        unknown = sorted(set(self.fields) - SYNCABLE_FIELDS - {"milestones"})
        if unknown:
            raise ValueError(
                f"fields: {', '.join(unknown)} cannot be synced "
                f"(choose from {', '.join(sorted(SYNCABLE_FIELDS - {'milestones'}))})"
            )
        if "milestones" in self.fields:
            raise ValueError("fields: milestones are configured in the 'milestones' section")
        if "status" in self.fields:
            missing = [s.value for s in Status if s not in self.states]
            if missing:
                raise ValueError(
                    f"states: no state label for {', '.join(missing)}; every canonical status "
                    "needs one (several may share a label)"
                )
            written = set(self.states.values())
            for label, status in self.state_read_back.items():
                # A label some status writes reads back as one of those statuses; a label no
                # status writes (a state only people pick) may read back as any status.
                if label in written and self.states.get(status) != label:
                    raise ValueError(
                        f"state_read_back.{label}: {status.value} is not mapped to {label!r} "
                        "under states"
                    )
            shared = self._shared_labels()
            unresolved = [label for label in shared if label not in self.state_read_back]
            if unresolved:
                raise ValueError(
                    "state_read_back: say which status each shared label reads back as: "
                    + "; ".join(
                        f"{label} <- one of {', '.join(shared[label])}" for label in unresolved
                    )
                )
        if "original_risk" in self.fields:
            missing = [r.value for r in RiskLevel if r not in self.risks]
            if missing:
                raise ValueError(f"risks: no priority label for {', '.join(missing)}")
            written_risks = set(self.risks.values())
            for label, risk in self.risk_read_back.items():
                if label in written_risks and self.risks.get(risk) != label:
                    raise ValueError(
                        f"risk_read_back.{label}: {risk.value} is not mapped to {label!r} "
                        "under risks (a label a risk writes reads back as that risk)"
                    )
        return self

    def _shared_labels(self) -> dict[str, list[str]]:
        by_label: dict[str, list[str]] = {}
        for status, label in self.states.items():
            by_label.setdefault(label, []).append(status.value)
        return {label: s for label, s in by_label.items() if len(s) > 1}

    # -- what it syncs -----------------------------------------------------------------------

    @property
    def synced_fields(self) -> frozenset[str]:
        names = set(self.fields)
        if self.milestones is not None:
            names.add("milestones")
        return frozenset(names)

    # -- value maps ------------------------------------------------------------------------------

    def status_from_label(self, label: str) -> Status | None:
        if label in self.state_read_back:
            return self.state_read_back[label]
        for status, mapped in self.states.items():
            if mapped == label:
                return status
        return None

    def risk_from_label(self, label: str) -> RiskLevel | None:
        if label in self.risk_read_back:
            return self.risk_read_back[label]
        for risk, mapped in self.risks.items():
            if mapped == label:
                return risk
        return None

    # -- projection --------------------------------------------------------------------------

    def project(
        self, field: str, value: SyncValue, max_lengths: Mapping[str, int] | None = None
    ) -> SyncValue:
        """The canonical value ``value`` becomes after a round trip through ServiceNow."""
        lengths = max_lengths or {}
        if value is None:
            return [] if field in ("controls", "milestones") else None
        if field in ("title", "description"):
            text = as_text(value, field)
            limit = lengths.get(self.fields.get(field, ""))
            return text[:limit] if limit else text
        if field == "status":
            status = as_text(value, field)
            label = self.states.get(Status(status))
            back = self.status_from_label(label) if label else None
            return back.value if back else status
        if field == "original_risk":
            risk_value = as_text(value, field)
            label = self.risks.get(RiskLevel(risk_value))
            risk = self.risk_from_label(label) if label else None
            return risk.value if risk else risk_value
        if field == "owner":
            return as_text(value, field).strip().lower() or None
        if field in ("due_date", "scheduled_completion_date"):
            return as_text(value, field)[:10] or None
        if field == "controls":
            return split_controls(join_controls(as_strings(value, field)))
        if field == "milestones":
            return self.project_milestones(value, lengths)
        return value

    def project_milestones(
        self, value: SyncValue, max_lengths: Mapping[str, int] | None = None
    ) -> list[MilestoneValue]:
        out: list[MilestoneValue] = []
        m = self.milestones or _DEFAULT_MILESTONES
        limit = (max_lengths or {}).get(f"milestone.{m.description_field}")
        round_trip = m.round_trip
        for raw in as_milestones(value):
            status = raw["status"] or MilestoneStatus.OPEN
            back = round_trip.get(status)
            if back is None:  # not a milestone status: ValueError, as ever
                back = round_trip[MilestoneStatus(status)]
            desc, due = raw["description"], raw["due_date"]
            out.append(
                {
                    "id": raw["id"],
                    "description": desc[:limit] if limit else desc,
                    "due_date": due[:10] if due else None,
                    "status": back,
                }
            )
        return sort_milestones(out)


def join_controls(controls: Sequence[str]) -> str:
    return ", ".join(c.strip() for c in controls if c.strip())


def split_controls(text: str) -> list[str]:
    seen: list[str] = []
    for part in text.split(","):
        if part.strip():
            control = normalize_control(part)
            if control not in seen:
                seen.append(control)
    return seen


_RUNS = re.compile(r"\d+|\D+")


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _RUNS.findall(text))


def sort_milestones(items: Iterable[MilestoneValue]) -> list[MilestoneValue]:
    """Milestones in natural id order (``2`` before ``10``)."""
    return sorted(items, key=lambda m: _natural(m["id"]))


def parse_servicenow_mapping(data: object, *, source: str) -> ServiceNowMapping:
    """Validate already-parsed YAML; errors read ``[source] where <- what``."""
    if not isinstance(data, dict):
        raise ConfigError(f"[{source}] (top level) <- expected a mapping of sections")
    try:
        return ServiceNowMapping.model_validate(data)
    except ValidationError as exc:
        raise validation_error(
            exc, section=source, hint="fix the mapping file and run again"
        ) from None


def load_servicenow_mapping(path: Path) -> ServiceNowMapping:
    """Read and validate a ServiceNow mapping file."""
    source = path.as_posix()
    data = read_yaml(
        path, label=source, missing_hint="create it from the documented mappings/servicenow.yaml"
    )
    return parse_servicenow_mapping(data, source=source)
