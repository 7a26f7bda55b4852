"""The planner's working parts (poam_sync/sync/plan.py): the per-item draft that each step
appends its actions to, the index of what every connector holds, and the small helpers the
steps share (value and actor wording, reading field tuples, a policy's verdict). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from operator import itemgetter
from typing import Literal

from poam_sync.connectors.base import RemoteRecord, SyncValue, SyncValues
from poam_sync.sync.actions import Action
from poam_sync.sync.state import ConnectorState, FieldPolicy, LinkInfo


def _show(value: SyncValue) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _actor(record: RemoteRecord | None, name: str) -> str:
    """`` by alice`` (the field's own history) or `` by bob (last to edit the record)``."""
    if record is None:
        return ""
    change = record.change_of(name)
    if not change.actor:
        return ""
    return f" by {change.actor}" + (
        "" if change.source == "history" else " (last to edit the record)"
    )


def _owner_name(owner: str | None) -> str:
    """Who an authority policy names: the POA&M office (``local``) or a connector."""
    return "the POA&M office" if owner in (None, "local") else owner


def _changed_at(record: RemoteRecord, name: str) -> datetime:
    return record.change_of(name).at or record.updated_at


class _Missing(Enum):
    MISSING = "missing"


_MISSING = _Missing.MISSING
"""A field with no baseline (never agreed): compared by identity, like ``object()``."""

_NO_FIELDS: frozenset[str] = frozenset()
_NO_VALUES: SyncValues = {}

_Linked = tuple[ConnectorState, LinkInfo, RemoteRecord | None]

_Getter = Callable[[SyncValues], tuple[SyncValue, ...]]
"""The values of a connector's synced fields, in its field order (``KeyError`` if one is
missing): one C call, so that two sets of values compare as one tuple."""


def _getter(fields: tuple[str, ...]) -> _Getter:
    if len(fields) < 2:  # itemgetter of one name gives the value alone, not a 1-tuple
        return lambda values: tuple(values[name] for name in fields)
    getter: _Getter = itemgetter(*fields)
    return getter


def _read(getter: _Getter, values: SyncValues) -> tuple[SyncValue, ...]:
    return getter(values)


_QuietLookups = tuple[
    Mapping[str, LinkInfo],  # links
    Mapping[str, RemoteRecord],  # pulled
    frozenset[str],  # items with open conflicts
    Mapping[str, SyncValues],  # baselines
    _Getter,
    int,  # which of ``_Index.distinct`` reads the same fields of the local values
]


@dataclass(frozen=True, slots=True)
class _Index:
    """Lookups over all connectors that ``plan`` builds once for every item."""

    stamped: Mapping[str, Mapping[str, RemoteRecord]]  # connector -> item uuid -> record
    conflicted: Mapping[str, frozenset[str]]  # connector -> item uuids with open conflicts
    fields: Mapping[str, tuple[str, ...]]  # connector -> synced fields, in a stable order
    getters: Mapping[str, _Getter]  # connector -> its synced fields' values, as one tuple
    #: per connector, what :func:`_quiet` reads for every item, looked up once per cycle
    quiet: tuple[_QuietLookups, ...]
    #: one getter per distinct set of synced fields: the local values are read once for all
    #: the connectors that sync the same fields (most often all of them)
    distinct: tuple[_Getter, ...]

    @classmethod
    def build(cls, connectors: Sequence[ConnectorState]) -> _Index:
        fields = {c.name: tuple(sorted(c.synced_fields)) for c in connectors}
        shared = {names: _getter(names) for names in dict.fromkeys(fields.values())}
        getters = {name: shared[names] for name, names in fields.items()}
        slot = {names: k for k, names in enumerate(shared)}
        conflicted = {
            c.name: frozenset(uuid for uuid, _field in c.open_conflicts) for c in connectors
        }
        return cls(
            stamped={
                c.name: {r.stamp.item_uuid: r for r in c.pulled.values() if r.stamp is not None}
                for c in connectors
            },
            conflicted=conflicted,
            fields=fields,
            getters=getters,
            quiet=tuple(
                (
                    c.links,
                    c.pulled,
                    conflicted[c.name],
                    c.baselines,
                    getters[c.name],
                    slot[fields[c.name]],
                )
                for c in connectors
            ),
            distinct=tuple(shared.values()),
        )


@dataclass(slots=True)
class _Incoming:
    connector: str
    value: SyncValue
    record: RemoteRecord


class _Draft:
    """One item's plan while the steps build it (a plain class: one is made per item)."""

    __slots__ = (
        "actions",
        "changed_at",
        "index",
        "item_uuid",
        "left_alone",
        "local",
        "offers",
        "policies",
    )

    def __init__(
        self,
        item_uuid: str,
        local: dict[str, SyncValue],
        policies: Mapping[str, FieldPolicy],
        changed_at: Mapping[str, datetime],
        index: _Index,
    ) -> None:
        self.item_uuid = item_uuid
        self.local = local  # the canonical values, as the cycle found them
        self.policies = policies
        self.changed_at = changed_at  # field -> when it last changed here
        self.index = index
        self.actions: list[Action] = []
        # connector -> fields in conflict, or whose conflict settles now: no write goes out
        self.left_alone: dict[str, set[str]] = {}
        self.offers: dict[str, list[_Incoming]] = {}  # field -> values coming in

    def leave_alone(self, connector: str, name: str) -> None:
        self.left_alone.setdefault(connector, set()).add(name)

    def offer(self, name: str, connector: str, value: SyncValue, record: RemoteRecord) -> None:
        self.offers.setdefault(name, []).append(_Incoming(connector, value, record))

    def policy(self, name: str) -> FieldPolicy:
        return self.policies.get(name) or FieldPolicy()


def _decide(
    policy: FieldPolicy,
    connector: str,
    remote_changed_at: datetime | None,
    local_changed_at: datetime | None,
) -> Literal["local", "remote", "manual"]:
    if policy.mode == "authority" and policy.owner:
        return "remote" if policy.owner == connector else "local"
    if policy.mode == "newest" and remote_changed_at and local_changed_at:
        return "remote" if remote_changed_at > local_changed_at else "local"
    return "manual"
