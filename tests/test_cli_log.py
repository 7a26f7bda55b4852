"""`poam-sync log keygen | checkpoint | verify --checkpoint` as a user runs them: a log cut short
with its chain head rewritten passes `log verify` alone and fails against the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.formats import read
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.store import Store
from tests.store.tamper import truncate_and_rewrite_head

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with Store.open(url) as store, store.begin() as tx:
        tx.import_items(read(SAMPLE_FEDRAMP_XLSX).items, system="Acme", actor="isso", batch_id="b")
    return url


def invoke(db: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db, *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_keygen_checkpoint_and_verify(db: str, tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    code, _, said = invoke(db, "log", "keygen", "-o", str(key))
    assert code == 0, said
    assert key.stat().st_mode & 0o777 == 0o600 and Path(f"{key}.pub").is_file()
    assert "key id" in said

    code, out, said = invoke(
        db, "log", "checkpoint", "--key", str(key), "-o", str(tmp_path / "cp.json"), "--json"
    )
    assert code == 0, said
    written = json.loads(out)
    with Store.open(db, read_only=True) as store:
        rows = store.log()
    assert written["checkpoint"]["seq"] == rows[-1].seq
    assert written["checkpoint"]["hash"] == rows[-1].hash
    assert written["checkpoint"]["rows"] == len(rows)

    code, out, said = invoke(
        db, "log", "verify", "--checkpoint", str(tmp_path / "cp.json"),
        "--public-key", f"{key}.pub", "--json",
    )  # fmt: skip
    assert code == 0, said
    report = json.loads(out)
    assert report["ok"] and report["rows_checked"] == len(rows)
    assert report["rows_since_checkpoint"] == 0
    assert said.startswith("ok:")

    again, _, said = invoke(db, "log", "keygen", "-o", str(key))
    assert again == 2 and "never overwritten" in said


def test_truncation_with_a_rewritten_head_fails_against_the_checkpoint(
    db: str, tmp_path: Path
) -> None:
    key = tmp_path / "signing.key"
    invoke(db, "log", "keygen", "-o", str(key))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    code, _, said = invoke(db, "log", "checkpoint", "--key", str(key), "-o", str(folder))
    assert code == 0, said

    raw = sa.create_engine(db)  # a database admin hides the last rows
    with raw.connect() as conn:
        last = int(conn.execute(sa.text("SELECT max(seq) FROM change_log")).scalar_one())
    truncate_and_rewrite_head(raw, keep=last - 5)
    raw.dispose()

    alone, _, said = invoke(db, "log", "verify")
    assert alone == 0, said  # the chain by itself is consistent
    code, _, said = invoke(db, "log", "verify", "--checkpoint", str(folder), "--key", str(key))
    assert code == 1
    assert said.startswith("broken:")
    assert f"the log ends at row {last - 5}" in said
    assert f"rows {last - 4} to {last} were removed" in said

    code, _, said = invoke(db, "log", "checkpoint", "--key", str(key), "-o", str(folder))
    assert code == 1 and "not signing" in said
    assert len(list(folder.iterdir())) == 1


def test_the_key_may_come_from_the_environment(db: str, tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    invoke(db, "log", "keygen", "-o", str(key))
    env = {"POAM_SYNC_CHECKPOINT_KEY": key.read_text()}
    target = tmp_path / "cp.json"
    code, _, said = invoke(db, "log", "checkpoint", "-o", str(target), env=env)
    assert code == 0, said
    code, _, said = invoke(db, "log", "verify", "--checkpoint", str(target), env=env)
    assert code == 0, said
    code, _, said = invoke(db, "log", "verify", "--checkpoint", str(target), env={})
    assert code == 2 and "--public-key" in said


def test_a_checkpoint_with_a_wrong_or_missing_file_is_told_plainly(db: str, tmp_path: Path) -> None:
    code, _, said = invoke(db, "log", "verify", "--checkpoint", str(tmp_path / "none.json"))
    assert code == 2 and "no checkpoint at" in said
    (tmp_path / "junk.json").write_text("[1, 2]")
    (tmp_path / "k.pub").write_text("not a key")
    code, _, said = invoke(
        db, "log", "verify", "--checkpoint", str(tmp_path / "junk.json"),
        "--public-key", str(tmp_path / "k.pub"),
    )  # fmt: skip
    assert code == 2 and "is not a poam-sync checkpoint" in said


def test_log_export_writes_a_file_or_stdout_and_filters_by_item(db: str, tmp_path: Path) -> None:
    with Store.open(db, read_only=True) as store:
        logged = store.log()
        item = store.items()[0]
    target = tmp_path / "log.csv"
    code, _, said = invoke(db, "log", "export", "--format", "csv", "-o", str(target))
    assert code == 0, said
    assert f"wrote {len(logged)} change-log row(s)" in said
    assert len(target.read_text().splitlines()) == len(logged) + 1

    code, out, said = invoke(
        db, "log", "export", "--format", "jsonl", "--item", item.poam_id, "-o", "-"
    )
    assert code == 0, said
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and {r["item_uuid"] for r in rows} == {item.uuid}
    assert [r["hash"] for r in rows] == [r.hash for r in logged if r.item_uuid == item.uuid]

    code, _, said = invoke(db, "log", "export", "--format", "xml", "-o", "-")
    assert code == 2 and "unknown log export format" in said
    code, _, said = invoke(db, "log", "export", "--format", "csv", "--since", "May", "-o", "-")
    assert code == 2 and "is not a date" in said


def test_log_verify_json_without_a_checkpoint(db: str) -> None:
    code, out, said = invoke(db, "log", "verify", "--json")
    assert code == 0, said
    report = json.loads(out)
    assert report["ok"] is True and report["first_bad_seq"] is None
    assert report["message"] == f"{report['rows_checked']} change-log row(s) verify"
