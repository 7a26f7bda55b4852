"""Remote records nobody here knows: which become canonical items, and which are skipped.

A pulled record that is neither linked nor stamped for a known item is new to us. It becomes
an item only when its connector allows imports (``import_new``) and its POA&M ID names no
other item; otherwise it is skipped with a reason a person can read. Pure, like the planner.

A record carrying *our* stamp for an item this store does not know was made by poam-sync for a
store that is gone or older: an empty database in a new container, last week's backup, a store
rebuilt from the POA&M file. Such a record is never imported as something new, and its item
is never created again on any side:

- when an item here has the stamp's system and POA&M ID but another uuid (the file was imported
  again, which gives new uuids), :func:`rebind_stamps` points the record's stamp at that item,
  so the planner adopts it (links it) wherever that item has no link yet;
- otherwise the item is *restored* under the stamp's uuid, system and POA&M ID from the record,
  whatever ``import_new`` says (it is ours, not new), and the other connectors' records with
  the same stamp are adopted by its plan;
- a second record with one stamp on one connector, or a stamped record for an item already
  linked to another record there, is a duplicate: skipped and said, never linked.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from poam_sync.connectors.base import RemoteRecord, Stamp
from poam_sync.model import PoamItem
from poam_sync.sync.actions import Action, ItemPlan, PlanFailure, SetBaseline
from poam_sync.sync.state import ConnectorState, FieldPolicy
from poam_sync.sync.values import from_sync

_IMPORT_NAMESPACE = _uuid.UUID("8d0f3a56-6a43-4c3f-9e55-2f1f1c4a9b10")

_T = TypeVar("_T")

Import = tuple[PoamItem, ConnectorState, RemoteRecord]
"""A new item, the connector it comes from, and the record it is made of."""


def find_imports(
    items: Mapping[str, PoamItem],
    connectors: Sequence[ConnectorState],
    taken_ids: Iterable[tuple[str, str]],
) -> tuple[list[Import], list[str]]:
    """The items to import this cycle, and the records skipped with why."""
    # The records not linked here, in pull order: most cycles none, and then the POA&M IDs
    # in use are never gathered (a set of 100,000 pairs, for nothing).
    unknown: list[tuple[ConnectorState, RemoteRecord]] = []
    for c in connectors:
        if c.pulled:
            linked = {link.remote_id for link in c.links.values()}
            unknown += [(c, r) for r in c.pulled.values() if r.remote_id not in linked]
    if not unknown:
        return [], []
    skipped: list[str] = []
    used = {(item.system, item.poam_id) for item in items.values()} | set(taken_ids)
    imports: dict[str, Import] = {}
    first_stamped: dict[tuple[str, str], str] = {}  # (connector, stamped uuid) -> record key
    for c, record in unknown:
        stamp = record.stamp
        if stamp is not None:
            why = _stamped(c, record, stamp, first_stamped, items, imports, used)
            if why is not None:
                skipped.append(why)
            elif stamp.item_uuid not in items and stamp.item_uuid not in imports:
                restored = _built(restored_item, c, record, stamp)
                if isinstance(restored, str):
                    skipped.append(restored)
                    continue
                used.add((restored.system, restored.poam_id))
                imports[restored.uuid] = (restored, c, record)
            continue
        if not c.allow_import:
            skipped.append(f"{c.name} {record.key}: not linked, and imports are off for it")
            continue
        poam_id = record.key
        if (c.system, poam_id) in used:
            skipped.append(
                f"{c.name} {record.key}: POA&M ID {poam_id} already names another item; "
                "link it by hand"
            )
            continue
        new = _built(imported_item, c, record, poam_id)
        if isinstance(new, str):
            skipped.append(new)
            continue
        used.add((new.system, new.poam_id))
        imports[new.uuid] = (new, c, record)
    return list(imports.values()), skipped


def _built(
    build: Callable[[ConnectorState, RemoteRecord, _T], PoamItem],
    c: ConnectorState,
    record: RemoteRecord,
    arg: _T,
) -> PoamItem | str:
    """The item ``build`` makes of a record, or why the record is skipped: a value the model
    refuses (a date that is no date) leaves the whole record out, never half imported and
    never as an empty field."""
    try:
        return build(c, record, arg)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        fields = sorted(
            {str(e["loc"][0]) for e in getattr(exc, "errors", lambda: [])() if e.get("loc")}
        )
        what = ", ".join(fields) if fields else str(exc).splitlines()[0]
        return f"{c.name} {record.key}: not imported, a value cannot be read ({what}); fix it there"


def _stamped(
    c: ConnectorState,
    record: RemoteRecord,
    stamp: Stamp,
    first: dict[tuple[str, str], str],
    items: Mapping[str, PoamItem],
    imports: Mapping[str, Import],
    used: set[tuple[str, str]],
) -> str | None:
    """Why a record carrying our stamp is skipped (a duplicate), or None: it is adopted."""
    seen = first.setdefault((c.name, stamp.item_uuid), record.key)
    where = f"{c.name} {record.key}: carries our stamp for {stamp.poam_id}"
    if seen != record.key:
        return f"{where}, like {c.name} {seen}: a duplicate; close one of them by hand"
    linked = c.links.get(stamp.item_uuid)
    if linked is not None:
        return (
            f"{where}, which is linked to {c.name} {linked.remote_key} already: a duplicate; "
            "close one of them by hand"
        )
    if stamp.item_uuid in items or stamp.item_uuid in imports:
        return None  # adopted by that item's plan
    if (stamp.system, stamp.poam_id) in used:
        return (
            f"{where}, but another item here has that POA&M ID and is linked to another "
            f"{c.name} record: a duplicate; close one of them by hand"
        )
    return None


def rebind_stamps(
    items: Mapping[str, PoamItem], connectors: Sequence[ConnectorState]
) -> list[ConnectorState]:
    """``connectors`` with each record stamped for a uuid this store does not know, but for
    the system and POA&M ID of an item here that has no link on that connector, re-stamped
    for that item: the planner then adopts it instead of creating the item there again (pure).
    """
    by_id = {(i.system, i.poam_id): i.uuid for i in items.values()}
    result: list[ConnectorState] = []
    for c in connectors:
        linked_ids = {link.remote_id for link in c.links.values()}
        claimed: set[str] = set()
        changed: dict[str, RemoteRecord] = {}
        for remote_id, record in c.pulled.items():
            stamp = record.stamp
            if stamp is None or stamp.item_uuid in items or remote_id in linked_ids:
                continue
            target = by_id.get((stamp.system, stamp.poam_id))
            if target is None or target in c.links or target in claimed:
                continue  # nothing to match, or a duplicate (find_imports says so)
            claimed.add(target)
            changed[remote_id] = replace(record, stamp=replace(stamp, item_uuid=target))
        result.append(replace(c, pulled={**c.pulled, **changed}) if changed else c)
    return result


PlanItem = Callable[[PoamItem, Sequence[ConnectorState], Mapping[str, FieldPolicy]], ItemPlan]


def plan_imports(
    imports: Sequence[Import],
    connectors: Sequence[ConnectorState],
    policies: Mapping[str, FieldPolicy],
    plan_item: PlanItem,
) -> tuple[list[ItemPlan], list[PlanFailure]]:
    """Each new item's plan: the baselines agreed with its source, then what the other
    connectors need (``plan_item`` against them). A record whose planning raises is left out."""
    results: list[ItemPlan] = []
    failed: list[PlanFailure] = []
    for new, source, record in imports:
        others = [c for c in connectors if c.name != source.name]
        try:
            sub = plan_item(new, others, policies)
        except Exception as exc:  # noqa: BLE001 - one record never stops the plan
            failed.append(PlanFailure(new.uuid, new.poam_id, exc, (source.name, record)))
            continue
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
    return results, failed


def restored_item(connector: ConnectorState | str, record: RemoteRecord, stamp: Stamp) -> PoamItem:
    """The canonical item a record carrying our stamp was made from, rebuilt from the record
    under the stamp's uuid, system and POA&M ID (pure). ``connector``: its state, or name."""
    name = connector if isinstance(connector, str) else connector.name
    skeleton = PoamItem(
        poam_id=stamp.poam_id,
        system=stamp.system,
        uuid=stamp.item_uuid,
        extra={f"{name}_key": record.key},
    )
    return from_sync(skeleton, {k: v for k, v in record.fields.items() if v is not None})


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
