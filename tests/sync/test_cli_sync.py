"""The admin's side through the real command: dry runs, settling conflicts, the daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from poam_sync.model import with_fields
from tests.sync.conftest import ROOT, World, config_dict, poam

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def cli(world: World, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "poam-sync.yaml"
    if not cfg.exists():
        cfg.write_text(yaml.safe_dump(config_dict(world)), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "poam_sync", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **world.env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        check=False,
    )


@pytest.fixture
def conflicted(world: World) -> World:
    world.add(poam(1))
    engine = world.engine()
    engine.run_cycle()
    key = world.jira_key(world.store.item("acme", "V-1"))
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "ISSO title"}))
    world.jira.sim.human_edit(key, "summary", "Engineer title", user_email="bob@example.com")
    assert engine.run_cycle().conflicts == 1
    return world


def test_a_conflict_shows_where_its_item_lives(conflicted: World, tmp_path: Path) -> None:
    world = conflicted
    (conflict,) = json.loads(cli(world, tmp_path, "conflicts", "list", "--json").stdout)
    shown = cli(world, tmp_path, "conflicts", "show", str(conflict["id"]))
    assert shown.returncode == 0, shown.stderr
    links = {k["connector"]: k for k in json.loads(shown.stdout)["links"]}
    key = world.jira_key(world.store.item("acme", "V-1"))
    assert links["jira"]["key"] == key
    assert links["jira"]["url"].endswith(f"/browse/{key}")
    assert links["servicenow"]["key"] and links["servicenow"]["url"].startswith("http")


@pytest.mark.parametrize("take", ["local", "jira"])
def test_settling_a_conflict_logs_it_and_the_next_cycle_pushes_the_choice(
    conflicted: World, tmp_path: Path, take: str
) -> None:
    world = conflicted
    listed = cli(world, tmp_path, "conflicts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (conflict,) = json.loads(listed.stdout)
    assert (conflict["field"], conflict["local"], conflict["remote"]) == (
        "title",
        "ISSO title",
        "Engineer title",
    )
    done = cli(
        world,
        tmp_path,
        "conflicts",
        "resolve",
        str(conflict["id"]),
        "--take",
        take,
        "--reason",
        "agreed in the weekly review",
    )
    assert done.returncode == 0, done.stderr
    expected = "ISSO title" if take == "local" else "Engineer title"
    report = world.engine().run_cycle()
    assert report.ok, report.errors
    assert world.store.item("acme", "V-1").title == expected
    key = world.jira_key(world.store.item("acme", "V-1"))
    assert world.jira.sim.issue(key)["fields"]["summary"] == expected
    record = world.snow.sim.record("sn_grc_issue", world.snow_id(world.store.item("acme", "V-1")))
    assert record["short_description"] == expected
    rows = [r for r in world.store.log() if r.field == "title" and r.source == "cli"]
    assert rows and "agreed in the weekly review" in (rows[-1].reason or "")
    assert json.loads(cli(world, tmp_path, "conflicts", "list", "--json").stdout) == []
    assert world.store.verify_log().ok


def test_resolving_needs_a_reason_and_one_choice(conflicted: World, tmp_path: Path) -> None:
    both = cli(
        conflicted,
        tmp_path,
        "conflicts",
        "resolve",
        "1",
        "--take",
        "local",
        "--value",
        "x",
        "--reason",
        "r",
    )
    assert both.returncode == 2
    wrong = cli(
        conflicted, tmp_path, "conflicts", "resolve", "1", "--take", "servicenow", "--reason", "r"
    )
    assert wrong.returncode == 2 and "is with jira" in wrong.stderr


def test_sync_dry_run_prints_each_action_and_its_why(world: World, tmp_path: Path) -> None:
    world.add(poam(1))
    done = cli(world, tmp_path, "sync", "--once", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["dry_run"] is True
    creates = [a for a in data["actions"] if a["action"] == "CreateRemote"]
    assert {a["connector"] for a in creates} == {"jira", "servicenow"}
    assert all("not linked yet" in a["why"] for a in creates)
    with world.store.read() as tx:
        assert tx.links("jira") == []


def test_a_dry_run_says_what_it_would_do_in_words(world: World, tmp_path: Path) -> None:
    world.add(poam(1))
    done = cli(world, tmp_path, "sync", "--dry-run")
    assert done.returncode == 0, done.stderr
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("dry run ")
    assert "would create jira 1, servicenow 1" in summary
    assert "{" not in summary and " created " not in summary


def test_a_sync_in_a_pipe_logs_its_progress_per_connector(world: World, tmp_path: Path) -> None:
    world.add(poam(1))
    done = cli(world, tmp_path, "sync")
    assert done.returncode == 0, done.stderr
    steps = [x for x in done.stderr.splitlines() if x.startswith("progress: ")]
    assert "progress: pull jira 0/0" in steps and "progress: pull servicenow 0/0" in steps
    assert steps[-1] == "progress: apply (created jira 1, servicenow 1) 1/1"
    assert "\x1b" not in done.stderr  # no escape codes in a pipe


def test_a_sync_on_a_terminal_draws_a_progress_bar(world: World, tmp_path: Path) -> None:
    import pty

    world.add(poam(1))
    cfg = tmp_path / "poam-sync.yaml"
    cfg.write_text(yaml.safe_dump(config_dict(world)), encoding="utf-8")
    leader, follower = pty.openpty()
    env = {**os.environ, **world.env, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "poam_sync", "--config", str(cfg), "sync"],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=env,
    )
    os.close(follower)  # read while it runs: a full terminal buffer would block the child
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child's side is closed
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert child.wait(timeout=120) == 0, drawn.decode(errors="replace")
    text = drawn.decode(errors="replace")
    assert "pull jira" in text and "apply" in text
    assert "\u2501" in text  # the bar itself (rich draws it with box-drawing lines)
    assert "progress: " not in text  # a terminal gets the bar, not the pipe's lines


def test_sync_reports_an_unmapped_jira_status_once_with_its_fix(
    world: World, tmp_path: Path
) -> None:
    item = poam(1)
    world.add(item)
    world.engine().run_cycle()
    key = world.jira_key(item)
    world.jira.sim.human_transition(key, "Blocked", user_email="bob@example.com")

    shown = cli(world, tmp_path, "sync")
    assert shown.returncode == 0, shown.stderr
    assert "unreadable 1" in shown.stderr
    assert f"V-1 status in jira {key}" in shown.stderr and "read_statuses" in shown.stderr

    again = cli(world, tmp_path, "sync", "--json")  # still Blocked: reported once
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["unreadable"] == []
    out = tmp_path / "status.json"
    status = cli(world, tmp_path, "report", "status", "--format", "json", "-o", str(out))
    assert status.returncode == 0, status.stderr
    problems = json.loads(out.read_text(encoding="utf-8"))["problems"]
    (problem,) = [p for p in problems if p["code"] == "unknown_value"]
    assert problem["field"] == "status" and "read_statuses" in problem["hint"]
    assert world.store.item("acme", "V-1").status.value == "open"


def test_a_failure_whose_record_is_gone_clears_once_the_item_goes_through(
    world: World, tmp_path: Path
) -> None:
    item = poam(1)
    world.add(item)
    world.engine().run_cycle()
    with world.store.begin() as tx:  # an earlier cycle failed on a record since deleted
        tx.report_problem(
            item_uuid=item.uuid,
            connector="jira",
            field=None,
            code="item_failed",
            message="RuntimeError: earlier",
            kind="item",
            remote_id="999999",
            remote_key="POAM-999",
        )
    done = cli(world, tmp_path, "sync", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["errors"] == []
    with world.store.read() as tx:
        assert [p for p in tx.problems() if p.code == "item_failed"] == []


def test_the_daemon_syncs_and_stops_cleanly_on_sigterm(world: World, tmp_path: Path) -> None:
    world.add(poam(1))
    cfg = tmp_path / "poam-sync.yaml"
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 5}
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "poam_sync", "--config", str(cfg), "run"],
        env={**os.environ, **world.env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with world.store.read() as tx:
                if tx.links("jira") and tx.links("servicenow"):
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the daemon did not sync within a minute")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "daemon.started" in events and "daemon.stopped" in events
    assert any(e == "sync.cycle" for e in events)
    assert "sim-token" not in err and "sim-password" not in err  # no secrets in logs
