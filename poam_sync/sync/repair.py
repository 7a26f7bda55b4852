"""``poam-sync repair``: link every remote record carrying our stamp to its item, for a whole store.

A sync cycle adopts the stamped records it pulls; a repair lists *every* record of every
connector (a full pull, whatever the watermarks say) and settles each one that is not linked:

- **linked**: it carries our stamp for an item here (by uuid, or by system and POA&M ID when
  the file was imported again and the item has a new uuid) that has no record on that
  connector yet: linked to it, with baselines only where both sides already agree;
- **adopted**: its stamp names an item this store does not know (a fresh store, a restored
  backup): the item is restored from the record under the stamp's uuid, system and POA&M ID,
  and linked; the same stamp on the other connectors' records links them to it too;
- **left alone**: a record without our stamp (not made by poam-sync: ``import_new`` imports
  it, or link it by hand), or a duplicate (a second record for an item already linked there).

Nothing is created or pushed anywhere: the next cycle syncs the values. ``dry_run`` says what
would be done and writes nothing. Like vdirsyncer's ``repair``, it is run on demand, after a
restore or when a report shows records it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypedDict

import structlog

from poam_sync.connectors.base import Connector, RemoteRecord
from poam_sync.model import PoamItem
from poam_sync.store import LinkRow
from poam_sync.sync.creates import agreed_baselines
from poam_sync.sync.echoes import link_row
from poam_sync.sync.imports import restored_item
from poam_sync.sync.intake import describe

if TYPE_CHECKING:
    from poam_sync.store import Store, StoreTx

log = structlog.get_logger(__name__)

Outcome = Literal["linked", "adopted", "left_alone"]


class RepairEntryJson(TypedDict):
    outcome: Outcome
    connector: str
    remote_key: str
    poam_id: str | None
    why: str


@dataclass(frozen=True, slots=True)
class RepairEntry:
    """What the repair did (or would do) with one remote record."""

    outcome: Outcome
    connector: str
    remote_key: str
    poam_id: str | None
    why: str

    def to_json(self) -> RepairEntryJson:
        return {
            "outcome": self.outcome,
            "connector": self.connector,
            "remote_key": self.remote_key,
            "poam_id": self.poam_id,
            "why": self.why,
        }


@dataclass
class RepairReport:
    dry_run: bool
    entries: list[RepairEntry] = field(default_factory=list)
    already_linked: dict[str, int] = field(default_factory=dict)
    failed_connectors: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_connectors

    def count(self, outcome: Outcome) -> int:
        return sum(1 for e in self.entries if e.outcome == outcome)

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "linked": self.count("linked"),
            "adopted": self.count("adopted"),
            "left_alone": self.count("left_alone"),
            "already_linked": dict(self.already_linked),
            "records": [e.to_json() for e in self.entries],
            "failed_connectors": dict(self.failed_connectors),
            "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True)
class _Link:
    item_uuid: str
    connector: str
    record: RemoteRecord


def repair(
    store: Store, connectors: Mapping[str, Connector], *, dry_run: bool = False
) -> RepairReport:
    """Link (and restore the items of) every stamped record the store does not know."""
    report = RepairReport(dry_run=dry_run)
    pulled = _pull_all(connectors, report)
    with store.read() as tx:
        items = {i.uuid: i for i in tx.all_items()}
        links = {name: {link.item_uuid: link for link in tx.links(name)} for name in pulled}
    restored: dict[str, tuple[PoamItem, _Link]] = {}
    to_link: list[_Link] = []
    by_id = {(i.system, i.poam_id): i.uuid for i in items.values()}
    for name, records in pulled.items():
        linked_ids = {link.remote_id for link in links[name].values()}
        planned: dict[str, str] = {}  # item uuid -> remote key linked to it by this repair
        for record in records:
            if record.remote_id in linked_ids:
                report.already_linked[name] = report.already_linked.get(name, 0) + 1
                continue
            entry, link = _settle(name, record, items, restored, by_id, links[name], planned)
            report.entries.append(entry)
            if link is None:
                continue
            planned[link.item_uuid] = record.key
            if entry.outcome == "adopted":
                stamp = record.stamp
                assert stamp is not None
                new = restored_item(name, record, stamp)
                restored[new.uuid] = (new, link)
                by_id[(new.system, new.poam_id)] = new.uuid
            else:
                to_link.append(link)
    if not dry_run:
        _apply(store, connectors, items, restored, to_link, report)
    log.info(
        "sync.repair",
        dry_run=dry_run,
        linked=report.count("linked"),
        adopted=report.count("adopted"),
        left_alone=report.count("left_alone"),
        errors=len(report.errors),
    )
    return report


def _pull_all(
    connectors: Mapping[str, Connector], report: RepairReport
) -> dict[str, list[RemoteRecord]]:
    pulled: dict[str, list[RemoteRecord]] = {}
    for name, connector in connectors.items():
        try:
            connector.prepare()
            pulled[name] = list(connector.pull(None))  # everything, not since the watermark
        except Exception as exc:  # noqa: BLE001 - one connector's failure, reported
            report.failed_connectors[name] = describe(exc)
            log.warning("sync.repair_pull_failed", connector=name, error=describe(exc))
    return pulled


def _settle(
    name: str,
    record: RemoteRecord,
    items: Mapping[str, PoamItem],
    restored: Mapping[str, tuple[PoamItem, _Link]],
    by_id: Mapping[tuple[str, str], str],
    links: Mapping[str, LinkRow],
    planned: Mapping[str, str],
) -> tuple[RepairEntry, _Link | None]:
    """What becomes of one record nothing here is linked to."""
    stamp = record.stamp
    if stamp is None:
        why = "no stamp of ours: not made by poam-sync (import_new imports it, or link it by hand)"
        return RepairEntry("left_alone", name, record.key, None, why), None
    target = stamp.item_uuid
    why = f"carries our stamp for {stamp.poam_id}"
    if target not in items and target not in restored:
        other = by_id.get((stamp.system, stamp.poam_id))
        if other is None:
            why += ", an item this store does not know: restored from it"
            return RepairEntry("adopted", name, record.key, stamp.poam_id, why), _Link(
                target, name, record
            )
        target = other
        why += " under another uuid (the file was imported again): matched by POA&M ID"
    existing = links.get(target)
    other_key = existing.remote_key if existing is not None else planned.get(target)
    if other_key is not None:
        why += f", whose item is linked to {name} {other_key} already: a duplicate; close one"
        return RepairEntry("left_alone", name, record.key, stamp.poam_id, why), None
    return RepairEntry("linked", name, record.key, stamp.poam_id, why), _Link(target, name, record)


def _apply(
    store: Store,
    connectors: Mapping[str, Connector],
    items: Mapping[str, PoamItem],
    restored: Mapping[str, tuple[PoamItem, _Link]],
    to_link: list[_Link],
    report: RepairReport,
) -> None:
    """One transaction per restored item (the item and its link), then one per link."""
    known = dict(items)
    for new, link in restored.values():
        try:
            with store.begin() as tx:
                tx.save(
                    new,
                    source=link.connector,
                    actor=link.record.updated_by,
                    reason=f"restored by repair from {link.connector} {link.record.key}, "
                    "which carries our stamp",
                )
                _link(tx, connectors[link.connector], new, link)
            known[new.uuid] = new
        except Exception as exc:  # noqa: BLE001 - one record never stops the repair
            report.errors.append(f"{link.connector} {link.record.key}: {describe(exc)}")
    for link in to_link:
        item = known.get(link.item_uuid)
        if item is None:
            continue  # its item's restore failed (reported)
        try:
            with store.begin() as tx:
                _link(tx, connectors[link.connector], item, link)
        except Exception as exc:  # noqa: BLE001 - one record never stops the repair
            report.errors.append(f"{link.connector} {link.record.key}: {describe(exc)}")


def _link(tx: StoreTx, connector: Connector, item: PoamItem, link: _Link) -> None:
    tx.set_link(link_row(item.uuid, link.connector, link.record))
    tx.set_baselines(item.uuid, link.connector, agreed_baselines(connector, item, link.record))
    tx.finish_claims(link.connector, [item.uuid])
