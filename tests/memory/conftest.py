"""The memory connector wired to its own in-process remote, and the contract harness for it."""

from __future__ import annotations

import time

import pytest

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.base import SyncValue
from poam_sync.connectors.memory import MemoryConnector, MemoryRemote, MemorySettings
from poam_sync.testing import Harness

FAST_RETRY = RetryPolicy(
    attempts=4,
    base_delay=0.01,
    max_delay=0.05,
    sleep=lambda seconds: time.sleep(min(seconds, 0.05)),  # Retry-After is honoured in full
)
PERSON = "carol@example.com"


class MemoryHarness(Harness):
    known_owner = "alice@example.com"
    other_owner = "bob@example.com"

    def __init__(self, remote: MemoryRemote, connector: MemoryConnector) -> None:
        self.remote = remote
        self.connector = connector

    def human_update(self, remote_id: str, field: str, value: SyncValue) -> None:
        self.remote.human_write(remote_id, field, value, actor=PERSON)

    def human_comment(self, remote_id: str, body: str) -> None:
        self.remote.human_comment(remote_id, body, actor=PERSON)

    def delete(self, remote_id: str) -> None:
        self.remote.delete(remote_id)

    def fail_next(self, status: int, count: int, retry_after: int | None = None) -> None:
        self.remote.fail_next(status, count, retry_after=retry_after)

    def block_status(self, status: str) -> None:
        self.remote.blocked_statuses.add(status)


@pytest.fixture
def remote() -> MemoryRemote:
    return MemoryRemote()


@pytest.fixture
def memory(remote: MemoryRemote) -> MemoryConnector:
    """Small pages, so that paging is exercised with a dozen records."""
    return MemoryConnector(
        MemorySettings(page_size=5), name="memory", remote=remote, retry=FAST_RETRY
    )
