"""Which remote version a link may remember, so that the next pull can leave it out (an echo).

A pull is given, per linked record, the version the store remembers (``links.remote_version``)
and may leave out a record still at that version (:meth:`Connector.pull`'s ``known``). Leaving
a record out means "the remote still holds the baselines" to the planner, so a version is
remembered only when that is true of it: every field the record holds equals the field's
baseline (after this item's transaction), every note it carries is a known one, and nothing on
it was unreadable. Otherwise no version is remembered and the record is read, mapped and
planned whenever a pull finds it, as before.

A person's edit after the version was read gives the record a new version (Jira ``updated``,
in milliseconds; ServiceNow ``sys_mod_count``, which counts every update even within one
second), so it is never mistaken for an echo.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING

import structlog

from poam_sync.connectors.base import RemoteRecord, SyncValue, as_strings
from poam_sync.sync.actions import NOTES_BASELINE

if TYPE_CHECKING:
    from poam_sync.store import Store

__all__ = ["RememberedVersions", "remember_quiet", "settled_version"]

log = structlog.get_logger(__name__)
#: above this many records, a connector's links and baselines are read at once
_MANY = 200


class RememberedVersions(Mapping[str, str]):
    """``{remote_id: version}`` the links of one connector remember, read from the store the
    first time a pull looks one up: an idle cycle's pull, which lists nothing, reads none (at
    10,000 links the whole read is about 45 ms, every cycle). Built only for a connector whose
    links remember at least one version (``StoreTx.has_link_versions``), so it is never empty
    to a pull that tests it. Versions change only through this engine's own writes, after the
    pull, so reading them late sees what reading them first would have."""

    def __init__(self, store: Store, connector: str) -> None:
        self._store = store
        self._connector = connector
        self._versions: dict[str, str] | None = None
        self._lock = threading.Lock()  # a pull may list in several threads

    def _all(self) -> dict[str, str]:
        with self._lock:
            if self._versions is None:
                with self._store.read() as tx:
                    self._versions = tx.link_versions(self._connector)
            return self._versions

    def __bool__(self) -> bool:
        return True  # see the class: built only when some link remembers a version

    def __getitem__(self, remote_id: str) -> str:
        return self._all()[remote_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def settled_version(record: RemoteRecord, baselines: Mapping[str, SyncValue]) -> str | None:
    """``record.version`` when ``record`` holds exactly ``baselines`` (see the module), else
    None (the record is read again whenever a pull finds it)."""
    if record.problems:
        return None
    for name, value in record.fields.items():
        if name not in baselines or baselines[name] != value:
            return None
    if record.notes:
        known = set(as_strings(baselines.get(NOTES_BASELINE), NOTES_BASELINE))
        if any(n.id not in known for n in record.notes):
            return None
    return record.version


def remember_quiet(
    store: Store, pulled: Mapping[str, Mapping[str, RemoteRecord]], quiet: Collection[str]
) -> None:
    """After a cycle: the versions of the records pulled for items that had nothing to do (a
    record read back after our push, found equal), so the next pull leaves them out. One
    transaction; a failure only costs a re-read, so it is logged, never raised."""
    if not quiet or not any(pulled.values()):
        return
    try:
        with store.begin() as tx:
            for name, records in pulled.items():
                if not records:
                    continue
                many = len(records) > _MANY
                if many:
                    found = [link for link in tx.links(name) if link.remote_id in records]
                    all_base = tx.all_baselines(name)
                else:
                    found = [
                        link
                        for rid in records
                        if (link := tx.link_by_remote(name, rid)) is not None
                    ]
                versions: dict[str, str | None] = {}
                for link in found:
                    if link.item_uuid not in quiet or link.state == "broken":
                        continue
                    base = (
                        all_base.get(link.item_uuid, {})
                        if many
                        else tx.baselines(link.item_uuid, name)
                    )
                    version = settled_version(records[link.remote_id], base)
                    if version != link.remote_version:
                        versions[link.item_uuid] = version
                tx.set_link_versions(name, versions)
    except Exception as exc:  # noqa: BLE001 - an optimisation: the records are read again
        log.warning("sync.versions_not_remembered", error=f"{type(exc).__name__}: {exc}")
