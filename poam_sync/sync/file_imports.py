"""A re-imported file that clashes with another side's change becomes a conflict, settled like
any other (``conflicts resolve ID --take local|import``).

The store decides per field what a file may change (``store/_import_merge.py``) and lists the
fields both the file and another side changed as clashes, keeping the canonical value. Here each
clash on a synced field is recorded as a conflict with connector ``import``, in the import's own
transaction; a clash on a field no connector syncs (the canonical record alone holds it) is
reported to the person importing and left for an edit (``items set``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poam_sync.model import JsonValue, PoamItem, SyncValue
from poam_sync.sync.values import to_sync

if TYPE_CHECKING:
    from poam_sync.store import ImportOutcome, StoreTx
    from poam_sync.store._rows import ImportClash

IMPORT_SIDE = "import"
"""The conflicts' connector name for a file's side."""

SYNCED = frozenset(to_sync(PoamItem(poam_id="x")))


def _as_sync(item: PoamItem, field: str, value: JsonValue) -> SyncValue:
    data = item.model_dump(mode="json")
    data[field] = value
    return to_sync(PoamItem.model_validate(data))[field]


def record_clashes(tx: StoreTx, outcome: ImportOutcome, *, actor: str) -> list[ImportClash]:
    """Open a conflict for each clash on a synced field; the clashes left unrecorded (fields no
    connector syncs) are returned for the caller to report."""
    unrecorded: list[ImportClash] = []
    for clash in outcome.clashes:
        item = tx.get_by_uuid(clash.item_uuid)
        if item is None or clash.field not in SYNCED:
            unrecorded.append(clash)
            continue
        tx.open_conflict(
            item_uuid=clash.item_uuid,
            connector=IMPORT_SIDE,
            field=clash.field,
            baseline=_as_sync(item, clash.field, clash.baseline),
            local=_as_sync(item, clash.field, clash.canonical),
            remote=_as_sync(item, clash.field, clash.file),
            remote_actor=actor,
            remote_changed_at=None,
        )
    return unrecorded
