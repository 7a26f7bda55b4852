"""What ships for running poam-sync as a service: the systemd units and the container image."""

from __future__ import annotations

import configparser
import re
import shlex

import pytest

from tests.sync.conftest import ROOT

DEPLOY = ROOT / "deploy"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}


def _unit(name: str) -> configparser.ConfigParser:
    """A unit file's settings (a key given twice keeps its last value here)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return parser


def _command(unit: configparser.ConfigParser) -> list[str]:
    return shlex.split(unit["Service"]["ExecStart"])


@pytest.mark.parametrize("name", ["poam-sync.service", "poam-sync-once.service"])
def test_the_units_run_as_a_user_of_their_own_and_hardened(name: str) -> None:
    service = _unit(name)["Service"]
    assert service["User"] == "poam-sync" and service["StateDirectory"] == "poam-sync"
    for key, value in HARDENING.items():
        assert service.get(key) == value, key
    assert "sqlite:////var/lib/poam-sync/" in service["Environment"]  # the state directory


def test_the_daemon_unit_stops_on_sigterm_and_does_not_restart_a_bad_configuration() -> None:
    unit = _unit("poam-sync.service")
    service = unit["Service"]
    assert _command(unit)[1:] == ["run", "--http", "127.0.0.1:8080"]
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # exit 2: a configuration problem
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_timer_runs_one_cycle_that_waits_for_a_leading_daemon() -> None:
    timer = _unit("poam-sync.timer")
    assert timer["Timer"]["Unit"] == "poam-sync-once.service"
    assert timer["Timer"]["OnUnitActiveSec"] == "5min"
    once = _unit("poam-sync-once.service")
    assert once["Service"]["Type"] == "oneshot"
    assert _command(once)[1:] == ["sync", "--wait"]


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_the_image_keeps_its_store_on_a_volume_and_runs_as_no_root() -> None:
    text = _dockerfile()
    assert 'VOLUME ["/data"]' in text
    assert "POAM_SYNC_DATABASE_URL=sqlite:////data/" in text
    (user,) = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user not in ("root", "0")
    assert "COPY mappings ./mappings" in text


def test_the_image_health_check_asks_healthz_where_the_default_command_serves() -> None:
    text = _dockerfile()
    (check,) = re.findall(r"^HEALTHCHECK .*\n\s+CMD (.*)$", text, re.MULTILINE)
    assert "http://127.0.0.1:8080/healthz" in check
    assert re.search(r'^CMD \["run", "--http", "127.0.0.1:8080"\]$', text, re.MULTILINE)


def test_the_readmes_docker_command_mounts_the_data_volume_and_the_mappings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = [line for line in readme.splitlines() if "docker run" in line]
    assert ":/data" in command and ":/app/mappings" in command and ":/app/config" in command
