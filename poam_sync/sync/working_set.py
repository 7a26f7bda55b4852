"""What a cycle plans: every item (a full cycle), or only those that may need something.

A daemon's cycle costs what changed, not what the store holds. An engine remembers, between
its cycles, the change log's sequence number it planned up to; its next cycle plans only

- the items with a change-log row after it: whatever wrote them (a sync, an import, ``items
  set``, a settled conflict, a restore), in this process or another;
- the items linked to a record the pull (or a retry's fetch) returned; for a record that is
  linked to none, every item it could be adopted by, restored as or collide with (its stamp's
  uuid, its stamp's system and POA&M ID, the POA&M ID it would be imported under), so the
  planner decides it exactly as it would over the whole store;
- the items with an open retry (:mod:`poam_sync.sync.faults`) or a pending create claim;
- the items the last cycle planned but could not finish (``carry``: a create, an item that
  failed, one whose record could not be read).

Nothing else can need an action: the plan of an item is a pure function of the item, its
links, baselines and open conflicts, and the records pulled for it (:mod:`poam_sync.sync.plan`),
and each of those changes only through the change log, a pull, or the engine's own writes in a
cycle that planned the item. Links and baselines are written only by the process holding the
leader lock (the sync, ``repair``), so a daemon that (re)gains the lead plans everything again.

A *full* cycle plans everything: the first cycle of an engine, every ``full_every`` cycles
(with the reconcile, which needs every link), when asked, when a connector pulls from no
watermark, and when a connector missed a cycle (failed, guarded, left out).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from poam_sync.sync.state import LinkInfo

if TYPE_CHECKING:
    from poam_sync.connectors.base import RemoteRecord
    from poam_sync.model import PoamItem
    from poam_sync.store import LinkRow, StoreTx
    from poam_sync.store._sync_state import Baselines


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The store as one cycle plans from it: the items (all, or the working set), their
    links and baselines per connector, and the creates claimed but not linked."""

    items: dict[str, PoamItem]
    links: dict[str, dict[str, LinkInfo]]
    baselines: dict[str, Baselines]
    pending: dict[str, frozenset[str]]
    seq: int  # the change log's last row when the snapshot was read
    full: bool

    @property
    def taken(self) -> set[tuple[str, str]]:
        """The (system, POA&M ID) pairs the items hold. In a working set these are all the
        planner can ask about: every item a pulled record could collide with is in it."""
        return {(i.system, i.poam_id) for i in self.items.values()}


def _info(link: LinkRow) -> LinkInfo:
    return LinkInfo(link.remote_id, link.remote_key or link.remote_id, link.state == "broken")


def _pending(tx: StoreTx, names: Iterable[str]) -> dict[str, frozenset[str]]:
    return {n: frozenset(c.item_uuid for c in tx.pending_claims(n)) for n in names}


def read_all(tx: StoreTx, names: Collection[str]) -> Snapshot:
    """Every item, link and baseline of these connectors (a full cycle)."""
    seq = tx.log_head()
    items = {i.uuid: i for i in tx.all_items()}
    return Snapshot(
        items=items,
        links={n: {link.item_uuid: _info(link) for link in tx.links(n)} for n in names},
        baselines={n: tx.all_baselines(n) for n in names},
        pending=_pending(tx, names),
        seq=seq,
        full=True,
    )


def read_changed(
    tx: StoreTx,
    names: Collection[str],
    *,
    after: int,
    carry: Collection[str],
    pulled: Mapping[str, Mapping[str, RemoteRecord]],
    retries: Iterable[str],
    systems: Mapping[str, str],
) -> Snapshot:
    """The working set of the module docstring. ``after``: the sequence number the last cycle
    planned up to; ``systems``: each connector's system, where its imports would go."""
    seq = tx.log_head()
    wanted = tx.changed_items(after, seq) | set(carry) | set(retries)
    pending = _pending(tx, names)
    for uuids in pending.values():
        wanted |= uuids
    ids: set[tuple[str, str]] = set()
    for name in names:
        records = pulled.get(name, {})
        linked = tx.linked_uuids(name, list(records))
        wanted |= linked
        for record in records.values():
            stamp = record.stamp
            if stamp is not None:
                wanted.add(stamp.item_uuid)
                ids.add((stamp.system, stamp.poam_id))
            ids.add((systems[name], record.key))
    if ids:
        wanted |= set(tx.uuids_by_ids(ids).values())
    items = {i.uuid: i for i in tx.items_by_uuid(wanted)}
    return Snapshot(
        items=items,
        links={n: {link.item_uuid: _info(link) for link in tx.links_for(n, items)} for n in names},
        baselines={n: tx.baselines_for(n, items) for n in names},
        pending=pending,
        seq=seq,
        full=False,
    )
