"""The real path: a daemon serving the receivers, the simulators sending signed webhooks, and a
change on one side reaching the other through a targeted pull, long before the next full cycle
(the interval is five minutes here, so only a webhook can explain it)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from poam_sync.simulators.servicenow.model import ADMIN_USER
from tests.sync.conftest import World, config_dict, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared
from tests.test_daemon_leader import Proc, _wait_linked

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

JIRA_SECRET = "jira-webhook-secret"
SNOW_SECRET = "snow-webhook-secret"


def _daemon_url(proc: Proc) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in list(proc.lines):
            if line.startswith("{") and json.loads(line)["event"] == "daemon.http":
                return str(json.loads(line)["url"])
        time.sleep(0.1)
    pytest.fail(proc.text)


def _until(check: object, what: str, proc: Proc, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen:\n{proc.text}")
        time.sleep(0.1)


def _targeted_cycles(proc: Proc) -> list[dict[str, object]]:
    out = []
    for line in list(proc.lines):
        if line.startswith("{"):
            event = json.loads(line)
            if event["event"] == "sync.cycle" and event.get("targeted"):
                out.append(event)
    return out


def test_a_status_changed_on_either_side_reaches_the_other_by_webhook(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_HOOK_SECRET", JIRA_SECRET)
    monkeypatch.setenv("SNOW_HOOK_SECRET", SNOW_SECRET)
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 300, "takeover_seconds": 1}
    raw["webhooks"] = {
        "jira": {"secret": "${JIRA_HOOK_SECRET}"},
        "servicenow": {"secret": "${SNOW_HOOK_SECRET}"},
        "debounce_seconds": 0.2,
    }
    cfg = tmp_path / "poam-sync.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    item = poam(1)
    world.add(item, poam(2))
    daemon = Proc(world, cfg, "run", "--http", "127.0.0.1:0")
    try:
        url = _daemon_url(daemon)
        _wait_linked(world, 2)
        daemon.wait_for("sync.cycle")  # the first full cycle is over
        world.jira.sim.register_webhook(f"{url}/webhooks/jira", secret=JIRA_SECRET)
        world.snow.sim.send_changes_to(
            f"{url}/webhooks/servicenow", secret=SNOW_SECRET, skip_user=ADMIN_USER
        )
        key, sys_id = world.jira_key(item), world.snow_id(item)

        # Jira -> ServiceNow: "In Progress" is remediating, ServiceNow's "Respond"
        world.jira.sim.human_transition(key, "In Progress")
        respond = world.snow.sim._state_value("sn_grc_issue", "Respond")
        _until(
            lambda: world.snow.sim.record("sn_grc_issue", sys_id)["state"] == respond,
            "the Jira change reaching ServiceNow",
            daemon,
        )
        # ServiceNow -> Jira: "Review" is deviation_requested, Jira's "In Review"
        world.snow.sim.human_update("sn_grc_issue", sys_id, {"state": "Review"})
        _until(
            lambda: world.jira.sim.issue(key)["fields"]["status"]["name"] == "In Review",
            "the ServiceNow change reaching Jira",
            daemon,
        )
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    events = daemon.events()
    assert events.count("webhook.queued") >= 2
    assert "webhook.refused" not in events  # the simulators' signatures are accepted
    assert len(_targeted_cycles(daemon)) >= 2
    # only one full cycle ran (at the start): the rest was the webhooks' doing
    full = [e for e in events if e == "sync.cycle"]
    assert len(full) - len(_targeted_cycles(daemon)) == 1
    assert "Traceback" not in daemon.text


def test_a_targeted_cycle_reads_only_the_named_records_and_moves_no_watermark(
    world: World,
) -> None:
    one, two = poam(1), poam(2)
    world.add(one, two)
    engine = world.engine()
    assert engine.run_cycle().ok
    with world.store.read() as tx:
        marks = {n: tx.watermark(n) for n in ("jira", "servicenow")}
    key1, key2 = world.jira_key(one), world.jira_key(two)
    world.jira.sim.human_transition(key1, "In Progress")
    world.jira.sim.human_transition(key2, "In Progress")
    issue_id = str(world.jira.sim.issue(key1)["id"])
    world.jira.sim.control.reset()

    report = engine.run_cycle(fetch={"jira": {issue_id}})

    assert report.ok and report.pulled == {"jira": 1, "servicenow": 0}
    respond = world.snow.sim._state_value("sn_grc_issue", "Respond")
    assert world.snow.sim.record("sn_grc_issue", world.snow_id(one))["state"] == respond
    assert world.snow.sim.record("sn_grc_issue", world.snow_id(two))["state"] != respond
    searches = [e for e in world.jira.sim.control.calls if "search" in e]
    assert searches == []  # read by id: a lagging search index cannot hide it
    with world.store.read() as tx:
        assert {n: tx.watermark(n) for n in ("jira", "servicenow")} == marks
    # the next full cycle still finds the other change
    assert engine.run_cycle().ok
    assert world.snow.sim.record("sn_grc_issue", world.snow_id(two))["state"] == respond
