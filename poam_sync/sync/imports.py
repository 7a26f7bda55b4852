"""Remote records nobody here knows: which become canonical items, and which are skipped.

A pulled record that is neither linked nor stamped for a known item is new to us. It becomes
an item only when its connector allows imports (``import_new``) and its POA&M ID names no
other item; otherwise it is skipped with a reason a person can read. Pure, like the planner.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Iterable, Mapping, Sequence

from poam_sync.connectors.base import RemoteRecord
from poam_sync.model import PoamItem
from poam_sync.sync.state import ConnectorState
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
