"""The memory connector holds the same contract as Jira and ServiceNow."""

from __future__ import annotations

import pytest

from poam_sync.connectors.memory import MemoryConnector, MemoryRemote
from poam_sync.testing import ConnectorContract, Harness
from tests.memory.conftest import MemoryHarness


class TestMemoryContract(ConnectorContract):
    @pytest.fixture
    def harness(self, remote: MemoryRemote, memory: MemoryConnector) -> Harness:
        return MemoryHarness(remote, memory)
