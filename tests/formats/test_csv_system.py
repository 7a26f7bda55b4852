"""A CSV round trip keeps each item's system: the export writes a ``System`` column and the import
reads it, so export -> import lands on the same items instead of new ones in ``default``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX

runner = CliRunner()


def test_export_then_import_lands_on_the_same_items(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'poam-sync.db'}"
    assert (
        runner.invoke(
            app, ["--db", url, "import", str(SAMPLE_FEDRAMP_XLSX), "--system", "acme"]
        ).exit_code
        == 0
    )
    out = tmp_path / "poam.csv"
    assert (
        runner.invoke(app, ["--db", url, "export", "--format", "csv", "-o", str(out)]).exit_code
        == 0
    )
    assert out.read_text(encoding="utf-8").splitlines()[0].endswith(",System")
    done = runner.invoke(app, ["--db", url, "import", str(out), "--json"])
    (result,) = json.loads(done.stdout)
    assert result["system"] == "acme" and result["created"] == [] and result["changes"] == 0


def test_a_csv_of_several_systems_is_refused_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'poam-sync.db'}"
    bad = tmp_path / "mixed.csv"
    bad.write_text("POAM ID,Weakness Name,System\nV-1,One,acme\nV-2,Two,globex\n", encoding="utf-8")
    done = runner.invoke(app, ["--db", url, "import", str(bad)])
    assert done.exit_code == 1, done.stderr
    said = " ".join(done.stderr.split())
    assert "more than one system" in said and "--system" in said
    given = runner.invoke(app, ["--db", url, "import", str(bad), "--system", "acme", "--json"])
    assert json.loads(given.stdout)[0]["created"] == ["V-1", "V-2"]
