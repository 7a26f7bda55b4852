"""Re-importing a POA&M file never undoes someone's work.

A file is one more side with its own baselines (one per file lineage): a field the file did not
change since its last import keeps the canonical value, whatever Jira, ServiceNow or an edit did
meanwhile; a field only the file changed is taken; a field changed in both becomes a conflict with
``import``, settled like any other. Notes and the due date, which no file carries, are never
touched by a file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.model import Note, with_fields
from poam_sync.store import Store

runner = CliRunner()
HEADER = (
    "POAM ID,Weakness Name,Weakness Description,Point of Contact,Original Detection Date,"
    "Scheduled Completion Date,Original Risk Rating,Status\n"
)


def write_csv(path: Path, *, title: str = "Old TLS", scd: str = "2026-07-04") -> Path:
    path.write_text(
        HEADER
        + f"V-1,{title},desc,Alice <alice@example.com>,2026-01-05,{scd},High,open\n"
        + "V-2,Weak ciphers,desc2,,2026-01-05,2026-08-01,Moderate,open\n",
        encoding="utf-8",
    )
    return path


def cli(url: str, *args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, ["--db", url, *args])
    return done.exit_code, done.stdout, done.stderr


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'poam-sync.db'}"


def remote_edit(url: str, **fields: object) -> None:
    """What a sync writes when Jira changed the item (source ``jira``)."""
    with Store.open(url) as store, store.begin() as tx:
        item = tx.get("acme", "V-1")
        assert item is not None
        tx.save(with_fields(item, fields), source="jira", actor="bob@example.com")


def item(url: str) -> dict[str, object]:
    code, out, err = cli(url, "items", "show", "V-1", "--json")
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def test_the_same_file_again_keeps_what_others_changed_meanwhile(tmp_path: Path, url: str) -> None:
    poam = write_csv(tmp_path / "poam.csv")
    assert cli(url, "import", str(poam), "--system", "acme")[0] == 0
    note = Note(origin="jira", body="moved after the vendor's patch slipped")
    remote_edit(
        url, due_date=date(2026, 9, 30), status="remediating", notes=(note,), title="Old TLS 1.0"
    )

    code, _, err = cli(url, "import", str(poam), "--system", "acme")
    assert code == 0, err
    now = item(url)
    assert now["due_date"] == "2026-09-30"  # no file carries the due date
    assert [n["body"] for n in now["notes"]] == [note.body]  # nor the notes
    assert now["status"] == "remediating" and now["title"] == "Old TLS 1.0"  # file unchanged
    assert "kept 2 field value(s) the file had not changed" in " ".join(err.split())


def test_a_field_only_the_file_changed_is_taken(tmp_path: Path, url: str) -> None:
    poam = write_csv(tmp_path / "poam.csv")
    cli(url, "import", str(poam), "--system", "acme")
    remote_edit(url, status="remediating")
    write_csv(poam, title="TLS 1.0 still enabled on the portal")
    code, _, err = cli(url, "import", str(poam), "--system", "acme")
    assert code == 0, err
    now = item(url)
    assert now["title"] == "TLS 1.0 still enabled on the portal"
    assert now["status"] == "remediating"


def test_a_field_both_changed_is_a_conflict_settled_like_any_other(
    tmp_path: Path, url: str
) -> None:
    poam = write_csv(tmp_path / "poam.csv")
    cli(url, "import", str(poam), "--system", "acme")
    remote_edit(url, title="Engineer's title")
    write_csv(poam, title="ISSO's title")

    dry = cli(url, "import", str(poam), "--system", "acme", "--dry-run")
    assert (
        "would conflict" in dry[2] and json.loads(cli(url, "conflicts", "list", "--json")[1]) == []
    )

    code, _, err = cli(url, "import", str(poam), "--system", "acme", "--json")
    assert code == 0, err
    assert item(url)["title"] == "Engineer's title"  # kept until a person decides
    (conflict,) = json.loads(cli(url, "conflicts", "list", "--json")[1])
    assert (conflict["connector"], conflict["field"]) == ("import", "title")
    assert (conflict["baseline"], conflict["local"], conflict["remote"]) == (
        "Old TLS",
        "Engineer's title",
        "ISSO's title",
    )
    settled = cli(
        url, "conflicts", "resolve", str(conflict["id"]), "--take", "import", "--reason", "review"
    )
    assert settled[0] == 0, settled[2]
    assert item(url)["title"] == "ISSO's title"
    # The same file once more changes nothing: its baseline is what it says.
    again = cli(url, "import", str(poam), "--system", "acme", "--json")
    (result,) = json.loads(again[1])
    assert result["changes"] == 0 and result["clashes"] == []


def test_a_due_date_that_followed_the_scheduled_date_keeps_following_it(
    tmp_path: Path, url: str
) -> None:
    poam = write_csv(tmp_path / "poam.csv")
    cli(url, "import", str(poam), "--system", "acme")
    write_csv(poam, scd="2026-08-15")
    cli(url, "import", str(poam), "--system", "acme")
    now = item(url)
    assert (now["scheduled_completion_date"], now["due_date"]) == ("2026-08-15", "2026-08-15")


def test_another_file_of_the_same_items_has_its_own_lineage(tmp_path: Path, url: str) -> None:
    cli(url, "import", str(write_csv(tmp_path / "poam.csv")), "--system", "acme")
    remote_edit(url, title="Engineer's title", due_date=date(2026, 9, 30))
    # A file never imported before has no baseline: its values are taken (not the due date).
    other = write_csv(tmp_path / "poam-december.csv", title="December title")
    code, out, err = cli(url, "import", str(other), "--system", "acme", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["source"] == "csv/acme/poam-december.csv"
    now = item(url)
    assert now["title"] == "December title" and now["due_date"] == "2026-09-30"
    # --source names a lineage across file names (month 1 -> month 2 of one POA&M).
    remote_edit(url, status="remediating")
    renamed = write_csv(tmp_path / "poam-january.csv", title="December title")
    cli(url, "import", str(renamed), "--system", "acme", "--source", "csv/acme/poam-december.csv")
    assert item(url)["status"] == "remediating"


def test_a_date_later_than_the_fedramp_rule_is_kept_and_told(tmp_path: Path, url: str) -> None:
    # V-1 is High, detected 2026-01-05: the rule allows 30 days (2026-02-04), the file says July.
    code, out, err = cli(
        url, "import", str(write_csv(tmp_path / "poam.csv")), "--system", "acme", "--json"
    )
    assert code == 0, err
    (result,) = json.loads(out)
    assert {
        "poam_id": "V-1",
        "scheduled_completion_date": "2026-07-04",
        "rule_allows": "2026-02-04",
    } in result["later_than_rule"]
    said = " ".join(err.split())
    assert (
        "later than the FedRAMP rule V-1: scheduled 2026-07-04, the rule allows 2026-02-04" in said
    )
    assert item(url)["scheduled_completion_date"] == "2026-07-04"
