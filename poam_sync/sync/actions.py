"""What the planner decides: one frozen dataclass per kind of action, and the plan holding them.

The planner (:mod:`poam_sync.sync.plan`) makes these and never does I/O; the executor
(:mod:`poam_sync.sync.apply`) carries them out. Keeping them apart from both lets a reader see
the whole vocabulary of a sync cycle on one page, and lets a dry run print a plan without
importing anything that talks to a remote. Every action carries a ``why`` a person can read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from poam_sync.connectors.base import RemoteRecord, SyncValue, SyncValues
from poam_sync.model import Note, PoamItem

NOTES_BASELINE = "__notes__"
"""Baseline key holding the ids of the notes known to be present on a connector."""


@dataclass(frozen=True, slots=True)
class TakeRemote:
    """Write a remote value into the canonical record."""

    connector: str
    field: str
    old: SyncValue
    new: SyncValue
    actor: str | None
    why: str
    #: for the owner: the new owner's display name as the remote shows it (None: not shown)
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class PushField:
    """Write the canonical value to the remote record."""

    connector: str
    remote_id: str
    field: str
    value: SyncValue
    overrides: SyncValue  # the remote value a policy overrides (None: nothing lost)
    why: str
    overridden: bool = False


@dataclass(frozen=True, slots=True)
class SetBaseline:
    connector: str
    field: str
    value: SyncValue
    why: str


@dataclass(frozen=True, slots=True)
class RecordConflict:
    connector: str
    field: str
    baseline: SyncValue
    local: SyncValue
    remote: SyncValue
    remote_actor: str | None
    remote_changed_at: datetime | None
    why: str


@dataclass(frozen=True, slots=True)
class CloseConflict:
    """Both sides now agree: the open conflict settles itself."""

    connector: str
    field: str
    conflict_id: int
    value: SyncValue
    why: str


@dataclass(frozen=True, slots=True)
class CreateRemote:
    connector: str
    fields: SyncValues
    check_stamp_first: bool  # an earlier create may have happened before a crash
    why: str


@dataclass(frozen=True, slots=True)
class AdoptRemote:
    """A remote record carrying our stamp, with no link yet: link it, never create again."""

    connector: str
    record: RemoteRecord
    why: str


@dataclass(frozen=True, slots=True)
class TakeNote:
    connector: str
    note: Note
    why: str


@dataclass(frozen=True, slots=True)
class PushNote:
    connector: str
    remote_id: str
    note: Note
    why: str


@dataclass(frozen=True, slots=True)
class LinkBroken:
    connector: str
    why: str


Action = (
    TakeRemote
    | PushField
    | SetBaseline
    | RecordConflict
    | CloseConflict
    | CreateRemote
    | AdoptRemote
    | TakeNote
    | PushNote
    | LinkBroken
)


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """All actions for one canonical item; applied (and rolled back) as one unit."""

    item_uuid: str
    poam_id: str
    system: str
    actions: tuple[Action, ...]
    new_item: PoamItem | None = None  # set when the item is imported from a remote this cycle
    imported_from: tuple[str, RemoteRecord] | None = None


@dataclass(frozen=True, slots=True)
class PlanFailure:
    """An item the planner could not plan: it gets no actions this cycle."""

    item_uuid: str
    poam_id: str
    error: Exception
    imported_from: tuple[str, RemoteRecord] | None = None  # a record that would be imported


@dataclass(frozen=True, slots=True)
class Plan:
    items: tuple[ItemPlan, ...]
    skipped: tuple[str, ...] = ()  # remote records we do not import, with why
    failed: tuple[PlanFailure, ...] = ()  # items whose planning raised, left out of this cycle

    def actions(self) -> Iterable[tuple[ItemPlan, Action]]:
        for item_plan in self.items:
            for action in item_plan.actions:
                yield item_plan, action
