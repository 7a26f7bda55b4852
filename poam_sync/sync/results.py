"""What one sync cycle reports: counts per connector, the items that failed, the connectors
left out. The engine fills it while planning, the executor while applying; the CLI, the daemon
and the demo print it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TypedDict

from poam_sync.sync.actions import Plan


@dataclass(frozen=True, slots=True)
class ItemError:
    poam_id: str
    connector: str | None
    message: str


class ItemErrorJson(TypedDict):
    poam_id: str
    connector: str | None
    message: str


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
            "errors": [_err(e) for e in self.errors],
            "failed_connectors": dict(self.failed_connectors),
        }


def _err(e: ItemError) -> ItemErrorJson:
    return {"poam_id": e.poam_id, "connector": e.connector, "message": e.message}
