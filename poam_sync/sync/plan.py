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

Every action carries a ``why`` that a person can read (``sync --dry-run`` prints it). The
inputs are in :mod:`poam_sync.sync.state`, the actions in :mod:`poam_sync.sync.actions`, and
the choice of remote records to import in :mod:`poam_sync.sync.imports`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from poam_sync.connectors.base import RemoteRecord, SyncValue, SyncValues
from poam_sync.model import Note, PoamItem
from poam_sync.sync._draft import (
    _MISSING,
    _NO_FIELDS,
    _NO_VALUES,
    _actor,
    _changed_at,
    _decide,
    _Draft,
    _Incoming,
    _Index,
    _Linked,
    _Missing,
    _owner_name,
    _read,
    _show,
)
from poam_sync.sync.actions import (
    NOTES_BASELINE,
    Action,
    AdoptRemote,
    CloseConflict,
    CreateRemote,
    ItemPlan,
    LinkBroken,
    Plan,
    PlanFailure,
    PushField,
    PushNote,
    RecordConflict,
    SetBaseline,
    TakeNote,
    TakeRemote,
)
from poam_sync.sync.imports import find_imports, plan_imports
from poam_sync.sync.state import ConnectorState, FieldPolicy, LinkInfo, OpenConflict
from poam_sync.sync.values import display_name, from_sync, to_sync

__all__ = [  # inputs and actions re-exported: callers take the whole vocabulary from here
    "NOTES_BASELINE",
    "Action",
    "AdoptRemote",
    "CloseConflict",
    "ConnectorState",
    "CreateRemote",
    "FieldPolicy",
    "ItemPlan",
    "LinkBroken",
    "LinkInfo",
    "OpenConflict",
    "Plan",
    "PlanFailure",
    "PushField",
    "PushNote",
    "RecordConflict",
    "SetBaseline",
    "TakeNote",
    "TakeRemote",
    "plan",
    "plan_item",
]

# -- the planner -----------------------------------------------------------------------------
#
# ``plan_item`` runs five steps in order for one canonical item; each step appends its actions
# to a ``_Draft`` and tells the later steps what it learned (fields left alone, values offered).
# Each branch says which real situation it covers.


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
    local = to_sync(item)
    if index is None:
        index = _Index.build(connectors)
    if _quiet(item, local, index):
        return ItemPlan(item.uuid, item.poam_id, item.system, ())
    return _plan_item(item, local, connectors, policies, local_changed_at, index)


def _plan_item(
    item: PoamItem,
    local: dict[str, SyncValue],
    connectors: Sequence[ConnectorState],
    policies: Mapping[str, FieldPolicy],
    local_changed_at: Mapping[str, datetime] | None,
    index: _Index,
) -> ItemPlan:
    """:func:`plan_item` once the item is known not to be quiet."""
    draft = _Draft(item.uuid, local, policies, local_changed_at or {}, index)
    linked: list[_Linked] = []
    unlinked: list[tuple[ConnectorState, LinkInfo | None]] = []  # no link, or a broken one
    for c in connectors:
        link = c.links.get(item.uuid)
        if link is None or link.broken:
            unlinked.append((c, link))
        else:
            linked.append((c, link, c.pulled.get(link.remote_id)))

    for c, link, record in linked:
        _incoming(draft, c, link, record)
    new_local = _resolve_offers(draft)
    for c, link, record in linked:
        _outgoing(draft, c, link, record, new_local)
    _notes(draft, item, linked)
    for c, broken in unlinked:
        _unlinked(draft, item, c, broken, new_local)
    return ItemPlan(item.uuid, item.poam_id, item.system, tuple(draft.actions))


def _quiet(item: PoamItem, local: SyncValues, index: _Index) -> bool:
    """Whether the five steps below would find nothing to do for this item (most items, most
    cycles): linked everywhere, changed nowhere remotely, no open conflict, no note, and every
    synced field equal to its baseline. Said without making a draft: one tuple comparison per
    connector instead of a loop over the fields. Any doubt (a field without a baseline, a
    value that differs only before projection) answers no, and the steps decide."""
    if item.notes:
        return False  # step 4 may push a note
    distinct = index.distinct
    try:
        # (Not a comprehension, which is a function call of its own in Python 3.11.)
        wanted = (
            (distinct[0](local),)
            if len(distinct) == 1
            else tuple(map(_read, distinct, (local,) * len(distinct)))
        )
    except KeyError:
        return False  # a synced field the canonical values do not have: step 3 decides
    uuid = item.uuid
    for links, pulled, conflicted, baselines, getter, k in index.quiet:
        link = links.get(uuid)
        if link is None or link.broken or link.remote_id in pulled:
            return False  # step 5, or step 1: a record came in
        if uuid in conflicted:
            return False  # step 1 looks at the open conflicts again
        base = baselines.get(uuid)
        if base is None:
            return False
        try:
            if getter(base) != wanted[k]:
                return False  # step 3: a field moved here
        except KeyError:
            return False  # a field never agreed on: step 3 decides
    return True


# -- step 1: what each linked connector says, field by field -----------------------------------


def _incoming(d: _Draft, c: ConnectorState, link: LinkInfo, record: RemoteRecord | None) -> None:
    in_conflict = d.item_uuid in d.index.conflicted[c.name]
    if record is None and not in_conflict:
        return  # the common case: not changed remotely since the baseline, nothing comes in
    base = c.baselines.get(d.item_uuid, _NO_VALUES)
    remote = record.fields if record is not None else _NO_VALUES
    for name in d.index.fields[c.name]:
        if name not in base:
            # Never agreed on this field (a new link, or a newly synced field): the canonical
            # record is the hub, so step 3 pushes it or records the agreement.
            continue
        b_val = base[name]
        open_c = c.open_conflicts.get((d.item_uuid, name)) if in_conflict else None
        if open_c is not None:
            # A person has not settled this field yet: see whether the sides now agree.
            _still_open(d, c, name, b_val, record, open_c)
            continue
        r_val = remote.get(name, b_val)
        if r_val != b_val:
            assert record is not None  # a value differing from the baseline came with a record
            _remote_moved(d, c, link, record, name, b_val, r_val)
        # else: the remote did not move this field


def _still_open(
    d: _Draft,
    c: ConnectorState,
    name: str,
    b_val: SyncValue,
    record: RemoteRecord | None,
    open_c: OpenConflict,
) -> None:
    # Not pulled again: the remote still holds the value it had when the conflict opened.
    r_val = record.fields.get(name, b_val) if record is not None else open_c.remote
    l_val = c.project(name, d.local.get(name))
    d.leave_alone(c.name, name)
    if l_val == r_val:
        # Someone made both sides equal (by hand, in either place): the conflict settles itself.
        d.actions.append(
            CloseConflict(
                c.name,
                name,
                open_c.conflict_id,
                r_val,
                f"{name}: both sides now hold {_show(r_val)}; the conflict settles",
            )
        )
        d.actions.append(SetBaseline(c.name, name, r_val, "agreed value"))
    elif (open_c.local, open_c.remote) != (l_val, r_val):
        # Still apart, but one side moved again: the recorded values are refreshed.
        d.actions.append(
            RecordConflict(
                c.name,
                name,
                b_val,
                l_val,
                r_val,
                record.actor_of(name) if record else None,
                record.change_of(name).at if record else None,
                f"{name}: still in conflict with {c.name} (values changed)",
            )
        )
    # else: still apart with the same values: nothing new to record, nothing pushed


def _remote_moved(
    d: _Draft,
    c: ConnectorState,
    link: LinkInfo,
    record: RemoteRecord,
    name: str,
    b_val: SyncValue,
    r_val: SyncValue,
) -> None:
    l_val = c.project(name, d.local.get(name))
    if l_val == r_val:
        return  # both sides made the same change: step 3 records the new baseline
    if l_val == b_val:
        owner = d.policies[name].owner if name in d.policies else None
        if owner is not None and owner != c.name and d.policies[name].mode == "authority":
            # Only the remote moved, but the field is another's (the POA&M office's, or another
            # connector's): step 3 puts ours back over the edit, and says so.
            return
        d.offer(name, c.name, r_val, record)  # only the remote moved: offer its value
        return
    # Both moved, differently: the field's policy decides, or a person does.
    policy = d.policy(name)
    verdict = _decide(policy, c.name, _changed_at(record, name), d.changed_at.get(name))
    if verdict == "remote":
        d.offer(name, c.name, r_val, record)  # the remote is the authority, or the newer
    elif verdict == "local":
        pass  # ours is the authority, or the newer: step 3 pushes it over the edit, and says so
    else:
        d.leave_alone(c.name, name)
        d.actions.append(
            RecordConflict(
                c.name,
                name,
                b_val,
                l_val,
                r_val,
                record.actor_of(name),
                record.change_of(name).at,
                f"{name}: changed here to {_show(l_val)} and in {c.name} "
                f"({link.remote_key}) to {_show(r_val)}{_actor(record, name)}; "
                f"policy {policy.mode}: left for a person to settle",
            )
        )


# -- step 2: values offered by several connectors ----------------------------------------------


def _resolve_offers(d: _Draft) -> dict[str, SyncValue]:
    """The canonical values once the offers are taken in (the local values when none came)."""
    local = d.local
    if not d.offers:
        return local  # the common case: nothing came in (never mutated by the later steps)
    new_local = dict(local)
    for name, offers in sorted(d.offers.items()):
        if len(offers) == 1 or len({repr(o.value) for o in offers}) == 1:
            # One connector changed the field, or several changed it to the same value.
            offer = offers[0]
            shown = _whole_owner(name, offer) if name == "owner" else (None, "")
            d.actions.append(
                TakeRemote(
                    offer.connector,
                    name,
                    local.get(name),
                    offer.value,
                    offer.record.actor_of(name),
                    f"{name} changed in {offer.connector} ({offer.record.key}) from "
                    f"{_show(local.get(name))} to {_show(offer.value)}"
                    f"{_actor(offer.record, name)}; "
                    f"unchanged here{shown[1]}",
                    display_name=shown[0],
                )
            )
            new_local[name] = offer.value
            continue
        policy = d.policy(name)
        winner: _Incoming | None = None
        if policy.mode == "authority":
            winner = next((o for o in offers if o.connector == policy.owner), None)
        elif policy.mode == "newest":
            winner = max(offers, key=lambda o: _changed_at(o.record, name))
        if winner is not None:
            # Connectors disagree, and the policy names one of them (authority, or newest).
            d.actions.append(
                TakeRemote(
                    winner.connector,
                    name,
                    local.get(name),
                    winner.value,
                    winner.record.actor_of(name),
                    f"{name} changed differently in {', '.join(o.connector for o in offers)}; "
                    f"policy {policy.mode} takes {winner.connector}'s {_show(winner.value)}",
                )
            )
            new_local[name] = winner.value
            continue
        # Connectors disagree and nothing decides: a conflict with each of them.
        described = "; ".join(f"{o.connector}: {_show(o.value)}" for o in offers)
        for o in offers:
            d.leave_alone(o.connector, name)
            d.actions.append(
                RecordConflict(
                    o.connector,
                    name,
                    local.get(name),
                    local.get(name),
                    o.value,
                    o.record.actor_of(name),
                    o.record.change_of(name).at,
                    f"{name} changed differently on several sides ({described}); "
                    "left for a person to settle",
                )
            )
    return new_local


def _whole_owner(name: str, offer: _Incoming) -> tuple[str | None, str]:
    """A new owner from a remote is a whole person: the remote's display name for them and
    no organization. Returns the name, and what the change log says about it."""
    email = offer.value if isinstance(offer.value, str) else None
    if email is None:
        return None, ""
    shown = display_name(offer.record.people, email)
    named = f"name {shown!r} from {offer.connector}" if shown else "no name"
    return shown, f"; the new owner is one person: {named}, organization unknown (cleared)"


# -- step 3: make every linked connector agree with the new canonical values -------------------


def _outgoing(
    d: _Draft,
    c: ConnectorState,
    link: LinkInfo,
    record: RemoteRecord | None,
    new_local: SyncValues,
) -> None:
    base = c.baselines.get(d.item_uuid, _NO_VALUES)
    remote = record.fields if record is not None else _NO_VALUES
    left_alone = d.left_alone.get(c.name, _NO_FIELDS)
    fields = d.index.fields[c.name]
    getter = d.index.getters[c.name]
    try:
        # The common case: every field has a baseline and, when a record came, a remote
        # value; the three sides are read as three tuples, in field order.
        b_vals = getter(base)
        r_vals = getter(remote) if record is not None else b_vals
        rows = zip(fields, getter(new_local), r_vals, b_vals, strict=True)
    except KeyError:
        rows = None
    if rows is not None:
        for name, value, remote_value, agreed in rows:
            if value == remote_value and remote_value == agreed:
                continue  # all three agree (an agreed value projects to itself)
            if name not in left_alone:
                _converge(d, c, link, record, name, value, remote_value, agreed)
        return
    b_val: SyncValue | _Missing
    for name in fields:
        if name in left_alone:
            continue  # in conflict, or settling this cycle: no write goes out
        if name in base:
            b_val = base[name]
            # Operators, not dict.get: this line runs for every field of every linked item.
            r_val = remote[name] if name in remote else b_val  # noqa: SIM401
        elif name in remote:
            b_val, r_val = _MISSING, remote[name]  # never agreed: the remote's value decides
        else:
            continue  # never agreed, and the remote did not say: nothing to compare with
        value = new_local.get(name)
        if value == r_val and r_val == b_val:
            continue  # all three agree (the common case: an agreed value projects to itself)
        _converge(d, c, link, record, name, value, r_val, b_val)


def _converge(
    d: _Draft,
    c: ConnectorState,
    link: LinkInfo,
    record: RemoteRecord | None,
    name: str,
    value: SyncValue,
    r_val: SyncValue,
    b_val: SyncValue | _Missing,
) -> None:
    """One field not yet equal on all three sides (and not left alone): push or agree."""
    want = c.project(name, value)
    if want != r_val:
        if c.blocked and (d.item_uuid, name) in c.blocked:
            # This connector refused this very value (a blocked transition, reported then):
            # not pushed again until the canonical value changes.
            return
        remote_moved = b_val is not _MISSING and r_val != b_val
        why = f"{name} is {_show(want)} here"
        if remote_moved:
            # The remote moved too, and the policy keeps ours: overriding it is said.
            policy = d.policy(name)
            why += f"; {c.name} changed it to {_show(r_val)}{_actor(record, name)} but " + (
                f"the field is owned by {_owner_name(policy.owner)}: put back"
                if policy.mode == "authority" and policy.owner != c.name
                else f"policy {policy.mode} keeps ours"
            )
        else:
            # Only we moved (here, or in another connector this cycle): push it.
            why += f", {_show(r_val)} in {c.name} ({link.remote_key})"
        d.actions.append(
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
    elif b_val is _MISSING or b_val != want:
        # Already equal on the remote (both moved alike, or a first agreement): record it.
        d.actions.append(SetBaseline(c.name, name, want, f"{name} agreed: {_show(want)}"))


# -- step 4: notes, a union, never echoed back -------------------------------------------------


def _notes(d: _Draft, item: PoamItem, linked: Sequence[_Linked]) -> None:
    have = {n.id for n in item.notes}
    taken: list[Note] = []
    for c, _link, record in linked:
        if record is None:
            continue  # not changed remotely: no new comment there
        for note in record.notes:
            if note.id not in have and note.origin == c.name:
                # Written in that remote by a person (ours carry a marker naming their origin).
                taken.append(note)
                have.add(note.id)
                d.actions.append(
                    TakeNote(
                        c.name,
                        note,
                        f"new comment in {c.name} ({record.key}){_actor(record, 'notes')}",
                    )
                )
    all_notes = [*item.notes, *taken]
    if not all_notes:
        return  # the common case: no comment anywhere, nothing to push
    for c, link, record in linked:
        # The note ids known there (a list of str, as the executor writes it): not narrowed
        # with as_strings, which would check every list on the planner's path.
        present: set[object] = set(
            c.baselines.get(d.item_uuid, _NO_VALUES).get(NOTES_BASELINE) or []
        )
        if record is not None:
            present |= {n.id for n in record.notes}
        for note in all_notes:
            if note.id not in present and note.origin != c.name:
                # Written here or in another connector, not yet on this one.
                d.actions.append(
                    PushNote(
                        c.name,
                        link.remote_id,
                        note,
                        f"comment from {note.origin} not yet in {c.name}",
                    )
                )


# -- step 5: connectors with no (working) link: report, adopt or create ------------------------


def _unlinked(
    d: _Draft,
    item: PoamItem,
    c: ConnectorState,
    broken: LinkInfo | None,
    new_local: SyncValues,
) -> None:
    if broken is not None:
        # The linked record vanished: said every cycle, never silently re-created.
        d.actions.append(
            LinkBroken(
                c.name,
                f"the {c.name} record {broken.remote_key} linked to {item.poam_id} is gone; "
                "the item stays here and is not re-created",
            )
        )
        return
    ours = d.index.stamped.get(c.name, {}).get(item.uuid)
    if ours is not None:
        # A record carrying our stamp but no link (a create finished just before a crash):
        # link it, never create a second one.
        why = f"{c.name} {ours.key} carries our stamp: linking it"
        d.actions.append(AdoptRemote(c.name, ours, why))
        return
    local = d.local
    changed = {k: v for k, v in new_local.items() if local.get(k) != v}
    current = from_sync(item, changed) if changed else item
    if not c.in_scope(current):
        return  # outside this connector's scope (closed, another system): nothing to create
    # In scope and never linked: create it (checking the stamp first when a create was in
    # flight at a crash, so it is never made twice).
    fields = {name: c.project(name, new_local.get(name)) for name in d.index.fields[c.name]}
    pending = item.uuid in c.pending_intents
    d.actions.append(
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

    # Remote records nobody here knows: stamped by us for an unknown item, or new.
    imports, skipped = find_imports(items, connectors, taken_ids)
    index = _Index.build(connectors)
    # Planning allocates many small acyclic objects; the cyclic collector would rescan the
    # whole heap over and over for nothing (a third of the time on 100,000 items).
    collecting = gc.isenabled()
    gc.disable()
    failed: list[PlanFailure] = []
    try:
        for item in items.values():
            try:
                # plan_item, inlined: this loop runs once per item of the store
                local = to_sync(item)
                results.append(
                    ItemPlan(item.uuid, item.poam_id, item.system, ())
                    if _quiet(item, local, index)
                    else _plan_item(
                        item,
                        local,
                        connectors,
                        policies,
                        local_changed_at.get(item.uuid),
                        index,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - one item never stops the plan
                failed.append(PlanFailure(item.uuid, item.poam_id, exc))
    finally:
        if collecting:
            gc.enable()

    imported, import_failures = plan_imports(imports, connectors, policies, plan_item)
    results += imported
    failed += import_failures
    return Plan(tuple(results), tuple(skipped), tuple(failed))
