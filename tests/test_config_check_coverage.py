"""``config check`` compares what the remote offers with the mapping: each value no mapping line
covers is a warning with the line that would cover it, a value left out on purpose is shown but
not counted, and a remote that will not tell (a least-privilege account) is a warning too, never a
failed connection. The verdict says so: ``ok, with warnings``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.connectors.base import Uncovered
from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.errors import RemoteAuthError
from poam_sync.simulators.jira import start_jira_simulator

ROOT = Path(__file__).resolve().parents[1]


def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    monkeypatch.setenv("JIRA_USER", "sync@example.com")
    monkeypatch.setenv("JIRA_TOKEN", "sim-token")
    monkeypatch.setenv("COLUMNS", "400")
    with start_jira_simulator(mode="cloud") as sim:
        config = tmp_path / "poam-sync.yaml"
        jira = {
            "type": "jira",
            "url": sim.url,
            "email": "${JIRA_USER}",
            "token": "${JIRA_TOKEN}",
            "project_key": "POAM",
            "mapping": str(ROOT / "mappings" / "jira.yaml"),
        }
        config.write_text(json.dumps({"connectors": {"jira": jira}}), encoding="utf-8")
        done = CliRunner().invoke(app, ["--config", str(config), "config", "check"])
    return done.exit_code, done.stderr.strip().splitlines()


def test_values_the_mapping_misses_are_warnings_with_their_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def uncovered(self: JiraConnector) -> Sequence[Uncovered]:
        return (
            Uncovered("status", "Blocked", "statuses: add `Blocked: in_progress`"),
            Uncovered("priority", "Trivial", "priorities: add `Trivial: low`", deliberate=True),
        )

    monkeypatch.setattr(JiraConnector, "uncovered", uncovered)
    code, lines = check(tmp_path, monkeypatch)
    assert code == 0, lines
    assert any(
        "jira: status 'Blocked' is not in the mapping" in x and "add `Blocked: in_progress`" in x
        for x in lines
    )
    assert any("priority 'Trivial' is left out of the mapping on purpose" in x for x in lines)
    assert lines[-1].startswith("ok, with warnings:")
    assert "1 remote value(s) the mapping does not cover" in lines[-1]


def test_a_remote_that_will_not_list_its_values_is_a_warning_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def uncovered(self: JiraConnector) -> Sequence[Uncovered]:
        raise RemoteAuthError("403 Forbidden reading the statuses", hint="grant browse projects")

    monkeypatch.setattr(JiraConnector, "uncovered", uncovered)
    code, lines = check(tmp_path, monkeypatch)
    assert code == 0, lines
    assert any("could not list the remote's values" in x and "403" in x for x in lines)
    assert (
        lines[-1].startswith("ok, with warnings:") and "1 of 1 connector(s) reachable" in lines[-1]
    )
