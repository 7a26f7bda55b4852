"""The exit codes the README promises, case by case: 0 it worked; 1 it ran, but something in the
data did not go through (a rejected row, an item or connector that failed, a broken chain); 2 it
could not run as asked (usage, configuration, an unknown POA&M ID or conflict id, no store,
another process leading the database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX

runner = CliRunner()

CASES: dict[str, tuple[tuple[str, ...], int]] = {
    "a listing": (("items", "list", "--format", "json"), 0),
    "an item shown": (("items", "show", "{first}"), 0),
    "a chain that verifies": (("log", "verify"), 0),
    "an import with a rejected row": (("import", "{bad_csv}"), 1),
    "an unknown POA&M ID": (("items", "show", "NO-SUCH-ID"), 2),
    "an unknown conflict": (("conflicts", "show", "999"), 2),
    "settling an unknown conflict": (
        ("conflicts", "resolve", "999", "--take", "local", "--reason", "r"),
        2,
    ),
    "an unknown command": (("itemz", "list"), 2),
    "a wrong option": (("items", "list", "--colour"), 2),
    "a value no filter knows": (("items", "list", "--status", "sleepy"), 2),
    "a store that does not exist": (("--db", "sqlite:///{tmp}/absent.db", "items", "list"), 2),
    "a configuration that is missing": (("--config", "{tmp}/absent.yaml", "sync"), 2),
    "a sync with no connectors": (("--config", "{tmp}/empty.yaml", "sync"), 2),
    "an edit without a reason": (("items", "set", "{first}", "title=x"), 2),
}


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'poam-sync.db'}"
    done = runner.invoke(app, ["--db", url, "import", str(SAMPLE_FEDRAMP_XLSX)])
    assert done.exit_code == 0, done.stderr
    listed = runner.invoke(
        app, ["--db", url, "items", "list", "--format", "tsv", "--columns", "poam_id"]
    )
    first = listed.stdout.splitlines()[1].strip()
    return url, first


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_exit_code_is_the_one_the_readme_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: tuple[str, str], case: str
) -> None:
    url, first = store
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POAM_SYNC_CONFIG", raising=False)
    (tmp_path / "empty.yaml").write_text("connectors: {}\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("poam_id,title,status\nV-900,Fine,open\nV-901,Bad,sleepy\n", encoding="utf-8")
    args, expected = CASES[case]
    filled = [a.format(tmp=tmp_path, first=first, bad_csv=bad) for a in args]
    if "--db" not in filled and "--config" not in filled:
        filled = ["--db", url, *filled]
    result = runner.invoke(app, filled)
    assert result.exit_code == expected, f"{' '.join(filled)}: {result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr
