"""The Jira mapping (``mappings/jira.yaml``): canonical POA&M fields <-> Jira fields.

What it says:

- which canonical fields are synced, and to which Jira field each plain one goes (a system
  field id such as ``summary``, or a custom field by its *name*, resolved through ``/field``);
- canonical status <-> Jira status (+ resolution); several canonical statuses may share one
  Jira status: the first one listed is what the Jira side reads back as (lossy, see
  :meth:`JiraMapping.project`);
- canonical risk <-> Jira priority;
- ``read_statuses`` / ``read_priorities``: a site's own statuses and priorities, read as a
  canonical value but never written (a Jira value listed nowhere is *unknown*: the reader
  reports it and leaves the field out, it never reads it as empty);
- the correlation stamp (a custom field, a label, an issue property);
- milestones as sub-tasks (issue type, status map);
- the Task workflow's edges (Jira's REST API only shows the transitions available *now*, so
  multi-hop paths are planned on this graph, corrected by what Jira answers);
- values for required transition-screen fields other than the resolution;
- a user directory: e-mail <-> Cloud account id / Data Center username, for users whose e-mail
  the API hides.

:func:`load_jira_mapping` reports every mistake as ``[mappings/jira.yaml] statuses.x <- why``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from poam_sync._settings_io import read_yaml, validation_error
from poam_sync.connectors.base import (
    SYNCABLE_FIELDS,
    MilestoneValue,
    SyncValue,
    as_milestones,
    as_optional_text,
    as_strings,
    as_text,
)
from poam_sync.connectors.jira.client import JiraJson
from poam_sync.errors import ConfigError
from poam_sync.model import MilestoneStatus, RiskLevel, Status

__all__ = ["JiraMapping", "StatusTarget", "load_jira_mapping"]

#: canonical fields written to one plain Jira field each (the others have their own machinery)
PLAIN_FIELDS = frozenset(
    {
        "title",
        "description",
        "owner",
        "due_date",
        "scheduled_completion_date",
        "original_risk",
        "controls",
    }
)
SUMMARY_MAX = 255


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StatusTarget(_Frozen):
    status: str = Field(min_length=1)
    resolution: str | None = None


class StampMapping(_Frozen):
    field: str | None = "POA&M ID"  # custom field holding the POA&M ID (searchable by people)
    label: bool = True  # also a label ``poam-sync:<uuid>`` (exact JQL match for find-by-stamp)
    property: str = Field(default="poam-sync", min_length=1, max_length=255)

    @model_validator(mode="after")
    def _searchable(self) -> StampMapping:
        if not self.label and not self.field:
            raise ValueError("set label: true or a field, or records cannot be found by stamp")
        return self


class MilestoneMapping(_Frozen):
    mode: Literal["subtasks", "none"] = "subtasks"
    issue_type: str = "Sub-task"
    label_prefix: str = "poam-milestone:"
    removed_label: str = "poam-sync-removed"
    #: sub-task statuses of the site that read as a milestone status but are never written
    read_statuses: dict[str, MilestoneStatus] = Field(default_factory=dict)
    statuses: dict[MilestoneStatus, str] = Field(
        default_factory=lambda: {
            MilestoneStatus.OPEN: "To Do",
            MilestoneStatus.IN_PROGRESS: "In Progress",
            MilestoneStatus.COMPLETED: "Done",
            MilestoneStatus.ARCHIVED: "Done",
        }
    )

    @model_validator(mode="after")
    def _all_statuses(self) -> MilestoneMapping:
        missing = [s.value for s in MilestoneStatus if s not in self.statuses]
        if self.mode == "subtasks" and missing:
            raise ValueError(f"no Jira status for milestone status(es) {missing}")
        return self


class UserEntry(_Frozen):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    account_id: str | None = None  # Cloud
    username: str | None = None  # Data Center

    @model_validator(mode="after")
    def _some_id(self) -> UserEntry:
        if not self.account_id and not self.username:
            raise ValueError("give account_id (Cloud) or username (Data Center)")
        return self


class JiraMapping(_Frozen):
    issue_type: str = "Task"
    sync: tuple[str, ...]
    fields: dict[str, str] = Field(default_factory=dict)
    statuses: dict[Status, StatusTarget]
    priorities: dict[RiskLevel, str] = Field(default_factory=dict)
    default_priority: str = "Medium"
    #: Jira status (or ``"Status / Resolution"``) -> canonical status, for reading only
    read_statuses: dict[str, Status] = Field(default_factory=dict)
    #: Jira priority -> canonical risk, for reading only (a site's own priority scheme)
    read_priorities: dict[str, RiskLevel] = Field(default_factory=dict)
    stamp: StampMapping = StampMapping()
    milestones: MilestoneMapping = MilestoneMapping()
    workflow: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    transition_fields: JiraJson = Field(default_factory=dict)  # Jira field id -> its JSON
    users: tuple[UserEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> JiraMapping:
        unknown = [f for f in self.sync if f not in SYNCABLE_FIELDS]
        if unknown:
            raise ValueError(f"cannot sync {unknown}; syncable: {sorted(SYNCABLE_FIELDS)}")
        for name in self.sync:
            if name in PLAIN_FIELDS and name not in self.fields:
                raise ValueError(f"{name} is synced but has no Jira field under fields")
        stray = [f for f in self.fields if f not in PLAIN_FIELDS]
        if stray:
            raise ValueError(f"fields.{stray[0]}: not a plain field ({sorted(PLAIN_FIELDS)})")
        if "status" in self.sync:
            missing = [s.value for s in Status if s not in self.statuses]
            if missing:
                raise ValueError(f"statuses: no Jira status for {missing}")
        if "original_risk" in self.sync:
            missing = [r.value for r in RiskLevel if r not in self.priorities]
            if missing:
                raise ValueError(f"priorities: no Jira priority for {missing}")
        if "milestones" in self.sync and self.milestones.mode != "subtasks":
            raise ValueError("milestones are synced but milestones.mode is not subtasks")
        written = {name.lower() for name in self.priorities.values()}
        twice = [name for name in self.read_priorities if name.lower() in written]
        if twice:
            raise ValueError(
                f"read_priorities.{twice[0]}: already under priorities (it reads as that risk)"
            )
        blank = [k for k in (*self.read_statuses, *self.read_priorities) if not k.strip()]
        if blank:
            raise ValueError("read_statuses / read_priorities: a Jira name cannot be blank")
        return self

    # -- lookups --------------------------------------------------------------------------

    @property
    def synced_fields(self) -> frozenset[str]:
        return frozenset(self.sync)

    def status_for(self, jira_status: str, resolution: str | None) -> Status | None:
        """The canonical status a Jira status (+ resolution) reads back as; None when unknown.

        ``statuses`` first (the first entry matching status and resolution wins; an entry
        without a resolution matches any), then ``read_statuses`` (``"Status / Resolution"``,
        then ``"Status"``). When several canonical statuses share the Jira status and none
        names this resolution, the issue is unknown rather than guessed (``Done`` with
        ``Duplicate`` could be completed or false_positive); when only one does, the status
        alone says it.
        """
        name = jira_status.lower()
        res = resolution.lower() if resolution else None
        candidates: list[Status] = []
        for canonical, target in self.statuses.items():
            if target.status.lower() != name:
                continue
            if target.resolution is None or (res is not None and target.resolution.lower() == res):
                return canonical
            candidates.append(canonical)
        extra = {k.lower(): v for k, v in self.read_statuses.items()}
        if res is not None and f"{name} / {res}" in extra:
            return extra[f"{name} / {res}"]
        if name in extra:
            return extra[name]
        return candidates[0] if len(set(candidates)) == 1 else None

    def knows_status(self, jira_status: str) -> bool:
        """Whether some entry of ``statuses`` writes this Jira status (only the resolution
        can then be unknown)."""
        return any(t.status.lower() == jira_status.lower() for t in self.statuses.values())

    def risk_for(self, priority: str | None) -> RiskLevel | None:
        """The canonical risk of a Jira priority (``priorities``, then ``read_priorities``);
        None when the mapping does not know it."""
        if priority is None:
            return None
        low = priority.lower()
        for risk, name in self.priorities.items():
            if name.lower() == low:
                return risk
        return next((r for n, r in self.read_priorities.items() if n.lower() == low), None)

    def milestone_status_for(self, jira_status: str) -> MilestoneStatus | None:
        """The milestone status of a sub-task status; None when the mapping does not know it."""
        low = jira_status.lower()
        for status, name in self.milestones.statuses.items():
            if name.lower() == low:
                return status
        extra = self.milestones.read_statuses
        return next((m for n, m in extra.items() if n.lower() == low), None)

    def user(self, email: str) -> UserEntry | None:
        low = email.lower()
        return next((u for u in self.users if u.email.lower() == low), None)

    def user_by_id(self, ident: str) -> UserEntry | None:
        return next((u for u in self.users if ident in (u.account_id, u.username)), None)

    # -- the lossy projection (what survives a round trip through Jira) -------------------

    def project(self, field: str, value: SyncValue) -> SyncValue:
        if field == "title":
            return single_line(as_text(value, field))
        if field == "description":
            return as_text(value, field)
        if field == "status" and value is not None:
            status = as_text(value, field)
            target = self.statuses[Status(status)]
            back = self.status_for(target.status, target.resolution)
            return back.value if back else status
        if field == "original_risk":
            risk_value = as_optional_text(value, field)
            name = self.priorities[RiskLevel(risk_value)] if risk_value else self.default_priority
            risk = self.risk_for(name)
            return risk.value if risk else None
        if field == "controls":
            return list(dict.fromkeys(as_label(c) for c in as_strings(value, field)))
        if field == "milestones":
            return self.project_milestones(value)
        return value

    def project_milestones(self, value: SyncValue) -> list[MilestoneValue]:
        """Milestones as they read back from sub-tasks, in id order."""
        return [self.project_milestone(m) for m in sort_milestones(as_milestones(value))]

    @cached_property
    def milestone_read_back(self) -> dict[str, str]:
        """What each milestone status reads back as through its sub-task status (computed once:
        the projection's hot path)."""
        out: dict[str, str] = {}
        for status, name in self.milestones.statuses.items():
            back = self.milestone_status_for(name)
            out[status.value] = back.value if back else status.value
        return out

    def project_milestone(self, m: MilestoneValue) -> MilestoneValue:
        status = m["status"] or MilestoneStatus.OPEN
        back = self.milestone_read_back.get(status)
        if back is None:  # not a milestone status (ValueError), or not mapped (KeyError)
            back = self.milestone_read_back[MilestoneStatus(status)]
        return {
            "id": m["id"],
            "description": single_line(m["description"]),
            "due_date": m["due_date"],
            "status": back,
        }


def single_line(text: str) -> str:
    """Jira summaries are one line of at most 255 characters.

    Each line break (``\\r\\n``, ``\\r`` or ``\\n``) folds to one space: Jira refuses a summary
    holding one ("The summary is invalid because it contains newline characters.", met by
    DefectDojo/django-DefectDojo#4954 on Cloud and release-engineering/Sync2Jira#383 on Data
    Center)."""
    return _NEWLINES.sub(" ", text).strip()[:SUMMARY_MAX].rstrip()


def as_label(text: str) -> str:
    """Jira labels cannot hold spaces."""
    return re.sub(r"\s+", "_", text.strip())


_NEWLINES = re.compile(r"\r\n|\r|\n")
_DIGITS = re.compile(r"(\d+)")


def _natural(text: str) -> tuple[int | str, ...]:
    # split on a group alternates text and digits, so equal positions hold equal types
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(text))


def sort_milestones(items: Iterable[MilestoneValue]) -> list[MilestoneValue]:
    """Milestones in natural id order (``2`` before ``10``)."""
    return sorted(items, key=lambda m: _natural(m["id"]))


def load_jira_mapping(path: Path) -> JiraMapping:
    """Read and check a Jira mapping file; :class:`ConfigError` naming each wrong option."""
    label = f"mappings/{path.name}"
    raw = read_yaml(path, label=label)
    if not isinstance(raw, dict):
        raise ConfigError(f"[{label}] must be a mapping of options, not {type(raw).__name__}")
    try:
        return JiraMapping.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(
            exc, section=label, hint="see docs/jira.md for the mapping file's options"
        ) from None
