"""What the planner is given: per connector, its links, baselines, pulled records and open
conflicts, and per field the policy that settles a true conflict.

The engine builds these from the store and the connectors (after ``prepare()``), so the
planner can be a pure function of them: a test can build them by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from poam_sync.connectors.base import RemoteRecord, SyncValue, SyncValues
from poam_sync.model import PoamItem


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """How a true conflict on one field is settled.

    ``manual``: record a conflict, change nothing, let a person decide (the default).
    ``authority``: ``owner`` (``local`` or a connector name) wins the field.
    ``newest``: the side whose change is most recent wins (remote change time vs ours).
    """

    mode: Literal["manual", "authority", "newest"] = "manual"
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class LinkInfo:
    remote_id: str
    remote_key: str
    broken: bool = False


@dataclass(frozen=True, slots=True)
class OpenConflict:
    conflict_id: int
    local: SyncValue
    remote: SyncValue


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """Everything the planner knows about one connector this cycle."""

    name: str
    synced_fields: frozenset[str]
    project: Callable[[str, SyncValue], SyncValue]
    in_scope: Callable[[PoamItem], bool]
    links: Mapping[str, LinkInfo]  # by item uuid
    baselines: Mapping[str, SyncValues]  # by item uuid
    pulled: Mapping[str, RemoteRecord]  # by remote id: records that changed since the watermark
    open_conflicts: Mapping[tuple[str, str], OpenConflict] = field(default_factory=dict)
    pending_intents: frozenset[str] = frozenset()  # item uuids with a create in flight
    allow_import: bool = False  # unknown remote records become canonical items
    system: str = "default"  # system given to imported items
    #: (item uuid, field) whose last push this connector refused (a blocked transition) while
    #: the canonical value has not changed since: not pushed again until it changes
    blocked: frozenset[tuple[str, str]] = frozenset()
