"""Editing an item from the command line: typed values, a reason and an actor on every change-log
row, milestones with their history, closing with evidence, dry runs, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.formats import read
from poam_sync.model import MilestoneStatus, Status
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.store import LogQuery, Store

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'edit.db'}"
    with Store.open(url) as store, store.begin() as tx:
        tx.import_items(read(SAMPLE_FEDRAMP_XLSX).items, system="Acme", actor="isso", batch_id="b")
    return url


def first_open(db: str) -> str:
    with Store.open(db, read_only=True) as store:
        return next(i.poam_id for i in store.items() if not i.status.is_closed and i.due_date)


def invoke(db: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def rows(db: str) -> list[dict[str, object]]:
    with Store.open(db, read_only=True) as store:
        return [r.to_json() for r in store.iter_log(LogQuery(sources=frozenset({"cli"})))]


def test_set_changes_typed_fields_with_reason_and_actor(db: str) -> None:
    poam_id = first_open(db)
    code, stdout, stderr = invoke(
        db,
        "items", "set", poam_id,
        "owner=dan@example.com", "original_risk=High", "cves=CVE-2026-1, CVE-2026-2",
        "--reason", "reassigned after the review", "--actor", "isso@example.com", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["written"] and result["actor"] == "isso@example.com"
    assert result["changes"]["owner"]["new"] == {
        "email": "dan@example.com",
        "name": None,
        "org": None,
    }
    logged = rows(db)
    assert {"owner", "cves"} <= {str(r["field"]) for r in logged}
    assert {(r["actor"], r["reason"], r["source"]) for r in logged} == {
        ("isso@example.com", "reassigned after the review", "cli")
    }
    with Store.open(db, read_only=True) as store:
        (item,) = store.find(poam_id)
    assert item.cves == ("CVE-2026-1", "CVE-2026-2") and item.owner is not None


def test_a_later_due_date_is_recorded_as_an_extension(db: str) -> None:
    poam_id = first_open(db)
    with Store.open(db, read_only=True) as store:
        (before,) = store.find(poam_id)
    assert before.due_date is not None
    later = before.due_date.replace(year=before.due_date.year + 1)
    code, _, stderr = invoke(
        db, "items", "set", poam_id, f"due_date={later}", "--reason", "vendor slipped",
        "--actor", "isso",
    )  # fmt: skip
    assert code == 0 and "the next sync pushes it" in stderr
    with Store.open(db, read_only=True) as store:
        (after,) = store.find(poam_id)
    assert after.due_date == later
    assert after.scheduled_completion_date == before.scheduled_completion_date
    extension = after.milestone_changes[-1]
    assert extension.kind == "extension" and f"to {later}" in extension.text
    assert "by isso" in extension.text


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("colour=red",), "'colour' cannot be set"),
        (("due_date=2027-02-30",), "due_date: '2027-02-30' is not a date"),
        (("due_date=12/31/27",), "is not a date"),
        (("status=done",), "status: 'done' is not one of the values it takes"),
        (("owner=Bob",), "'Bob' is not an e-mail address"),
        (("title=",), "a POA&M item needs a title"),
        (("due_date",), "is not FIELD=VALUE"),
        (("kev=perhaps",), "kev: 'perhaps'"),
    ],
)
def test_a_bad_value_is_refused_and_nothing_is_written(
    db: str, args: tuple[str, ...], said: str
) -> None:
    code, _, stderr = invoke(db, "items", "set", first_open(db), *args, "--reason", "x")
    assert code == 2 and said in stderr.replace("\n", " ")
    assert rows(db) == []


def test_a_reason_is_required_and_an_actor_is_never_blank(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    poam_id = first_open(db)
    code, _, stderr = invoke(db, "items", "set", poam_id, "comments=x")
    assert code == 2 and "--reason" in stderr
    code, _, stderr = invoke(db, "items", "set", poam_id, "comments=x", "--reason", "  ")
    assert code == 2 and "--reason is empty" in stderr

    def nobody() -> str:
        raise OSError("no user name")

    monkeypatch.setattr("getpass.getuser", nobody)
    code, _, stderr = invoke(db, "items", "set", poam_id, "comments=x", "--reason", "why")
    assert code == 2 and "--actor" in stderr and rows(db) == []
    code, _, _ = invoke(
        db, "items", "set", poam_id, "comments=x", "--reason", "why", "--actor", "a"
    )
    assert code == 0 and {r["actor"] for r in rows(db)} == {"a"}


def test_milestones_are_added_changed_and_completed_with_their_history(db: str) -> None:
    poam_id = first_open(db)
    base = ("--reason", "plan", "--actor", "eng")
    code, _, stderr = invoke(
        db, "items", "milestone", "add", poam_id, "--description", "Deploy fix",
        "--due", "2027-03-01", *base,
    )  # fmt: skip
    assert code == 0, stderr
    with Store.open(db, read_only=True) as store:
        (item,) = store.find(poam_id)
    new = item.milestones[-1]
    assert new.description == "Deploy fix" and new.status == MilestoneStatus.OPEN
    code, _, _ = invoke(
        db, "items", "milestone", "set", poam_id, new.id, "--due", "2027-04-01", *base
    )
    assert code == 0
    code, _, _ = invoke(
        db, "items", "milestone", "complete", poam_id, new.id, "--on", "2026-11-30", *base
    )
    assert code == 0
    with Store.open(db, read_only=True) as store:
        (item,) = store.find(poam_id)
    done = next(m for m in item.milestones if m.id == new.id)
    assert done.status == MilestoneStatus.COMPLETED and str(done.completed_on) == "2026-11-30"
    assert [c.kind for c in item.milestone_changes[-3:]] == ["new", "update", "complete"]
    code, _, stderr = invoke(db, "items", "milestone", "complete", poam_id, "99", *base)
    assert code == 2 and "has no milestone '99'" in stderr


def test_close_keeps_the_evidence_and_a_dry_run_writes_nothing(db: str) -> None:
    poam_id = first_open(db)
    args = ("items", "close", poam_id, "--status", "completed", "--evidence", "rescan clean")
    code, _, stderr = invoke(db, *args, "--dry-run", "--actor", "isso")
    assert code == 0 and "nothing written (--dry-run)" in stderr and rows(db) == []
    code, _, _ = invoke(db, *args, "--on", "2026-11-20", "--actor", "isso")
    assert code == 0
    with Store.open(db, read_only=True) as store:
        (item,) = store.find(poam_id)
    assert item.status == Status.COMPLETED and str(item.completed_on) == "2026-11-20"
    assert item.comments is not None and "rescan clean" in item.comments
    assert {r["reason"] for r in rows(db)} == {"rescan clean"}
    code, _, stderr = invoke(db, "items", "close", poam_id, "--status", "open", "--evidence", "x")
    assert code == 2 and "does not close an item" in stderr
