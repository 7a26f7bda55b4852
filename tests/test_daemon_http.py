"""The daemon's HTTP endpoints: alive, ready in its role (leader, standby, degraded), metrics."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from poam_sync.health import DaemonState, HttpServer, metrics_text
from tests.sync.conftest import World, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared
from tests.test_daemon_leader import Proc, _wait_linked
from tests.test_daemon_leader import cfg as cfg  # the daemons' configuration, shared

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

_NAME = re.compile(r"^poam_sync_[a-z_]+$")


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # 127.0.0.1 only: no proxy, no CA bundle from the environment
    return session


def _samples(text: str) -> dict[str, float]:
    """Each sample of a Prometheus text exposition, read with prometheus-client's own parser
    (which refuses a malformed line); every name prefixed, every family typed."""
    assert text.endswith("\n")
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        assert family.type in ("counter", "gauge"), family
        assert family.documentation, f"{family.name} has no HELP"
        for sample in family.samples:
            assert _NAME.match(sample.name), sample.name
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


@pytest.fixture
def served() -> Iterator[tuple[DaemonState, str]]:
    state = DaemonState()
    server = HttpServer(state, "127.0.0.1", 0)
    url = server.start()
    try:
        yield state, url
    finally:
        server.stop()


def test_readyz_is_503_while_starting_or_degraded_and_200_while_leading(
    served: tuple[DaemonState, str],
) -> None:
    state, url = served
    http = _session()
    assert http.get(f"{url}/healthz", timeout=10).json() == {"alive": True}
    starting = http.get(f"{url}/readyz", timeout=10)
    assert starting.status_code == 503 and starting.json()["role"] == "starting"

    state.role = "leader"
    assert http.get(f"{url}/readyz", timeout=10).status_code == 200

    state.reasons = ["connector jira: Jira at https://jira.example.com is unreachable"]
    degraded = http.get(f"{url}/readyz", timeout=10)
    assert degraded.status_code == 503
    assert degraded.json()["role"] == "degraded"
    assert degraded.json()["reasons"] == state.reasons


def test_metrics_are_prometheus_text_with_every_name_prefixed() -> None:
    state = DaemonState(role="leader", cycles=3, failed_cycles=1, last_success=1765000000.5)
    state.changed["created"] = 7
    samples = _samples(metrics_text(state))
    assert samples["poam_sync_cycles_total"] == 3
    assert samples["poam_sync_cycle_failures_total"] == 1
    assert samples['poam_sync_items_total{kind="created"}'] == 7
    assert samples["poam_sync_leader"] == 1
    assert samples["poam_sync_last_success_timestamp_seconds"] == 1765000000.5


def test_metrics_count_remote_calls_retries_webhooks_and_what_the_store_holds() -> None:
    from poam_sync.telemetry import TELEMETRY

    TELEMETRY.call("jira", "get", 200)
    TELEMETRY.call("jira", "get", 200)
    TELEMETRY.call("servicenow", "patch", 429)
    TELEMETRY.retry("servicenow", waited=1.5, rate_limited=True)
    TELEMETRY.webhook("jira", "refused_401")
    state = DaemonState(role="leader", open_problems=2, overdue_items=1)
    state.items_by_status = {"open": 5, "completed": 1}
    state.claimed_elsewhere["jira"] = 3
    state.connector_success["jira"] = 1765000000.0
    samples = _samples(metrics_text(state))
    assert samples['poam_sync_remote_calls_total{connector="jira",method="GET",status="200"}'] >= 2
    assert (
        samples['poam_sync_remote_calls_total{connector="servicenow",method="PATCH",status="429"}']
        >= 1
    )
    assert samples['poam_sync_rate_limit_waits_total{connector="servicenow"}'] >= 1
    assert samples['poam_sync_rate_limit_wait_seconds_total{connector="servicenow"}'] >= 1.5
    assert samples['poam_sync_webhooks_total{outcome="refused_401",source="jira"}'] >= 1
    assert samples['poam_sync_items{status="open"}'] == 5
    assert samples["poam_sync_open_problems"] == 2
    assert samples["poam_sync_overdue_items"] == 1
    assert samples['poam_sync_claimed_elsewhere_total{connector="jira"}'] == 3
    assert samples['poam_sync_connector_last_success_timestamp_seconds{connector="jira"}'] == (
        1765000000.0
    )


def _url(proc: Proc) -> str:
    for line in proc.lines:
        if line.startswith("{") and json.loads(line)["event"] == "daemon.http":
            return str(json.loads(line)["url"])
    raise AssertionError(proc.text)


def test_two_daemons_report_leader_and_standby_on_readyz_and_in_their_metrics(
    world: World, cfg: Path
) -> None:
    world.add(poam(1), poam(2))
    daemons = [Proc(world, cfg, "run", "--http", "127.0.0.1:0") for _ in range(2)]
    http = _session()
    try:
        _wait_linked(world, 2)
        deadline = time.monotonic() + 30
        while not any("daemon.standby" in d.events() for d in daemons):
            assert time.monotonic() < deadline, [d.text for d in daemons]
            time.sleep(0.1)
        while not any("sync.cycle" in d.events() for d in daemons):
            assert time.monotonic() < deadline, [d.text for d in daemons]
            time.sleep(0.1)
        roles = {}
        for d in daemons:
            ready = http.get(f"{_url(d)}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            roles[ready.json()["role"]] = _samples(http.get(f"{_url(d)}/metrics", timeout=10).text)
        assert set(roles) == {"leader", "standby"}
        assert (
            roles["leader"]["poam_sync_leader"] == 1 and roles["standby"]["poam_sync_leader"] == 0
        )
        assert roles["leader"]["poam_sync_cycles_total"] >= 1
        assert roles["leader"]['poam_sync_items_total{kind="created"}'] == 4  # 2 items x 2 sides
        assert roles["standby"]["poam_sync_cycles_total"] == 0
        # the leader's own calls to both simulators, counted by connector, method and status
        calls = {k: v for k, v in roles["leader"].items() if "remote_calls_total" in k}
        assert any('connector="jira"' in k and 'status="201"' in k for k in calls), calls
        assert any('connector="servicenow"' in k for k in calls), calls
        assert roles["leader"]['poam_sync_items{status="open"}'] == 2
        assert all(d.stop() == 0 for d in daemons)
    finally:
        for d in daemons:
            d.kill()


def test_a_bad_listen_address_is_one_json_line_and_exit_2(world: World, cfg: Path) -> None:
    proc = Proc(world, cfg, "run", "--http", "localhost")
    code = proc.popen.wait(timeout=60)
    proc.kill()
    assert code == 2
    (line,) = [json.loads(text) for text in proc.lines]
    assert line["event"] == "daemon.start_failed" and "HOST:PORT" in line["error"]


def test_the_daemon_serves_the_workbench_beside_its_endpoints(world: World, cfg: Path) -> None:
    world.add(poam(1))
    daemon = Proc(world, cfg, "run", "--http", "127.0.0.1:0")
    http = _session()
    try:
        _wait_linked(world, 1)
        base = _url(daemon)
        assert http.get(f"{base}/healthz", timeout=10).json() == {"alive": True}
        # Nothing is anonymous: the workbench's pages send a stranger to the sign-in form.
        items = http.get(f"{base}/items", timeout=10, allow_redirects=False)
        assert items.status_code == 303 and items.headers["location"].startswith("/login")
        login = http.get(f"{base}/login", timeout=10)
        assert login.status_code == 200 and "<form" in login.text
        assert "default-src 'none'" in login.headers["content-security-policy"]  # no script
        assert daemon.stop() == 0
    finally:
        daemon.kill()
