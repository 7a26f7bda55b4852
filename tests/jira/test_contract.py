"""The Jira connector holds the connector contract, on Cloud and on Data Center."""

from __future__ import annotations

from poam_sync.testing import ConnectorContract


class TestJiraContract(ConnectorContract):
    """Runs every contract test against the simulator in both modes (see conftest.harness)."""
