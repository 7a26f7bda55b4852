"""What one sync cycle reports: counts per connector, the items that failed, the remote values
no mapping could read, the connectors left out. The engine fills it while planning, the executor
while applying; the CLI, the daemon and the demo print it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TypedDict

from poam_sync.sync.actions import Plan


@dataclass(frozen=True, slots=True)
class ItemError:
    """One item (or one remote record not yet an item) that failed this cycle.

    ``poam_id`` is the item's, or the remote key of a record whose import failed (then
    ``item_uuid`` is None). ``connector`` None: the failure was in no one connector's part
    (planning, the canonical transaction). The engine records each as an ``item_failed``
    problem, and fetches its remote record again next cycle."""

    poam_id: str
    connector: str | None
    message: str
    item_uuid: str | None = None
    remote_id: str | None = None
    remote_key: str | None = None
    field: str | None = None


class ItemErrorJson(TypedDict):
    poam_id: str
    connector: str | None
    remote_key: str | None
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A remote value the mapping could not read: the canonical value was kept."""

    poam_id: str
    connector: str
    remote_key: str
    field: str
    code: str
    message: str
    hint: str | None


class UnreadableJson(TypedDict):
    poam_id: str
    connector: str
    remote_key: str
    field: str
    code: str
    message: str
    hint: str | None


class CycleSummary(TypedDict):
    """:meth:`CycleReport.summary`: the cycle's log line, and ``sync --json``."""

    cycle_id: str
    dry_run: bool
    pulled: dict[str, int]
    created: dict[str, int]
    updated_remote: dict[str, int]
    updated_local: int
    imported: int
    adopted: int
    conflicts: int
    problems: int
    unreadable: list[UnreadableJson]
    errors: list[ItemErrorJson]
    failed_connectors: dict[str, str]


@dataclass
class CycleReport:
    cycle_id: str
    dry_run: bool
    plan: Plan | None = None
    pulled: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated_remote: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated_local: int = 0
    imported: int = 0
    adopted: int = 0
    conflicts: int = 0
    problems: int = 0
    #: remote values no mapping could read, newly seen this cycle (kept out, reported once)
    unreadable: list[Unreadable] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    failed_connectors: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_connectors

    def summary(self) -> CycleSummary:
        return {
            "cycle_id": self.cycle_id,
            "dry_run": self.dry_run,
            "pulled": dict(self.pulled),
            "created": dict(self.created),
            "updated_remote": dict(self.updated_remote),
            "updated_local": self.updated_local,
            "imported": self.imported,
            "adopted": self.adopted,
            "conflicts": self.conflicts,
            "problems": self.problems,
            "unreadable": [_unreadable(u) for u in self.unreadable],
            "errors": [_err(e) for e in self.errors],
            "failed_connectors": dict(self.failed_connectors),
        }


def _err(e: ItemError) -> ItemErrorJson:
    return {
        "poam_id": e.poam_id,
        "connector": e.connector,
        "remote_key": e.remote_key,
        "field": e.field,
        "message": e.message,
    }


def _unreadable(u: Unreadable) -> UnreadableJson:
    return {
        "poam_id": u.poam_id,
        "connector": u.connector,
        "remote_key": u.remote_key,
        "field": u.field,
        "code": u.code,
        "message": u.message,
        "hint": u.hint,
    }
