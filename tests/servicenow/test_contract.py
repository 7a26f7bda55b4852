"""The shared connector contract, held against the simulator over HTTPS with pysnc."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from poam_sync.connectors.base import SyncValue
from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.model import Status
from poam_sync.simulators.servicenow import RunningServiceNow
from poam_sync.testing import ConnectorContract, Harness


class ServiceNowHarness(Harness):
    known_owner = "alice@example.com"
    other_owner = "bob@example.com"

    def __init__(self, run: RunningServiceNow, connector: ServiceNowConnector) -> None:
        self.run = run
        self.connector = connector
        self.table = connector.table

    def human_update(self, remote_id: str, field: str, value: SyncValue) -> None:
        column = self.connector.mapping.fields[field]
        self.run.sim.human_update(self.table, remote_id, {column: value})

    def human_comment(self, remote_id: str, body: str) -> None:
        self.run.sim.human_work_note(self.table, remote_id, body)

    def delete(self, remote_id: str) -> None:
        self.run.sim.delete(self.table, remote_id)

    def fail_next(self, status: int, count: int, retry_after: int | None = None) -> None:
        self.run.sim.control.add_fault(status, count=count, retry_after=retry_after)

    def block_status(self, status: str) -> None:
        # A data policy as GRC offices have them: closing needs close notes, which we never set.
        label = self.connector.mapping.states[Status(status)]
        self.run.sim.require_for_state(self.table, label, ["close_notes"])


class TestServiceNowContract(ConnectorContract):
    @pytest.fixture
    def harness(
        self, sn: RunningServiceNow, make_connector: Callable[..., ServiceNowConnector]
    ) -> Harness:
        # The contract checks that every field round-trips; the GRC issue's own state rules
        # (Respond needs an issue manager poam-sync does not sync) are tested in test_real_site.
        sn.sim.grc_state_rules = "off"
        return ServiceNowHarness(sn, make_connector())


class TestOfficeTableContract(ConnectorContract):
    """An office's own table without correlation_id: the stamp lives in a custom column."""

    @pytest.fixture
    def harness(
        self, sn: RunningServiceNow, make_connector: Callable[..., ServiceNowConnector]
    ) -> Harness:
        connector = make_connector(
            table="u_poam_item", stamp_field="u_poam_sync_id", stamp_display_field=None
        )
        return ServiceNowHarness(sn, connector)
