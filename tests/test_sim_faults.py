"""Fault modes both simulators share (``poam_sync.simulators._base``): a late answer after the
work was done, and a request whose body never arrived whole, which must change nothing."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from poam_sync.simulators.jira import (
    DEFAULT_EMAIL,
    DEFAULT_TOKEN,
    RunningJira,
    start_jira_simulator,
)
from poam_sync.simulators.servicenow import RunningServiceNow, start_servicenow_simulator
from poam_sync.simulators.servicenow.model import ADMIN_PASSWORD, ADMIN_USER

ISSUE = {
    "fields": {"project": {"key": "POAM"}, "issuetype": {"name": "Task"}, "summary": "Late one"}
}
RECORD = {"short_description": "Late one", "correlation_id": "late-1"}


@pytest.fixture
def jira() -> Iterator[RunningJira]:
    with start_jira_simulator(mode="cloud") as running:
        yield running


@pytest.fixture
def snow(tmp_path: Path) -> Iterator[RunningServiceNow]:
    with start_servicenow_simulator(tls_dir=tmp_path / "tls") as running:
        yield running


def _jira_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.auth = (DEFAULT_EMAIL, DEFAULT_TOKEN)
    return s


def _snow_session(snow: RunningServiceNow) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(snow.ca_path)
    s.auth = (ADMIN_USER, ADMIN_PASSWORD)
    s.headers["Accept"] = "application/json"
    return s


def _summaries(jira: RunningJira) -> list[str]:
    user = jira.sim.user_by_email(DEFAULT_EMAIL)
    return [str(i["fields"]["summary"]) for i in jira.sim.search("project = POAM", user)]


def _eventually(check: Callable[[], bool]) -> bool:
    """The server thread finishes its work on its own schedule: wait for it (bounded)."""
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_late_jira_create_is_done_although_the_client_gave_up(jira: RunningJira) -> None:
    s = _jira_session()
    r = s.post(f"{jira.url}/_sim/faults", json={"mode": "late", "delay_ms": 600, "count": 1})
    assert r.ok
    with pytest.raises(requests.Timeout):
        s.post(f"{jira.url}/rest/api/2/issue", json=ISSUE, timeout=0.2)
    assert _eventually(lambda: _summaries(jira) == ["Late one"])


def test_a_late_answer_still_arrives_for_a_patient_client(jira: RunningJira) -> None:
    s = _jira_session()
    s.post(f"{jira.url}/_sim/faults", json={"mode": "late", "delay_ms": 50, "count": 1})
    r = s.post(f"{jira.url}/rest/api/2/issue", json=ISSUE, timeout=10)
    assert r.status_code == 201 and r.json()["key"].startswith("POAM-")
    assert _summaries(jira) == ["Late one"]


def test_a_fault_naming_methods_leaves_other_calls_alone(jira: RunningJira) -> None:
    s = _jira_session()
    s.post(
        f"{jira.url}/_sim/faults",
        json={"mode": "late", "delay_ms": 600, "count": 1, "methods": ["POST"]},
    )
    assert s.get(f"{jira.url}/rest/api/2/myself", timeout=1).ok  # a GET is not held back
    with pytest.raises(requests.Timeout):
        s.post(f"{jira.url}/rest/api/2/issue", json=ISSUE, timeout=0.2)


def test_an_unknown_fault_mode_is_refused_with_the_modes_named(jira: RunningJira) -> None:
    r = _jira_session().post(f"{jira.url}/_sim/faults", json={"mode": "slow"})
    assert r.status_code == 400 and "late" in r.json()["error"]


def test_a_late_servicenow_insert_is_done_although_the_client_gave_up(
    snow: RunningServiceNow,
) -> None:
    s = _snow_session(snow)
    s.post(f"{snow.url}/_sim/faults", json={"mode": "late", "delay_ms": 600, "count": 1})
    with pytest.raises(requests.Timeout):
        s.post(f"{snow.url}/api/now/table/sn_grc_issue", json=RECORD, timeout=0.2)
    assert _eventually(
        lambda: [r["correlation_id"] for r in snow.sim.records("sn_grc_issue")] == ["late-1"]
    )


def _cut_mid_body(sock: socket.socket, host: str, path: str, auth: str, body: bytes) -> None:
    """Send the headers and a whole JSON value, but promise more body than that, then leave."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 100}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    sock.close()


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def test_jira_stores_nothing_from_a_request_cut_mid_body(jira: RunningJira) -> None:
    host, port = jira.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    auth = _basic(DEFAULT_EMAIL, DEFAULT_TOKEN)
    _cut_mid_body(sock, host, "/rest/api/2/issue", auth, json.dumps(ISSUE).encode())
    # The server saw the request and then its client leave: nothing was made.
    assert _eventually(lambda: jira.sim.control.abandoned == 1)
    assert _jira_session().get(f"{jira.url}/rest/api/2/myself", timeout=5).ok
    assert _summaries(jira) == []


def test_servicenow_stores_nothing_from_a_request_cut_mid_body(snow: RunningServiceNow) -> None:
    host, port = snow.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(snow.ca_path))
    raw = socket.create_connection((host, int(port)))
    sock = context.wrap_socket(raw, server_hostname=host)
    auth = _basic(ADMIN_USER, ADMIN_PASSWORD)
    path = "/api/now/table/sn_grc_issue"
    _cut_mid_body(sock, host, path, auth, json.dumps(RECORD).encode())
    assert _eventually(lambda: snow.sim.control.abandoned == 1)
    assert _snow_session(snow).get(f"{snow.url}{path}", timeout=5).ok
    assert snow.sim.records("sn_grc_issue") == []
