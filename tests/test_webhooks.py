"""Webhook receivers over real HTTP: signed events queue a pull, bad ones are refused; the
simulators send these webhooks themselves (Jira: a registered admin webhook; ServiceNow: the
documented business rule), and their signatures pass the receivers' checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from poam_sync.config import Config, parse_config
from poam_sync.errors import ConfigError
from poam_sync.health import DaemonState, HttpServer
from poam_sync.simulators.jira import start_jira_simulator
from poam_sync.simulators.jira.model import DEFAULT_EMAIL, DEFAULT_TOKEN
from poam_sync.simulators.servicenow import ServiceNowSimulator
from poam_sync.webhooks import PullQueue, wait_between_cycles, webhook_routes
from tests.sync.conftest import config_dict

JIRA_SECRET = "It's a Secret to Everybody"
DC_TOKEN = "dc-token-7f3a"
SNOW_SECRET = "snow-shared-secret"
SYS_ID = "0123456789abcdef0123456789abcdef"

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _config(tmp_path: Path, **webhooks: Any) -> Config:
    stub = type("W", (), {"db_url": f"sqlite:///{tmp_path / 'x.db'}"})()
    raw = config_dict(stub)
    raw["webhooks"] = {
        "jira": {"secret": "${JIRA_HOOK_SECRET}", "token": "${JIRA_HOOK_TOKEN}"},
        "servicenow": {"secret": "${SNOW_HOOK_SECRET}"},
        "max_body_bytes": 4096,
        **webhooks,
    }
    env = {
        "JIRA_URL": "https://jira.example.com",
        "JIRA_USER": "sync@example.com",
        "JIRA_TOKEN": "t",
        "SERVICENOW_URL": "https://sn.example.com",
        "SERVICENOW_USER": "poam.sync",
        "SERVICENOW_PASSWORD": "p",
        "SERVICENOW_CA_BUNDLE": str(tmp_path),
        "JIRA_HOOK_SECRET": JIRA_SECRET,
        "JIRA_HOOK_TOKEN": DC_TOKEN,
        "SNOW_HOOK_SECRET": SNOW_SECRET,
    }
    return parse_config(raw, env=env)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, PullQueue]]:
    pulls = PullQueue()
    server = HttpServer(DaemonState(), "127.0.0.1", 0, webhook_routes(_config(tmp_path), pulls))
    url = server.start()
    try:
        yield url, pulls
    finally:
        server.stop()


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def _jira_event(issue_id: str = "10001", key: str = "POAM-1", **fields: Any) -> bytes:
    event = {
        "timestamp": 1765000000000,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "issue": {"id": issue_id, "key": key, "fields": {"project": {"key": "POAM"}, **fields}},
        "changelog": {"id": "10500", "items": [{"field": "status", "toString": "In Progress"}]},
    }
    return json.dumps(event).encode()


def _hub(body: bytes, secret: str = JIRA_SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={mac}", "Content-Type": "application/json"}


def _snow(body: dict[str, str], secret: str = SNOW_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    mac = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return raw, {"X-Poam-Sync-Signature": f"sha256={mac}", "Content-Type": "application/json"}


# -- Jira --------------------------------------------------------------------------------------


def test_a_signed_jira_event_queues_a_pull_of_its_issue(receiver: tuple[str, PullQueue]) -> None:
    url, pulls = receiver
    body = _jira_event()
    answer = _http().post(f"{url}/webhooks/jira", data=body, headers=_hub(body), timeout=10)
    assert answer.status_code == 202 and answer.json() == {"queued": 1}
    assert pulls.drain() == {"jira": frozenset({"10001"})}


def test_a_sub_task_event_queues_its_parent_the_poam_record(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    body = _jira_event("10009", "POAM-9", parent={"id": "10001", "key": "POAM-1"})
    answer = _http().post(f"{url}/webhooks/jira", data=body, headers=_hub(body), timeout=10)
    assert answer.status_code == 202
    assert pulls.drain() == {"jira": frozenset({"10001"})}


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no signature at all
        _hub(_jira_event(), secret="another secret"),  # signed with the wrong secret
        _hub(b"a different body"),  # a signature of another body
        {"X-Hub-Signature": "sha1=" + "0" * 40},  # not the algorithm Jira uses
    ],
    ids=["missing", "wrong-secret", "other-body", "sha1"],
)
def test_a_jira_event_without_a_valid_signature_is_401_and_queues_nothing(
    receiver: tuple[str, PullQueue], headers: dict[str, str]
) -> None:
    url, pulls = receiver
    answer = _http().post(f"{url}/webhooks/jira", data=_jira_event(), headers=headers, timeout=10)
    assert answer.status_code == 401
    assert "signature" in answer.json()["error"].lower()
    assert pulls.drain() == {}


def test_a_data_center_webhook_may_carry_a_token_in_its_url_or_a_header(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    http = _http()
    body = _jira_event()
    assert (
        http.post(f"{url}/webhooks/jira?token={DC_TOKEN}", data=body, timeout=10).status_code == 202
    )
    ok = http.post(
        f"{url}/webhooks/jira", data=body, headers={"X-Poam-Sync-Token": DC_TOKEN}, timeout=10
    )
    assert ok.status_code == 202
    assert http.post(f"{url}/webhooks/jira?token=guess", data=body, timeout=10).status_code == 401
    assert pulls.received == 2


def test_an_event_of_a_project_nobody_syncs_is_400(receiver: tuple[str, PullQueue]) -> None:
    url, pulls = receiver
    body = json.loads(_jira_event())
    body["issue"]["fields"]["project"]["key"] = "HR"
    raw = json.dumps(body).encode()
    answer = _http().post(f"{url}/webhooks/jira", data=raw, headers=_hub(raw), timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {"error": "no connector syncs the Jira project HR"}
    assert pulls.drain() == {}


def test_a_body_over_the_limit_is_413_before_its_signature_is_looked_at(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    body = _jira_event(summary="x" * 5000)
    answer = _http().post(f"{url}/webhooks/jira", data=body, headers=_hub(body), timeout=10)
    assert answer.status_code == 413
    assert pulls.drain() == {}


def test_a_deleted_top_level_issue_is_accepted_and_queues_nothing(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    event = json.loads(_jira_event())
    event["webhookEvent"] = "jira:issue_deleted"
    raw = json.dumps(event).encode()
    answer = _http().post(f"{url}/webhooks/jira", data=raw, headers=_hub(raw), timeout=10)
    assert answer.status_code == 202 and answer.json() == {"queued": 0}
    assert pulls.drain() == {}


# -- ServiceNow ----------------------------------------------------------------------------


def test_a_signed_business_rule_call_queues_its_record_and_a_milestone_its_parent(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    http = _http()
    raw, headers = _snow({"table": "sn_grc_issue", "sys_id": SYS_ID, "operation": "update"})
    assert http.post(
        f"{url}/webhooks/servicenow", data=raw, headers=headers, timeout=10
    ).json() == {"queued": 1}
    child = "f" * 32
    raw, headers = _snow(
        {"table": "sn_irm_cont_auth_milestone_task", "sys_id": "a" * 32, "parent": child}
    )
    assert http.post(f"{url}/webhooks/servicenow", data=raw, headers=headers, timeout=10).ok
    assert pulls.drain() == {"servicenow": frozenset({SYS_ID, child})}


def test_a_business_rule_call_signed_wrongly_or_for_another_table_queues_nothing(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    http = _http()
    raw, headers = _snow({"table": "sn_grc_issue", "sys_id": SYS_ID}, secret="guess")
    assert (
        http.post(f"{url}/webhooks/servicenow", data=raw, headers=headers, timeout=10).status_code
        == 401
    )
    raw, headers = _snow({"table": "incident", "sys_id": SYS_ID})
    other = http.post(f"{url}/webhooks/servicenow", data=raw, headers=headers, timeout=10)
    assert other.status_code == 400
    assert other.json() == {"error": "no connector syncs the ServiceNow table incident"}
    raw, headers = _snow({"table": "sn_grc_issue", "sys_id": "../../etc"})
    assert (
        http.post(f"{url}/webhooks/servicenow", data=raw, headers=headers, timeout=10).status_code
        == 400
    )
    assert pulls.drain() == {}


def test_a_literal_webhook_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        _config(tmp_path, servicenow={"secret": "written-in-the-file"})
    assert (
        refused.value.message == "[webhooks.servicenow] secret <- a secret is written in the file"
    )


def test_a_jira_receiver_needs_a_secret_or_a_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        _config(tmp_path, jira={})
    assert "secret" in refused.value.message and "webhooks" in refused.value.message


# -- the daemon's wait between cycles --------------------------------------------------------


def test_events_are_debounced_into_one_targeted_pull_between_cycles() -> None:
    import threading

    pulls, stop = PullQueue(), threading.Event()
    batches: list[dict[str, frozenset[str]]] = []

    def targeted(batch: dict[str, frozenset[str]]) -> None:
        batches.append(batch)
        stop.set()  # end the wait after the first pull

    pulls.put("jira", "10001")
    pulls.put("jira", "10001")
    pulls.put("servicenow", SYS_ID)
    assert wait_between_cycles(stop, pulls, 30, 0.2, targeted) is True
    assert batches == [{"jira": frozenset({"10001"}), "servicenow": frozenset({SYS_ID})}]


# -- the simulators send them --------------------------------------------------------------


def _wait_received(pulls: PullQueue, count: int) -> None:
    deadline = time.monotonic() + 20
    while pulls.received < count:
        assert time.monotonic() < deadline, f"{pulls.received} of {count} events arrived"
        time.sleep(0.05)


def test_the_jira_simulator_sends_signed_webhooks_registered_through_its_rest_api(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    with start_jira_simulator(mode="cloud") as jira:
        http = _http()
        http.auth = (DEFAULT_EMAIL, DEFAULT_TOKEN)
        made = http.post(
            f"{jira.url}/rest/webhooks/1.0/webhook",
            json={
                "name": "poam-sync",
                "url": f"{url}/webhooks/jira",
                "events": ["jira:issue_created", "jira:issue_updated"],
                "filters": {"issue-related-events-section": "project = POAM"},
                "secret": JIRA_SECRET,
            },
            timeout=10,
        )
        assert made.status_code == 201, made.text
        assert "secret" not in made.json()  # never shown back
        created = http.post(
            f"{jira.url}/rest/api/2/issue",
            json={
                "fields": {
                    "project": {"key": "POAM"},
                    "summary": "x",
                    "issuetype": {"name": "Task"},
                }
            },
            timeout=10,
        ).json()
        jira.sim.human_transition(created["key"], "In Progress")
        _wait_received(pulls, 2)
        assert jira.sim.outbound.drain()
        assert [d.status for d in jira.sim.outbound.deliveries] == [202, 202]
        sent = json.loads(jira.sim.outbound.deliveries[1].body)
        assert sent["webhookEvent"] == "jira:issue_updated"
        assert sent["changelog"]["items"][0]["toString"] == "In Progress"
        assert pulls.drain() == {"jira": frozenset({created["id"]})}
        listed = http.get(f"{jira.url}/rest/webhooks/1.0/webhook", timeout=10).json()
        assert [h["url"] for h in listed] == [f"{url}/webhooks/jira"]


def test_the_servicenow_simulator_calls_out_on_changes_as_the_documented_rule_does(
    receiver: tuple[str, PullQueue],
) -> None:
    url, pulls = receiver
    sim = ServiceNowSimulator()
    sim.send_changes_to(f"{url}/webhooks/servicenow", secret=SNOW_SECRET, skip_user="poam.sync")
    row = sim.human_create("sn_grc_issue", {"short_description": "made by a person"})
    sim.human_update("sn_grc_issue", row["sys_id"], {"description": "edited"})
    sim.human_update("sn_grc_issue", row["sys_id"], {"description": "ours"}, user="poam.sync")
    assert sim.outbound.drain()
    assert [d.status for d in sim.outbound.deliveries] == [202, 202]  # our own write: no call
    assert pulls.drain() == {"servicenow": frozenset({row["sys_id"]})}
