"""Fixtures of the ServiceNow tests: one simulator over HTTPS per session, connectors on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping, load_servicenow_mapping
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.simulators.servicenow import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    RunningServiceNow,
    ServiceNowSimulator,
    TableSpec,
    issue_columns,
    start_servicenow_simulator,
)

MAPPING_PATH = Path(__file__).resolve().parents[2] / "mappings" / "servicenow.yaml"
TABLE = "sn_grc_issue"

#: a plausible item's canonical values (what most tests create)
FIELDS: dict[str, Any] = {
    "title": "Outdated OpenSSL",
    "description": "web-01",
    "status": "open",
    "owner": "alice@example.com",
    "due_date": "2027-03-03",
    "original_risk": "high",
    "controls": ["SI-2"],
}

#: an office's own POA&M table, without correlation_id: the stamp goes into u_poam_sync_id
OFFICE_TABLE = TableSpec(
    "u_poam_item",
    "POA&M item",
    (*issue_columns(with_correlation=False, stamp_field="u_poam_sync_id"),),
    "POAM",
)


@pytest.fixture(scope="session")
def sn_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServiceNow]:
    sim = ServiceNowSimulator(extra_tables=[OFFICE_TABLE])
    run = start_servicenow_simulator(tls_dir=tmp_path_factory.mktemp("sn-tls"), sim=sim)
    yield run
    run.stop()


@pytest.fixture
def sn(sn_run: RunningServiceNow) -> Iterator[RunningServiceNow]:
    """The running simulator, with faults, latency and data policies cleared after the test."""
    sn_run.sim.control.reset()
    yield sn_run
    sn_run.sim.control.reset()
    sn_run.sim.reset_rules()
    sn_run.sim.enable_client_credentials(False)
    sn_run.sim.lose_answers = 0


@pytest.fixture(scope="session")
def sn_mapping() -> ServiceNowMapping:
    return load_servicenow_mapping(MAPPING_PATH)


def quick_sleep(seconds: float) -> None:
    """The simulators' Retry-After (whole seconds) is honoured in full, so tests wait less."""
    time.sleep(min(seconds, 0.05))


FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=1.5, sleep=quick_sleep)


@pytest.fixture
def make_connector(
    sn: RunningServiceNow, sn_mapping: ServiceNowMapping
) -> Iterator[Callable[..., ServiceNowConnector]]:
    made: list[ServiceNowConnector] = []

    def make(
        *, mapping: ServiceNowMapping | None = None, retry: RetryPolicy = FAST_RETRY, **over: Any
    ) -> ServiceNowConnector:
        values: dict[str, Any] = {
            "url": sn.url,
            "user": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            "ca_bundle": sn.ca_path,
            "page_size": 5,
        }
        values.update(over)
        connector = ServiceNowConnector(
            ServiceNowSettings(**values), mapping or sn_mapping, retry=retry
        )
        made.append(connector)
        return connector

    yield make
    for c in made:
        c.close()


@pytest.fixture
def http(sn: RunningServiceNow) -> Iterator[requests.Session]:
    """A plain requests session on the simulator, as admin, trusting its CA."""
    s = requests.Session()
    s.trust_env = False
    s.verify = str(sn.ca_path)
    s.auth = (ADMIN_USER, ADMIN_PASSWORD)
    yield s
    s.close()
