"""`poam-sync demo`: `--dir DIR` never deletes what it did not write; `--keep-running` leaves
the simulators up for the user to carry on."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest
import requests

from poam_sync.demo import MARKER, prepare_folder
from poam_sync.errors import UsageError
from tests.test_cli import ROOT, run


def test_a_folder_with_someone_elses_files_is_refused_and_kept(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "poam-sync.yaml").write_text("system: acme\n")
    (tmp_path / "poam-sync.db").write_text("the team's store")
    result = run("demo", "--dir", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "is not empty and is not a previous demo's folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "config" / "poam-sync.yaml").read_text() == "system: acme\n"
    assert (tmp_path / "poam-sync.db").read_text() == "the team's store"


def test_a_new_or_empty_folder_is_taken_and_marked(tmp_path: Path) -> None:
    prepare_folder(tmp_path / "new" / "demo")
    assert (tmp_path / "new" / "demo" / MARKER).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_folder(empty)
    assert (empty / MARKER).is_file()


def test_a_previous_demo_folder_loses_only_what_a_demo_writes(tmp_path: Path) -> None:
    prepare_folder(tmp_path)
    (tmp_path / "poam-sync.db").write_text("old demo store")
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.pem").write_text("old CA")
    (tmp_path / "status-report.html").write_text("<p>old</p>")
    (tmp_path / "notes.txt").write_text("mine")
    prepare_folder(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER, "notes.txt"]


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    target.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        prepare_folder(target)
    assert target.read_text() == "x"


def test_an_unmarked_folder_holding_only_demo_files_is_an_earlier_demo(tmp_path: Path) -> None:
    (tmp_path / "poam-sync.db").write_text("an earlier demo's store")
    (tmp_path / "status-report.html").write_text("<p>old</p>")
    prepare_folder(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER]


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def test_keep_running_leaves_the_simulators_up_with_the_variables_that_reach_them(
    tmp_path: Path,
) -> None:
    with (
        (tmp_path / "stderr.txt").open("w") as stderr_file,
        subprocess.Popen(
            [sys.executable, "-m", "poam_sync", "demo", "--keep-running", "--dir", "demo"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        ) as demo,
    ):
        _use_and_stop(demo, tmp_path)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "stopping the simulators" in stderr and "Traceback" not in stderr


def _use_and_stop(demo: subprocess.Popen[str], cwd: Path) -> None:
    """Wait for the export block, reach both simulators and the store with it, then SIGTERM."""
    try:
        assert demo.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True).start()
        exported: dict[str, str] = {}
        while "POAM_SYNC_DATABASE_URL" not in exported:
            line = lines.get(timeout=180)  # the whole story runs first
            name, _, value = line.strip().removeprefix("export ").partition("=")
            exported[name] = shlex.split(value)[0]
        assert {
            "JIRA_URL",
            "JIRA_USER",
            "JIRA_TOKEN",
            "SERVICENOW_URL",
            "SERVICENOW_USER",
            "SERVICENOW_PASSWORD",
            "SERVICENOW_CA_BUNDLE",
        } <= set(exported)

        session = requests.Session()
        session.trust_env = False
        jira = session.get(
            f"{exported['JIRA_URL']}/rest/api/2/serverInfo",
            auth=(exported["JIRA_USER"], exported["JIRA_TOKEN"]),
            timeout=30,
        )
        assert jira.status_code == 200
        snow = session.get(
            f"{exported['SERVICENOW_URL']}/api/now/table/sn_grc_issue",
            params={"sysparm_limit": "1"},
            auth=(exported["SERVICENOW_USER"], exported["SERVICENOW_PASSWORD"]),
            verify=exported["SERVICENOW_CA_BUNDLE"],
            timeout=30,
        )
        assert snow.status_code == 200 and snow.json()["result"]

        listed = run("--db", exported["POAM_SYNC_DATABASE_URL"], "items", "list", "--json", cwd=cwd)
        assert len(json.loads(listed.stdout)) == 8

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=30)
