"""Remote records nobody here knows: which become canonical items, and which are skipped.

A pulled record that is neither linked nor stamped for a known item is new to us. It becomes
an item only when its connector allows imports (``import_new``) and its POA&M ID names no
other item; otherwise it is skipped with a reason a person can read. Pure, like the planner.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from poam_sync.connectors.base import RemoteRecord
from poam_sync.model import PoamItem
from poam_sync.sync.actions import Action, ItemPlan, PlanFailure, SetBaseline
from poam_sync.sync.state import ConnectorState, FieldPolicy
from poam_sync.sync.values import from_sync

_IMPORT_NAMESPACE = _uuid.UUID("8d0f3a56-6a43-4c3f-9e55-2f1f1c4a9b10")

Import = tuple[PoamItem, ConnectorState, RemoteRecord]
"""A new item, the connector it comes from, and the record it is made of."""


def find_imports(
    items: Mapping[str, PoamItem],
    connectors: Sequence[ConnectorState],
    taken_ids: Iterable[tuple[str, str]],
) -> tuple[list[Import], list[str]]:
    """The items to import this cycle, and the records skipped with why."""
    skipped: list[str] = []
    known_ids = {(c.name, link.remote_id) for c in connectors for link in c.links.values()}
    used = {(item.system, item.poam_id) for item in items.values()} | set(taken_ids)
    imports: dict[str, Import] = {}
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
    return list(imports.values()), skipped


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
