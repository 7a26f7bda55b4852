"""`poam-sync audit bundle`: the POA&M in two forms, the log, the checkpoint, a verify report and
a manifest whose sums hold; a log cut short since the checkpoint shows as broken in the bundle."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from poam_sync import audit_checkpoint
from poam_sync.audit_bundle import build_bundle
from poam_sync.cli import app
from poam_sync.formats import read
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.store import Store
from tests.store.tamper import truncate_and_rewrite_head

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bundle.db'}"
    with Store.open(url) as store, store.begin() as tx:
        tx.import_items(read(SAMPLE_FEDRAMP_XLSX).items, system="Acme", actor="isso", batch_id="b")
    return url


def _unzip(path: Path, into: Path) -> dict[str, Path]:
    with zipfile.ZipFile(path) as bundle:
        bundle.extractall(into)
        return {name: into / name for name in bundle.namelist()}


def test_the_bundle_holds_what_an_assessor_takes_away(db: str, tmp_path: Path) -> None:
    key = tmp_path / "k"
    audit_checkpoint.generate_key(key)
    with Store.open(db, read_only=True) as store:
        signed = audit_checkpoint.make_checkpoint(store, audit_checkpoint.load_private_key(key))
        cp = audit_checkpoint.write_checkpoint(signed, tmp_path / "head.json")
        public = audit_checkpoint.load_public_key(Path(f"{key}.pub"))
        result = build_bundle(store, tmp_path / "b.zip", checkpoint=cp, public_key=public)
        logged = store.log()
        items = store.items()
    assert result.ok and result.rows == len(logged) and result.items == len(items)

    files = _unzip(tmp_path / "b.zip", tmp_path / "out")
    assert set(files) == {
        "poam/fedramp-poam.xlsx",
        "poam/oscal-poam.json",
        "log/change-log.jsonl",
        "checkpoint/head.json",
        "verify.json",
        "verify.txt",
        "MANIFEST.sha256",
    }
    manifest = files["MANIFEST.sha256"].read_text().splitlines()
    assert len(manifest) == len(files) - 1
    for line in manifest:  # the `sha256sum -c` form
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(files[name].read_bytes()).hexdigest() == digest

    for name in ("poam/fedramp-poam.xlsx", "poam/oscal-poam.json"):
        back = read(files[name])
        assert sorted(i.poam_id for i in back.items) == sorted(i.poam_id for i in items)
    rows = [json.loads(line) for line in files["log/change-log.jsonl"].read_text().splitlines()]
    assert [r["hash"] for r in rows] == [r.hash for r in logged]
    report = json.loads(files["verify.json"].read_text())
    assert report["ok"] is True and report["checkpoint"]["held"] is True
    assert report["head"]["seq"] == logged[-1].seq
    assert report["checkpoint"]["seq"] == signed.checkpoint.seq
    assert files["verify.txt"].read_text().startswith("ok: ")
    assert files["checkpoint/head.json"].read_bytes() == cp.read_bytes()


def test_a_log_cut_short_since_the_checkpoint_is_reported_broken(db: str, tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert runner.invoke(app, ["log", "keygen", "-o", str(key)]).exit_code == 0
    cp = tmp_path / "cp.json"
    made = runner.invoke(app, ["--db", db, "log", "checkpoint", "--key", str(key), "-o", str(cp)])
    assert made.exit_code == 0, made.stderr
    raw = sa.create_engine(db)  # a database admin hides the last rows
    with raw.connect() as conn:
        last = int(conn.execute(sa.text("SELECT max(seq) FROM change_log")).scalar_one())
    truncate_and_rewrite_head(raw, keep=last - 3)
    raw.dispose()
    target = tmp_path / "b.zip"
    done = runner.invoke(
        app,
        ["--db", db, "audit", "bundle", "-o", str(target), "--checkpoint", str(cp),
         "--key", str(key), "--json"],
    )  # fmt: skip
    assert done.exit_code == 1, done.stderr
    assert json.loads(done.stdout)["ok"] is False
    files = _unzip(target, tmp_path / "out")
    report = json.loads(files["verify.json"].read_text())
    assert report["ok"] is False and report["checkpoint"]["held"] is False
    assert f"rows {last - 2} to {last} were removed" in report["message"]
    assert files["verify.txt"].read_text().startswith("BROKEN: ")


def test_without_a_checkpoint_the_report_says_so(db: str, tmp_path: Path) -> None:
    done = runner.invoke(app, ["--db", db, "audit", "bundle", "-o", str(tmp_path / "b.zip")])
    assert done.exit_code == 0, done.stderr
    files = _unzip(tmp_path / "b.zip", tmp_path / "out")
    report = json.loads(files["verify.json"].read_text())
    assert report["ok"] is True and report["checkpoint"] is None
    assert "no checkpoint was given" in report["message"]
    assert "checkpoint/" not in " ".join(files)
