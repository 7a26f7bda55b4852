"""The daemon's start and stop: SIGTERM finishes the item in hand, then the cycle, then the
daemon; a configuration problem at start is one JSON log line and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from poam_sync.config import parse_config
from poam_sync.daemon import run_daemon
from poam_sync.model import with_fields
from poam_sync.sync.apply import Executor
from tests.sync.conftest import ROOT, World, config_dict, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_sigterm_mid_cycle_finishes_the_item_in_hand_then_stops_before_daemon_stopped(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [poam(n) for n in range(1, 6)]
    world.add(*items)
    world.engine().run_cycle()  # all linked; now five local edits to push, one item at a time
    world.add(*(with_fields(world.store.item("acme", i.poam_id), {"title": "New"}) for i in items))
    applied: list[str] = []
    apply_item = Executor.apply_item

    def applying(self: Executor, item: Any, *args: Any) -> Any:
        if not applied:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while this item is in hand
        applied.append(item.poam_id)
        return apply_item(self, item, *args)

    monkeypatch.setattr(Executor, "apply_item", applying)
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 5}
    # one item in hand at a time (with requests in flight, the items handed out are finished)
    raw["sync"] = {"max_in_flight": 1}
    config = parse_config(raw, env=world.env)
    with structlog.testing.capture_logs() as logs:
        code = run_daemon(config, world.db_url)

    assert code == 0
    assert len(applied) == 1  # the item in hand, and no other
    titles = [world.jira.sim.issue(world.jira_key(i))["fields"]["summary"] for i in items]
    assert titles.count("New") == 1  # that item was finished, remote write and all
    events = [e["event"] for e in logs]
    assert events.index("daemon.stopping") < events.index("sync.stopping")
    assert events.index("sync.stopping") < events.index("daemon.stopped")
    assert events[-1] == "daemon.stopped"


def _run(world: World, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poam_sync", "--config", str(cfg), *args],
        env={**os.environ, **world.env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_ca_file_at_start_is_one_json_line_and_exit_2(
    world: World, tmp_path: Path
) -> None:
    raw = config_dict(world)
    raw["connectors"]["servicenow"]["ca_bundle"] = str(tmp_path / "gone" / "ca.pem")
    cfg = tmp_path / "poam-sync.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")

    done = _run(world, cfg, "run")

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert line["event"] == "daemon.start_failed" and line["level"] == "error"
    assert "[connectors.servicenow] ca_bundle <- no file at" in line["error"]
    assert line["hint"]


def test_a_configuration_the_daemon_cannot_read_is_one_json_line_too(
    world: World, tmp_path: Path
) -> None:
    cfg = tmp_path / "poam-sync.yaml"
    cfg.write_text("connectors: [not, a, mapping]\n", encoding="utf-8")

    done = _run(world, cfg, "run")

    assert done.returncode == 2
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert line["event"] == "daemon.start_failed"
