"""Fencing a cycle's writes behind the leader lock.

A *fence* is a callable that returns when this process may still write and raises
:class:`poam_sync.errors.LeadershipLost` when it may not (the leader lock's ``check``). The
engine hands the executor a stop signal and connectors wrapped here, so the fence is asked
before every item is applied (the executor looks at its stop signal between items) and before
every remote write (each create batch, update, batch of updates and note): a leader whose lock
connection dropped stops writing at once instead of racing the standby that took over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from poam_sync.connectors.base import (
    Connector,
    RemoteRecord,
    Stamp,
    SyncValue,
    SyncValues,
    Uncovered,
    WriteResult,
)
from poam_sync.model import Note

Fence = Callable[[], None]


class FencedStop(threading.Event):
    """A stop signal that also asks the fence each time it is looked at."""

    def __init__(self, inner: threading.Event, fence: Fence) -> None:
        super().__init__()
        self._inner = inner
        self._fence = fence

    def is_set(self) -> bool:
        self._fence()
        return self._inner.is_set()

    def set(self) -> None:
        self._inner.set()


class FencedConnector(Connector):
    """``inner``, whose remote writes first ask the fence; reads pass straight through."""

    def __init__(self, inner: Connector, fence: Fence) -> None:
        self._inner = inner
        self._fence = fence
        self.name = inner.name
        self.synced_fields = inner.synced_fields
        self.skips_echoes = inner.skips_echoes
        self.max_in_flight = inner.max_in_flight
        self.update_batch = inner.update_batch

    def __getattr__(self, name: str) -> object:
        # what a connector offers beyond the base class (read as the connector's own)
        return getattr(self._inner, name)

    def prepare(self) -> None:
        self._inner.prepare()

    def project(self, field: str, value: SyncValue) -> SyncValue:
        return self._inner.project(field, value)

    def check(self) -> dict[str, str]:
        return self._inner.check()

    def pull(
        self, since: datetime | None, known: Mapping[str, str] | None = None
    ) -> Iterator[RemoteRecord]:
        return self._inner.pull(since, known)

    def get(self, remote_id: str) -> RemoteRecord:
        return self._inner.get(remote_id)

    def find_by_stamp(self, stamp: Stamp) -> RemoteRecord | None:
        return self._inner.find_by_stamp(stamp)

    def create(self, stamp: Stamp, fields: SyncValues) -> WriteResult:
        self._fence()
        return self._inner.create(stamp, fields)

    def create_many(
        self, batch: Sequence[tuple[Stamp, SyncValues]]
    ) -> list[WriteResult | Exception]:
        self._fence()
        return self._inner.create_many(batch)

    def update(self, remote_id: str, changes: SyncValues) -> WriteResult:
        self._fence()
        return self._inner.update(remote_id, changes)

    def update_many(self, batch: Sequence[tuple[str, SyncValues]]) -> list[WriteResult | Exception]:
        self._fence()
        return self._inner.update_many(batch)

    def add_note(self, remote_id: str, note: Note) -> None:
        self._fence()
        self._inner.add_note(remote_id, note)

    def list_remote_ids(self) -> Iterable[str] | None:
        return self._inner.list_remote_ids()

    def uncovered(self) -> Sequence[Uncovered]:
        return self._inner.uncovered()

    def close(self) -> None:
        self._inner.close()


def fenced(connectors: Mapping[str, Connector], fence: Fence | None) -> dict[str, Connector]:
    """``connectors`` with their writes behind ``fence`` (as they are without one)."""
    if fence is None:
        return dict(connectors)
    return {name: FencedConnector(c, fence) for name, c in connectors.items()}
