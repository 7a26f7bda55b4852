"""The `poam-sync` command as a user runs it: a real process, exit codes, stdout vs stderr."""

from __future__ import annotations

import json
import os
import queue
import shlex
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest
import requests

from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from tests.test_http import dead_port

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poam_sync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})},
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_import_list_show_and_reimport(tmp_path: Path, db: str) -> None:
    first = run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (result,) = json.loads(first.stdout)
    assert result["format"] == "fedramp-xlsx" and len(result["created"]) == 8
    assert "8 created" in first.stderr

    listed = run("--db", db, "items", "list", "--json", cwd=tmp_path)
    items = json.loads(listed.stdout)
    assert len(items) == 8
    assert {"poam_id", "system", "status", "scheduled_completion_date", "milestones"} <= set(
        items[0]
    )

    shown = run("--db", db, "items", "show", items[0]["poam_id"], "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["uuid"] == items[0]["uuid"]

    again = run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), "--json", cwd=tmp_path)
    (second,) = json.loads(again.stdout)
    assert second["changes"] == 0 and len(second["unchanged"]) == 8


def test_log_show_and_verify_catch_tampering(tmp_path: Path, db: str) -> None:
    run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path)
    rows = json.loads(run("--db", db, "log", "show", "--json", cwd=tmp_path).stdout)
    assert rows and rows[0]["source"] == "import" and rows[0]["seq"] == 1
    ok = run("--db", db, "log", "verify", cwd=tmp_path)
    assert ok.returncode == 0 and "verify" in ok.stderr

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE change_log SET new_value = '\"tampered\"' WHERE seq = 5")
        # a database administrator can drop the triggers; the hash chain still tells
        conn.execute("DROP TRIGGER change_log_no_update")
        conn.execute("UPDATE change_log SET new_value = '\"tampered\"' WHERE seq = 5")
    broken = run("--db", db, "log", "verify", cwd=tmp_path)
    assert broken.returncode == 1
    assert "5" in broken.stderr and "Traceback" not in broken.stderr


def test_export_then_import_round_trips(tmp_path: Path, db: str) -> None:
    run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path)
    for fmt, name in (("fedramp-xlsx", "out.xlsx"), ("oscal-json", "out.json"), ("csv", "out.csv")):
        done = run("--db", db, "export", "--format", fmt, "-o", str(tmp_path / name), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    other = f"sqlite:///{tmp_path / 'other.db'}"
    back = run("--db", other, "import", str(tmp_path / "out.xlsx"), "--json", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    before = {
        i["poam_id"]: i
        for i in json.loads(run("--db", db, "items", "list", "--json", cwd=tmp_path).stdout)
    }
    after = {
        i["poam_id"]: i
        for i in json.loads(run("--db", other, "items", "list", "--json", cwd=tmp_path).stdout)
    }
    assert set(before) == set(after)
    for key in (
        "title",
        "controls",
        "status",
        "detected_on",
        "scheduled_completion_date",
        "original_risk",
    ):
        assert {k: v[key] for k, v in before.items()} == {k: v[key] for k, v in after.items()}, key


def test_a_file_that_is_not_a_workbook_is_a_clear_error(tmp_path: Path, db: str) -> None:
    bad = tmp_path / "poam.xlsx"
    bad.write_bytes(b"this is not a zip file")
    done = run("--db", db, "import", str(bad), cwd=tmp_path)
    assert done.returncode == 1
    assert "poam.xlsx" in done.stderr and "Traceback" not in done.stderr


def test_usage_errors_exit_2(tmp_path: Path, db: str) -> None:
    done = run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), "--format", "docx", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    missing = run("--db", db, "import", str(tmp_path / "nope.xlsx"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    unknown = run("--db", db, "items", "show", "V-404", cwd=tmp_path)
    assert unknown.returncode == 2 and "V-404" in unknown.stderr


def test_strict_import_writes_nothing_when_a_row_is_bad(tmp_path: Path, db: str) -> None:
    csv_file = tmp_path / "poam.csv"
    fixture = ROOT / "tests" / "fixtures" / "poam" / "chainguard_FedRAMP-POAM_v3.0_header-only.csv"
    header = fixture.read_text().splitlines()[0]
    cols = [c.strip() for c in header.split(",")]
    good = dict.fromkeys(cols, "")
    good.update(
        {
            "POAM ID": "V-1",
            "Controls": "SI-2",
            "Weakness Name": "Good",
            "Original Detection Date": "2026-01-05",
            "Original Risk Rating": "High",
        }
    )
    bad = dict(good, **{"POAM ID": "V-2", "Original Detection Date": "31/31/2026"})
    import csv

    with csv_file.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerow(good)
        writer.writerow(bad)
    strict = run("--db", db, "import", str(csv_file), "--strict", cwd=tmp_path)
    assert strict.returncode == 1 and "row 3" in strict.stderr
    assert json.loads(run("--db", db, "items", "list", "--json", cwd=tmp_path).stdout) == []
    lenient = run("--db", db, "import", str(csv_file), cwd=tmp_path)
    assert lenient.returncode == 1
    assert [
        i["poam_id"]
        for i in json.loads(run("--db", db, "items", "list", "--json", cwd=tmp_path).stdout)
    ] == ["V-1"]


def test_init_writes_a_config_that_config_check_reads(tmp_path: Path) -> None:
    done = run("init", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "config" / "poam-sync.yaml").exists()
    assert (tmp_path / "mappings" / "jira.yaml").exists()
    check = run(
        "--config", str(tmp_path / "config" / "poam-sync.yaml"), "config", "check", cwd=tmp_path
    )
    assert check.returncode == 2 and "JIRA_URL is not set" in check.stderr


def test_report_html_is_self_contained_and_escaped(tmp_path: Path, db: str) -> None:
    run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path)
    out = tmp_path / "status.html"
    done = run("--db", db, "report", "status", "--format", "html", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "http://" not in html and "https://" not in html  # nothing loaded from elsewhere
    data = run(
        "--db",
        db,
        "report",
        "status",
        "--format",
        "json",
        "-o",
        str(tmp_path / "s.json"),
        cwd=tmp_path,
    )
    assert data.returncode == 0
    assert json.loads((tmp_path / "s.json").read_text())["items_total"] == 8


def test_sync_runs_one_cycle_with_or_without_once(tmp_path: Path, db: str) -> None:
    helped = run("sync", "--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert "--once" in helped.stdout and "poam-sync run" in helped.stdout
    config = tmp_path / "poam-sync.yaml"
    config.write_text(f"database_url: {db}\nsystem: acme\n", encoding="utf-8")
    plain = run("--config", str(config), "sync", cwd=tmp_path)
    once = run("--config", str(config), "sync", "--once", cwd=tmp_path)
    assert plain.returncode == once.returncode == 2  # the same one cycle, refused alike
    assert "no connectors are configured" in plain.stderr
    assert plain.stderr == once.stderr


def test_config_check_names_a_dead_url_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{dead_port()}"
    config = tmp_path / "poam-sync.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "database_url": f"sqlite:///{tmp_path / 'cli.db'}",
                "connectors": {
                    "jira": {
                        "type": "jira",
                        "url": url,
                        "pat": "${JIRA_PAT}",
                        "project_key": "POAM",
                        "mapping": str(ROOT / "mappings" / "jira.yaml"),
                    }
                },
            }
        )
    )
    check = run("--config", str(config), "config", "check", cwd=tmp_path, env={"JIRA_PAT": "x"})
    assert check.returncode == 1
    lines = [line for line in check.stderr.splitlines() if line.startswith("jira:")]
    assert len(lines) == 1 and f"cannot reach Jira at {url}: connection refused" in lines[0]
    assert "Traceback" not in check.stderr + check.stdout


def test_config_check_ends_with_an_honest_verdict(tmp_path: Path) -> None:
    from poam_sync.simulators.jira import start_jira_simulator

    def jira(url: str) -> dict[str, str]:
        return {
            "type": "jira",
            "url": url,
            "email": "${JIRA_USER}",
            "token": "${JIRA_TOKEN}",
            "project_key": "POAM",
            "mapping": str(ROOT / "mappings" / "jira.yaml"),
        }

    config = tmp_path / "poam-sync.yaml"
    env = {"JIRA_USER": "sync@example.com", "JIRA_TOKEN": "sim-token"}
    with start_jira_simulator(mode="cloud") as sim:
        dead = f"http://127.0.0.1:{dead_port()}"
        config.write_text(json.dumps({"connectors": {"live": jira(sim.url), "dead": jira(dead)}}))
        mixed = run("--config", str(config), "config", "check", cwd=tmp_path, env=env)
        config.write_text(json.dumps({"connectors": {"live": jira(sim.url)}}))
        good = run("--config", str(config), "config", "check", cwd=tmp_path, env=env)

    assert mixed.returncode == 1
    *results, verdict = mixed.stderr.strip().splitlines()
    assert any(line.startswith("live (jira)") for line in results)
    assert any(line.startswith("dead:") for line in results)
    assert not any(line.startswith("ok") for line in mixed.stderr.splitlines())
    assert verdict.startswith("failed:") and "is valid; 1 of 2 connector(s) reachable" in verdict

    assert good.returncode == 0, good.stderr
    # The simulated site has statuses the shipped mapping leaves out (Backlog, Blocked...): an
    # honest verdict is ok, with those named as warnings.
    verdict = good.stderr.strip().splitlines()[-1]
    assert verdict.startswith("ok, with warnings:"), good.stderr
    assert "remote value(s) the mapping does not cover" in verdict
    assert "1 of 1 connector(s) reachable" in good.stderr


READ_ONLY_COMMANDS = [
    ("items", "list"),
    ("items", "show", "V-1"),
    ("log", "show"),
    ("log", "verify"),
    ("export", "--format", "csv", "-o", "out.csv"),
    ("report", "status", "--format", "json", "-o", "out.json"),
    ("conflicts", "list"),
    ("conflicts", "show", "1"),
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=" ".join)
def test_read_only_commands_on_a_missing_store_create_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    done = run(*command, cwd=tmp_path, env={"POAM_SYNC_DATABASE_URL": ""})
    assert done.returncode == 2, done.stderr
    assert "no poam-sync store at sqlite:///poam-sync.db" in done.stderr
    assert "poam-sync import` first, or check --db" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_on_either_database_is_reported(tmp_path: Path, db_url: str) -> None:
    done = run("--db", db_url, "log", "verify", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "no poam-sync store at" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_assessor_verifies_a_read_only_copy_in_a_read_only_folder(
    tmp_path: Path, db: str
) -> None:
    assert run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path).returncode == 0
    folder = tmp_path / "handed-over"
    folder.mkdir()
    copy = folder / "poam-sync.db"
    copy.write_bytes((tmp_path / "cli.db").read_bytes())
    copy.chmod(0o444)
    folder.chmod(0o555)
    try:
        verify = run("--db", f"sqlite:///{copy}", "log", "verify", cwd=tmp_path)
        assert verify.returncode == 0, verify.stderr
        assert "change-log row(s) verify" in verify.stderr
        listed = run("--db", f"sqlite:///{copy}", "items", "list", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "8 item(s)" in listed.stderr
        # the file has no write permission bit: SQLite opens it immutable, so even root (who
        # may write anything) leaves no -wal or -shm file behind
        assert [p.name for p in folder.iterdir()] == ["poam-sync.db"]
    finally:
        folder.chmod(0o755)


def test_commands_that_need_no_connector_ignore_connector_settings(tmp_path: Path) -> None:
    # the starter config names ${JIRA_URL} & co., none of them set here, and its database_url
    # falls back to ./poam-sync.db
    unset = {"JIRA_URL": "", "POAM_SYNC_DATABASE_URL": ""}
    assert run("init", str(tmp_path), cwd=tmp_path).returncode == 0
    imported = run("import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path, env=unset)
    assert imported.returncode == 0, imported.stderr
    assert (tmp_path / "poam-sync.db").exists()
    exported = run("export", "--format", "csv", "-o", "out.csv", cwd=tmp_path, env=unset)
    assert exported.returncode == 0, exported.stderr
    assert "wrote 8 item(s)" in exported.stderr
    listed = run("items", "list", cwd=tmp_path, env=unset)
    assert listed.returncode == 0 and "8 item(s)" in listed.stderr, listed.stderr
    # a command that needs the connectors still names what is missing
    synced = run("sync", cwd=tmp_path, env=unset)
    assert synced.returncode == 2 and "JIRA_URL is not set" in synced.stderr


def _exports(stream: IO[str], into: queue.Queue[dict[str, str]]) -> None:
    for line in stream:
        if line.startswith("export "):
            into.put(dict(word.split("=", 1) for word in shlex.split(line)[1:]))
            return


@pytest.mark.parametrize("kind", ["jira", "servicenow"])
def test_simulate_prints_the_variables_that_reach_it(tmp_path: Path, kind: str) -> None:
    args = ["--port", "0", "--host", "127.0.0.1"]
    with subprocess.Popen(
        [sys.executable, "-m", "poam_sync", "simulate", kind, *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as child:
        try:
            assert child.stdout is not None
            found: queue.Queue[dict[str, str]] = queue.Queue()
            threading.Thread(target=_exports, args=(child.stdout, found), daemon=True).start()
            env = found.get(timeout=60)
            with requests.Session() as session:
                session.trust_env = False
                if kind == "jira":
                    r = session.get(
                        f"{env['JIRA_URL']}/rest/api/2/serverInfo",
                        auth=(env["JIRA_USER"], env["JIRA_TOKEN"]),
                        timeout=30,
                    )
                else:
                    r = session.get(
                        f"{env['SERVICENOW_URL']}/api/now/table/sn_grc_issue",
                        auth=(env["SERVICENOW_USER"], env["SERVICENOW_PASSWORD"]),
                        verify=env["SERVICENOW_CA_BUNDLE"],
                        timeout=30,
                    )
            assert r.status_code == 200
        finally:
            child.terminate()
            assert child.wait(timeout=30) == 0


def test_report_file_name_follows_the_format_and_dash_is_stdout(tmp_path: Path, db: str) -> None:
    run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path)
    for fmt in ("csv", "json", "html"):
        done = run("--db", db, "report", "status", "--format", fmt, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / f"poam-sync-report.{fmt}").is_file()
    assert (tmp_path / "poam-sync-report.csv").read_text().startswith("section,poam_id,")

    piped = run("--db", db, "report", "status", "--format", "json", "-o", "-", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout) and not (tmp_path / "-").exists()


def test_export_dash_writes_to_stdout(tmp_path: Path, db: str) -> None:
    run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path)
    piped = run("--db", db, "export", "--format", "csv", "-o", "-", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.count("\n") >= 9 and not (tmp_path / "-").exists()


@pytest.mark.parametrize("command", [(), ("demo",), ("import",), ("items", "list")], ids=" ".join)
def test_help_shows_flags_as_flags(tmp_path: Path, command: tuple[str, ...]) -> None:
    shown = run(*command, "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "--help" in shown.stdout
    assert "<bool>" not in shown.stdout and "<int>" not in shown.stdout.split("--verbose")[-1][:40]


def test_verbose_is_a_repeatable_flag(tmp_path: Path, db: str) -> None:
    done = run("-vv", "--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert run("-v", "-v", "--db", db, "items", "list", cwd=tmp_path).returncode == 0
