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


@dataclass(frozen=True, slots=True)
class Vanished:
    """A linked record the remote says is gone (found by the reconcile): its link is broken."""

    poam_id: str
    connector: str
    remote_key: str
    message: str
    hint: str


class VanishedJson(TypedDict):
    poam_id: str
    connector: str
    remote_key: str
    message: str
    hint: str


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
    claimed_elsewhere: dict[str, int]
    conflicts: int
    problems: int
    unreadable: list[UnreadableJson]
    errors: list[ItemErrorJson]
    failed_connectors: dict[str, str]
    guarded: dict[str, str]
    reconciled: dict[str, int]
    vanished: list[VanishedJson]


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
    #: per connector, creates left to another process that claimed them (store/_claims.py)
    claimed_elsewhere: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    conflicts: int = 0
    problems: int = 0
    #: remote values no mapping could read, newly seen this cycle (kept out, reported once)
    unreadable: list[Unreadable] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    failed_connectors: dict[str, str] = field(default_factory=dict)
    #: connectors a guard left out of this cycle, with what tripped (``--force`` proceeds)
    guarded: dict[str, str] = field(default_factory=dict)
    #: connectors whose ids were listed by the reconcile this cycle, with how many
    reconciled: dict[str, int] = field(default_factory=dict)
    #: linked records the reconcile found gone this cycle (their links are now broken)
    vanished: list[Vanished] = field(default_factory=list)
    stopped: bool = False
    #: whether the cycle planned every item, or only those that may need something
    #: (poam_sync.sync.working_set); and how many items it planned
    full: bool = True
    planned_items: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_connectors and not self.guarded

    def shown_errors(self) -> list[ItemError]:
        """The errors as a person reads them: a connector left out of the cycle is one line
        (its items' failures are not repeated), and the items of one connector failing for
        the same cause are one line naming them all."""
        groups: dict[tuple[str | None, str], list[ItemError]] = {}
        for e in self.errors:
            if e.connector is not None and e.connector in self.failed_connectors:
                continue  # said once, with the connector
            groups.setdefault((e.connector, e.message), []).append(e)
        shown: list[ItemError] = []
        for (connector, message), group in groups.items():
            if len(group) == 1:
                shown.append(group[0])
                continue
            ids = ", ".join(e.poam_id for e in group[:5]) + (", ..." if len(group) > 5 else "")
            shown.append(ItemError(f"{len(group)} items ({ids})", connector, message))
        return shown

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
            "claimed_elsewhere": dict(self.claimed_elsewhere),
            "conflicts": self.conflicts,
            "problems": self.problems,
            "unreadable": [_unreadable(u) for u in self.unreadable],
            "errors": [_err(e) for e in self.shown_errors()],
            "failed_connectors": dict(self.failed_connectors),
            "guarded": dict(self.guarded),
            "reconciled": dict(self.reconciled),
            "vanished": [_vanished(v) for v in self.vanished],
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


def _vanished(v: Vanished) -> VanishedJson:
    return {
        "poam_id": v.poam_id,
        "connector": v.connector,
        "remote_key": v.remote_key,
        "message": v.message,
        "hint": v.hint,
    }
