"""The sync plan: a pure three-way merge from state to actions. No I/O happens here.

For every canonical item, every connector it is linked to and every field that connector syncs,
three values are compared, all in the connector's *projection* (the canonical value that
survives a round trip through that remote, so lossy mappings never look like changes):

* ``baseline``: what the canonical record and this connector last agreed on;
* ``local``: the canonical value now;
* ``remote``: the remote value now (the baseline when the record did not change remotely).

The cases, in the spirit of vdirsyncer's ``sync`` (itself after the classic three-way file
synchronizer of Balasubramaniam and Pierce, "What is a file synchronizer?", 1998):

==============================  ================================================================
only the remote moved            take it into the canonical record
only the local value moved       push it to the remote
both moved to the same value     record the new baseline
both moved differently           a conflict, settled by the field's policy or left to a person
==============================  ================================================================

Incoming changes are gathered from every connector first, then outgoing writes are planned
from the new canonical values, so a change made in Jira reaches ServiceNow in the same cycle.
Two connectors that moved the same field to different values are a conflict too.

Every action carries a ``why`` that a person can read (``sync --dry-run`` prints it).
"""

from __future__ import annotations

import gc
import uuid as _uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from poam_sync.connectors.base import RemoteRecord
from poam_sync.model import JsonValue, Note, PoamItem
from poam_sync.sync.values import from_sync, to_sync

NOTES_BASELINE = "__notes__"
"""Baseline key holding the ids of the notes known to be present on a connector."""

_IMPORT_NAMESPACE = _uuid.UUID("8d0f3a56-6a43-4c3f-9e55-2f1f1c4a9b10")


# -- inputs ----------------------------------------------------------------------------------


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
    local: JsonValue
    remote: JsonValue


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """Everything the planner knows about one connector this cycle."""

    name: str
    synced_fields: frozenset[str]
    project: Callable[[str, JsonValue], JsonValue]
    in_scope: Callable[[PoamItem], bool]
    links: Mapping[str, LinkInfo]  # by item uuid
    baselines: Mapping[str, Mapping[str, JsonValue]]  # by item uuid
    pulled: Mapping[str, RemoteRecord]  # by remote id: records that changed since the watermark
    open_conflicts: Mapping[tuple[str, str], OpenConflict] = field(default_factory=dict)
    pending_intents: frozenset[str] = frozenset()  # item uuids with a create in flight
    allow_import: bool = False  # unknown remote records become canonical items
    system: str = "default"  # system given to imported items


# -- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TakeRemote:
    """Write a remote value into the canonical record."""

    connector: str
    field: str
    old: JsonValue
    new: JsonValue
    actor: str | None
    why: str


@dataclass(frozen=True, slots=True)
class PushField:
    """Write the canonical value to the remote record."""

    connector: str
    remote_id: str
    field: str
    value: JsonValue
    overrides: JsonValue | None  # the remote value a policy overrides (None: nothing lost)
    why: str
    overridden: bool = False


@dataclass(frozen=True, slots=True)
class SetBaseline:
    connector: str
    field: str
    value: JsonValue
    why: str


@dataclass(frozen=True, slots=True)
class RecordConflict:
    connector: str
    field: str
    baseline: JsonValue
    local: JsonValue
    remote: JsonValue
    remote_actor: str | None
    remote_changed_at: datetime | None
    why: str


@dataclass(frozen=True, slots=True)
class CloseConflict:
    """Both sides now agree: the open conflict settles itself."""

    connector: str
    field: str
    conflict_id: int
    value: JsonValue
    why: str


@dataclass(frozen=True, slots=True)
class CreateRemote:
    connector: str
    fields: Mapping[str, JsonValue]
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
class Plan:
    items: tuple[ItemPlan, ...]
    skipped: tuple[str, ...] = ()  # remote records we do not import, with why

    def actions(self) -> Iterable[tuple[ItemPlan, Action]]:
        for item_plan in self.items:
            for action in item_plan.actions:
                yield item_plan, action


# -- the planner -----------------------------------------------------------------------------


def _show(value: JsonValue) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _actor(record: RemoteRecord | None) -> str:
    return f" by {record.updated_by}" if record is not None and record.updated_by else ""


@dataclass(slots=True)
class _Incoming:
    connector: str
    value: JsonValue
    record: RemoteRecord


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


def plan_item(
    item: PoamItem,
    connectors: Sequence[ConnectorState],
    policies: Mapping[str, FieldPolicy],
    *,
    local_changed_at: Mapping[str, datetime] | None = None,
    index: _Index | None = None,
) -> ItemPlan:
    """The actions for one canonical item across all connectors.

    ``index``: lookups over all connectors that ``plan`` builds once for every item (built
    here when not given).
    """
    local_changed_at = local_changed_at or {}
    if index is None:
        index = _Index.build(connectors)
    stamped = index.stamped
    actions: list[Action] = []
    local = to_sync(item)
    conflicted: set[tuple[str, str]] = set()  # (connector, field) left alone this cycle
    settled: set[tuple[str, str]] = set()  # (connector, field) whose conflict settles now
    incoming: dict[str, list[_Incoming]] = {}

    linked: list[tuple[ConnectorState, LinkInfo, RemoteRecord | None]] = []
    for c in connectors:
        link = c.links.get(item.uuid)
        if link is None:
            continue
        if link.broken:
            continue
        linked.append((c, link, c.pulled.get(link.remote_id)))

    # Phase 1: what each linked connector says, field by field.
    for c, link, record in linked:
        in_conflict = item.uuid in index.conflicted[c.name]
        if record is None and not in_conflict:
            continue  # not changed remotely since the baseline: nothing comes in
        base = c.baselines.get(item.uuid, {})
        for name in index.fields[c.name]:
            if name not in base:
                # Never agreed on this field (a new link, or a newly synced field): the
                # canonical record is the hub, so phase 2 pushes it or records the agreement.
                continue
            b_val = base[name]
            r_val = record.fields.get(name, b_val) if record is not None else b_val
            open_c = c.open_conflicts.get((item.uuid, name)) if in_conflict else None
            if open_c is None and r_val == b_val:
                continue  # the remote did not move this field
            l_val = c.project(name, local.get(name))
            if open_c is not None:
                if record is None:
                    r_val = open_c.remote  # not pulled again: the remote still holds its value
                if l_val == r_val:
                    settled.add((c.name, name))
                    actions.append(
                        CloseConflict(
                            c.name,
                            name,
                            open_c.conflict_id,
                            r_val,
                            f"{name}: both sides now hold {_show(r_val)}; the conflict settles",
                        )
                    )
                    actions.append(SetBaseline(c.name, name, r_val, "agreed value"))
                else:
                    conflicted.add((c.name, name))
                    if (open_c.local, open_c.remote) != (l_val, r_val):
                        actions.append(
                            RecordConflict(
                                c.name,
                                name,
                                b_val,
                                l_val,
                                r_val,
                                record.updated_by if record else None,
                                record.updated_at if record else None,
                                f"{name}: still in conflict with {c.name} (values changed)",
                            )
                        )
                continue
            remote_moved = r_val != b_val
            local_moved = l_val != b_val
            if not remote_moved or record is None:
                continue
            if l_val == r_val:
                continue  # both moved the same way: phase 2 records the baseline
            if not local_moved:
                incoming.setdefault(name, []).append(_Incoming(c.name, r_val, record))
                continue
            policy = policies.get(name, FieldPolicy())
            verdict = _decide(policy, c.name, record.updated_at, local_changed_at.get(name))
            if verdict == "remote":
                incoming.setdefault(name, []).append(_Incoming(c.name, r_val, record))
            elif verdict == "local":
                pass  # phase 2 pushes the local value over the remote edit, and says so
            else:
                conflicted.add((c.name, name))
                actions.append(
                    RecordConflict(
                        c.name,
                        name,
                        b_val,
                        l_val,
                        r_val,
                        record.updated_by,
                        record.updated_at,
                        f"{name}: changed here to {_show(l_val)} and in {c.name} "
                        f"({link.remote_key}) to {_show(r_val)}{_actor(record)}; "
                        f"policy {policy.mode}: left for a person to settle",
                    )
                )

    # Incoming values from several connectors: agreement, or one more conflict.
    new_local = dict(local)
    for name, offers in sorted(incoming.items()):
        values = {repr(o.value): o for o in offers}
        if len(values) == 1:
            offer = offers[0]
            actions.append(
                TakeRemote(
                    offer.connector,
                    name,
                    local.get(name),
                    offer.value,
                    offer.record.updated_by,
                    f"{name} changed in {offer.connector} ({offer.record.key}) from "
                    f"{_show(local.get(name))} to {_show(offer.value)}{_actor(offer.record)}; "
                    "unchanged here",
                )
            )
            new_local[name] = offer.value
            continue
        policy = policies.get(name, FieldPolicy())
        winner: _Incoming | None = None
        if policy.mode == "authority":
            winner = next((o for o in offers if o.connector == policy.owner), None)
        elif policy.mode == "newest":
            winner = max(offers, key=lambda o: o.record.updated_at)
        if winner is not None:
            actions.append(
                TakeRemote(
                    winner.connector,
                    name,
                    local.get(name),
                    winner.value,
                    winner.record.updated_by,
                    f"{name} changed differently in {', '.join(o.connector for o in offers)}; "
                    f"policy {policy.mode} takes {winner.connector}'s {_show(winner.value)}",
                )
            )
            new_local[name] = winner.value
            continue
        described = "; ".join(f"{o.connector}: {_show(o.value)}" for o in offers)
        for o in offers:
            conflicted.add((o.connector, name))
            actions.append(
                RecordConflict(
                    o.connector,
                    name,
                    local.get(name),
                    local.get(name),
                    o.value,
                    o.record.updated_by,
                    o.record.updated_at,
                    f"{name} changed differently on several sides ({described}); "
                    "left for a person to settle",
                )
            )

    # Phase 2: make every linked connector agree with the new canonical values.
    for c, link, record in linked:
        base = c.baselines.get(item.uuid, {})
        if record is None and item.uuid not in index.conflicted[c.name]:
            # The common case (the remote did not change): push only what moved here.
            project = c.project
            for name in index.fields[c.name]:
                if name in base:
                    value = new_local.get(name)
                    if value == base[name]:
                        continue  # projections are idempotent: an agreed value projects to itself
                    want = project(name, value)
                    if want != base[name]:
                        why = f"{name} is {_show(want)} here, {_show(base[name])} in {c.name} "
                        actions.append(
                            PushField(
                                c.name,
                                link.remote_id,
                                name,
                                want,
                                None,
                                f"{why}({link.remote_key})",
                            )
                        )
            continue
        for name in index.fields[c.name]:
            if (c.name, name) in conflicted or (c.name, name) in settled:
                continue
            has_base = name in base
            b_val = base.get(name)
            if record is not None and name in record.fields:
                r_val = record.fields[name]
            elif has_base:
                r_val = b_val
            else:
                continue
            value = new_local.get(name)
            if has_base and value == r_val == b_val:
                continue  # all three agree (an agreed value projects to itself)
            want = c.project(name, value)
            if want != r_val:
                remote_moved = has_base and r_val != b_val
                why = f"{name} is {_show(want)} here"
                if remote_moved:
                    why += (
                        f"; {c.name} changed it to {_show(r_val)}{_actor(record)} but policy "
                        f"{policies.get(name, FieldPolicy()).mode} keeps ours"
                    )
                else:
                    why += f", {_show(r_val)} in {c.name} ({link.remote_key})"
                actions.append(
                    PushField(
                        c.name,
                        link.remote_id,
                        name,
                        want,
                        r_val if remote_moved else None,
                        why,
                        overridden=remote_moved,
                    )
                )
            elif not has_base or b_val != want:
                actions.append(SetBaseline(c.name, name, want, f"{name} agreed: {_show(want)}"))

    # Notes: a union, never echoed back.
    have = {n.id for n in item.notes}
    taken: list[Note] = []
    for c, _link, record in linked:
        if record is None:
            continue
        for note in record.notes:
            if note.id not in have and note.origin == c.name:
                taken.append(note)
                have.add(note.id)
                actions.append(
                    TakeNote(
                        c.name, note, f"new comment in {c.name} ({record.key}){_actor(record)}"
                    )
                )
    all_notes = [*item.notes, *taken]
    for c, link, record in linked:
        present = set(c.baselines.get(item.uuid, {}).get(NOTES_BASELINE) or [])
        if record is not None:
            present |= {n.id for n in record.notes}
        for note in all_notes:
            if note.id not in present and note.origin != c.name:
                actions.append(
                    PushNote(
                        c.name,
                        link.remote_id,
                        note,
                        f"comment from {note.origin} not yet in {c.name}",
                    )
                )

    # Unlinked connectors in scope: adopt a stamped record, or create one.
    for c in connectors:
        if item.uuid in c.links:
            if c.links[item.uuid].broken:
                actions.append(
                    LinkBroken(c.name, f"the {c.name} record linked to {item.poam_id} is gone")
                )
            continue
        ours = stamped.get(c.name, {}).get(item.uuid)
        if ours is not None:
            why = f"{c.name} {ours.key} carries our stamp: linking it"
            actions.append(AdoptRemote(c.name, ours, why))
            continue
        changed = {k: v for k, v in new_local.items() if local.get(k) != v}
        current = from_sync(item, changed) if changed else item
        if not c.in_scope(current):
            continue
        fields = {name: c.project(name, new_local.get(name)) for name in index.fields[c.name]}
        pending = item.uuid in c.pending_intents
        actions.append(
            CreateRemote(
                c.name,
                fields,
                pending,
                f"in scope for {c.name} and not linked yet"
                + (
                    "; a create may have happened before a crash: stamp checked first"
                    if pending
                    else ""
                ),
            )
        )

    return ItemPlan(item.uuid, item.poam_id, item.system, tuple(actions))


@dataclass(frozen=True, slots=True)
class _Index:
    stamped: Mapping[str, Mapping[str, RemoteRecord]]  # connector -> item uuid -> record
    conflicted: Mapping[str, frozenset[str]]  # connector -> item uuids with open conflicts
    fields: Mapping[str, tuple[str, ...]]  # connector -> synced fields, in a stable order

    @classmethod
    def build(cls, connectors: Sequence[ConnectorState]) -> _Index:
        return cls(
            stamped={
                c.name: {r.stamp.item_uuid: r for r in c.pulled.values() if r.stamp is not None}
                for c in connectors
            },
            conflicted={
                c.name: frozenset(uuid for uuid, _field in c.open_conflicts) for c in connectors
            },
            fields={c.name: tuple(sorted(c.synced_fields)) for c in connectors},
        )


def imported_item(connector: ConnectorState, record: RemoteRecord, poam_id: str) -> PoamItem:
    """A new canonical item made from a remote record nobody here knows (pure)."""
    item_uuid = str(_uuid.uuid5(_IMPORT_NAMESPACE, f"{connector.name}:{record.remote_id}"))
    skeleton = PoamItem(
        poam_id=poam_id,
        system=connector.system,
        uuid=item_uuid,
        extra={f"{connector.name}_key": record.key},
    )
    return from_sync(skeleton, {k: v for k, v in record.fields.items() if v is not None})


def plan(
    items: Mapping[str, PoamItem],
    connectors: Sequence[ConnectorState],
    policies: Mapping[str, FieldPolicy],
    *,
    local_changed_at: Mapping[str, Mapping[str, datetime]] | None = None,
    taken_ids: Iterable[tuple[str, str]] = (),
) -> Plan:
    """The whole cycle's plan. ``items`` by uuid; nothing here does I/O."""
    local_changed_at = local_changed_at or {}
    results: list[ItemPlan] = []
    skipped: list[str] = []

    # Remote records nobody here knows: stamped by us for an unknown item, or new.
    known_ids = {(c.name, link.remote_id) for c in connectors for link in c.links.values()}
    used = {(item.system, item.poam_id) for item in items.values()} | set(taken_ids)
    imports: dict[str, tuple[PoamItem, ConnectorState, RemoteRecord]] = {}
    for c in connectors:
        for record in c.pulled.values():
            if (c.name, record.remote_id) in known_ids:
                continue
            if record.stamp is not None and record.stamp.item_uuid in items:
                continue  # adopted in plan_item
            if not c.allow_import:
                skipped.append(f"{c.name} {record.key}: not linked, and imports are off for it")
                continue
            poam_id = record.stamp.poam_id if record.stamp else record.key
            if (c.system, poam_id) in used:
                skipped.append(
                    f"{c.name} {record.key}: POA&M ID {poam_id} already names another item; "
                    "link it by hand"
                )
                continue
            new = imported_item(c, record, poam_id)
            used.add((new.system, new.poam_id))
            imports[new.uuid] = (new, c, record)

    index = _Index.build(connectors)
    # Planning allocates many small acyclic objects; the cyclic collector would rescan the
    # whole heap over and over for nothing (a third of the time on 100,000 items).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for item in items.values():
            changed_at = local_changed_at.get(item.uuid)
            results.append(
                plan_item(item, connectors, policies, local_changed_at=changed_at, index=index)
            )
    finally:
        if collecting:
            gc.enable()

    for new, source, record in imports.values():
        others = [c for c in connectors if c.name != source.name]
        sub = plan_item(new, others, policies)
        baseline_fields = {
            name: source.project(name, record.fields.get(name))
            for name in source.synced_fields
            if name in record.fields
        }
        actions: list[Action] = [
            SetBaseline(source.name, name, value, "imported value")
            for name, value in sorted(baseline_fields.items())
        ]
        results.append(
            ItemPlan(
                new.uuid,
                new.poam_id,
                new.system,
                (*actions, *sub.actions),
                new_item=new,
                imported_from=(source.name, record),
            )
        )
    return Plan(tuple(results), tuple(skipped))
