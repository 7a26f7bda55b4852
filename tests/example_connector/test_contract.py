"""The example connector's contract test: all a third-party connector's test file needs."""

from __future__ import annotations

import time

import pytest
from poam_sync_example import ExampleConnector

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.base import SyncValue
from poam_sync.connectors.memory import MemoryRemote
from poam_sync.testing import ConnectorContract, Harness


class ExampleHarness(Harness):
    known_owner = "alice@example.com"
    other_owner = "bob@example.com"

    def __init__(self) -> None:
        self.remote = MemoryRemote()
        self.connector = ExampleConnector(
            remote=self.remote,
            retry=RetryPolicy(
                base_delay=0.01, max_delay=0.05, sleep=lambda s: time.sleep(min(s, 0.05))
            ),
        )

    def human_update(self, remote_id: str, field: str, value: SyncValue) -> None:
        self.remote.human_write(remote_id, field, value, actor="carol@example.com")

    def human_comment(self, remote_id: str, body: str) -> None:
        self.remote.human_comment(remote_id, body, actor="carol@example.com")

    def delete(self, remote_id: str) -> None:
        self.remote.delete(remote_id)

    def fail_next(self, status: int, count: int, retry_after: int | None = None) -> None:
        self.remote.fail_next(status, count, retry_after=retry_after)

    def block_status(self, status: str) -> None:
        self.remote.blocked_statuses.add(status)


class TestExampleContract(ConnectorContract):
    @pytest.fixture
    def harness(self) -> Harness:
        return ExampleHarness()
