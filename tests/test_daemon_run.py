"""``poam-sync run`` configured from the file: ``http.listen`` is the default of ``--http``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import requests
import yaml

from tests.sync.conftest import ROOT, World, config_dict
from tests.sync.conftest import world as world  # the end-to-end fixture, shared
from tests.test_daemon_leader import Proc

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _cfg(world: World, tmp_path: Path, listen: str) -> Path:
    path = tmp_path / "poam-sync.yaml"
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 5, "takeover_seconds": 1}
    raw["http"] = {"listen": listen}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_the_configured_listen_address_serves_health_without_run_http(
    world: World, tmp_path: Path
) -> None:
    daemon = Proc(world, _cfg(world, tmp_path, "127.0.0.1:0"), "run")
    try:
        daemon.wait_for("daemon.http")
        url = next(
            json.loads(line)["url"]
            for line in daemon.lines
            if line.startswith("{") and json.loads(line)["event"] == "daemon.http"
        )
        assert url.startswith("http://127.0.0.1:")
        session = requests.Session()
        session.trust_env = False  # 127.0.0.1 only: no proxy, no CA bundle from the environment
        assert session.get(f"{url}/healthz", timeout=10).json() == {"alive": True}
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_a_bad_configured_listen_address_names_the_setting_and_exits_2(
    world: World, tmp_path: Path
) -> None:
    proc = Proc(world, _cfg(world, tmp_path, "localhost"), "run")
    code = proc.popen.wait(timeout=60)
    proc.kill()
    assert code == 2
    (line,) = [json.loads(text) for text in proc.lines]
    assert line["event"] == "daemon.start_failed"
    assert line["error"] == "[http] listen <- 'localhost' is not HOST:PORT"


def test_the_daemon_needs_no_scheduler_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needs = " ".join(project["project"]["dependencies"]).lower()
    assert "apscheduler" not in needs  # cycles run in the daemon's own loop (daemon.py)


def test_run_interval_overrides_the_configured_schedule(world: World, tmp_path: Path) -> None:
    daemon = Proc(world, _cfg(world, tmp_path, "127.0.0.1:0"), "run", "--interval", "7")
    try:
        daemon.wait_for("daemon.started")
        started = next(
            json.loads(line)
            for line in daemon.lines
            if line.startswith("{") and json.loads(line)["event"] == "daemon.started"
        )
        assert started["interval_s"] == 7  # the file says 5
        assert daemon.stop() == 0
        assert [json.loads(x)["event"] for x in daemon.lines if x.startswith("{")][-1] == (
            "daemon.stopped"
        )
    finally:
        daemon.kill()
