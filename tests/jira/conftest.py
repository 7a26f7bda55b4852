"""Fixtures for the Jira tests: a simulator per test (Cloud and Data Center), a connector
wired to it over real HTTP, and the contract harness."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from jira import JIRA
from pydantic import SecretStr

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.base import SyncValue
from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping, load_jira_mapping
from poam_sync.connectors.jira.settings import JiraSettings
from poam_sync.model import Status
from poam_sync.simulators.jira import (
    DEFAULT_EMAIL,
    DEFAULT_PAT,
    DEFAULT_TOKEN,
    RunningJira,
    start_jira_simulator,
)
from poam_sync.testing import Harness

MAPPING_FILE = Path(__file__).resolve().parents[2] / "mappings" / "jira.yaml"


def quick_sleep(seconds: float) -> None:
    """The simulators' Retry-After (whole seconds) is honoured in full, so tests wait less."""
    time.sleep(min(seconds, 0.05))


FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, sleep=quick_sleep)


@pytest.fixture(params=["cloud", "datacenter"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def jira_sim(mode: str) -> Iterator[RunningJira]:
    running = start_jira_simulator(mode=mode)
    yield running
    running.stop()


@pytest.fixture
def cloud_sim() -> Iterator[RunningJira]:
    running = start_jira_simulator(mode="cloud")
    yield running
    running.stop()


@pytest.fixture
def dc_sim() -> Iterator[RunningJira]:
    running = start_jira_simulator(mode="datacenter")
    yield running
    running.stop()


def client_for(running: RunningJira) -> JIRA:
    """The real ``jira`` client, as a person at a Python prompt would make it."""
    if running.sim.cloud:
        return JIRA(running.url, basic_auth=(DEFAULT_EMAIL, DEFAULT_TOKEN), max_retries=0)
    return JIRA(running.url, token_auth=DEFAULT_PAT, max_retries=0)


@pytest.fixture
def jira_client(jira_sim: RunningJira) -> Iterator[JIRA]:
    client = client_for(jira_sim)
    yield client
    client.close()


@pytest.fixture(scope="session")
def mapping() -> JiraMapping:
    return load_jira_mapping(MAPPING_FILE)


def settings_for(running: RunningJira, **over: object) -> JiraSettings:
    auth: dict[str, object] = (
        {"email": DEFAULT_EMAIL, "token": SecretStr(DEFAULT_TOKEN)}
        if running.sim.cloud
        else {"pat": SecretStr(DEFAULT_PAT)}
    )
    return JiraSettings.model_validate({"url": running.url, "project_key": "POAM", **auth, **over})


@pytest.fixture
def connector(jira_sim: RunningJira, mapping: JiraMapping) -> Iterator[JiraConnector]:
    c = JiraConnector(settings_for(jira_sim), mapping, retry=FAST_RETRY)
    yield c
    c.close()


class JiraHarness(Harness):
    known_owner = "alice@example.com"
    other_owner = "bob@example.com"

    def __init__(self, running: RunningJira, connector: JiraConnector) -> None:
        self.running = running
        self.sim = running.sim
        self.connector = connector
        self.mapping = connector.mapping

    def human_update(self, remote_id: str, field: str, value: SyncValue) -> None:
        if field == "status":
            target = self.mapping.statuses[Status(str(value))]
            self.sim.human_transition(
                remote_id, target.status, resolution=target.resolution or "Done"
            )
        elif field == "owner":
            self.sim.human_assign(remote_id, str(value) if value else None)
        elif field == "due_date":
            self.sim.human_set_due_date(remote_id, date.fromisoformat(str(value)))
        elif field == "title":
            self.sim.human_edit(remote_id, "summary", value)
        elif field == "description":
            self.sim.human_edit(remote_id, "description", value)
        else:
            raise NotImplementedError(field)

    def human_comment(self, remote_id: str, body: str) -> None:
        self.sim.human_comment(remote_id, body)

    def delete(self, remote_id: str) -> None:
        self.sim.delete_issue(remote_id)

    def fail_next(self, status: int, count: int, retry_after: int | None = None) -> None:
        self.sim.control.add_fault(status, count=count, retry_after=retry_after)

    def block_status(self, status: str) -> None:
        self.sim.block_status(self.mapping.statuses[Status(status)].status)


@pytest.fixture
def harness(jira_sim: RunningJira, connector: JiraConnector) -> JiraHarness:
    return JiraHarness(jira_sim, connector)
