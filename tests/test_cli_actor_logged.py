"""Imports and conflict settlements name who made them in the change log, never blank:
`--actor`, else the configuration's `actor`, else the OS user; with none of them, a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.store import LogQuery, Store
from tests.sync.conftest import poam

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no configuration file found by accident
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("POAM_SYNC_CONFIG", raising=False)
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    return f"sqlite:///{tmp_path / 'actor.db'}"


def _actors(db: str, source: str) -> set[str | None]:
    with Store.open(db, read_only=True) as store:
        return {r.actor for r in store.iter_log(LogQuery(sources=frozenset({source})))}


def _import(db: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--db", db, *args, "import", str(SAMPLE_FEDRAMP_XLSX)])
    return result.exit_code, result.stderr


def test_an_import_without_user_variables_names_the_os_user(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "svc-poam")
    code, said = _import(db)
    assert code == 0, said
    assert _actors(db, "import") == {"svc-poam"}


def test_an_import_names_the_configured_actor_or_the_one_given(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "svc-poam")
    config = tmp_path / "poam-sync.yaml"
    config.write_text("actor: isso@example.com\n")
    code, said = _import(db, "--config", str(config))
    assert code == 0, said
    assert _actors(db, "import") == {"isso@example.com"}
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = runner.invoke(
        app, ["--db", other, "import", str(SAMPLE_FEDRAMP_XLSX), "--actor", "ann@example.com"]
    )
    assert result.exit_code == 0, result.stderr
    assert _actors(other, "import") == {"ann@example.com"}


def test_with_nobody_to_name_an_import_writes_nothing_and_says_what_to_do(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nobody() -> str:
        raise OSError("no user name")

    monkeypatch.setattr("getpass.getuser", nobody)
    code, said = _import(db)
    assert code == 2 and "--actor" in said
    assert Store.open(db).items() == []


def test_a_settled_conflict_names_who_settled_it(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    item = poam(1, title="ISSO title")
    with Store.open(db) as store, store.begin() as tx:
        tx.save(item, source="cli", actor="isso@example.com", reason="test")
        tx.set_baselines(item.uuid, "jira", {"title": "Weakness number 1"})
        first = tx.open_conflict(
            item_uuid=item.uuid, connector="jira", field="title", baseline="Weakness number 1",
            local="ISSO title", remote="Engineer title", remote_actor="bob@example.com",
            remote_changed_at=None,
        )  # fmt: skip
    monkeypatch.setattr("getpass.getuser", lambda: "svc-poam")
    result = runner.invoke(
        app,
        ["--db", db, "conflicts", "resolve", str(first.id), "--take", "jira", "--reason", "r",
         "--actor", "lead@example.com"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    with Store.open(db, read_only=True) as store, store.read() as tx:
        assert tx.conflict(first.id).resolved_by == "lead@example.com"
        settled = [r for r in tx.log(item_uuid=item.uuid) if r.field == "title"]
    assert settled[-1].actor == "lead@example.com" and settled[-1].new_value == "Engineer title"
