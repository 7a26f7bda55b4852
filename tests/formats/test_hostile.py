"""Every broken or hostile file of the corpus (tests/formats/hostile.py), imported through the
CLI: exit 1 with a message naming the file and the spot, never a traceback, and under
``--strict`` the store exactly as it was (items, change log, and the log still verifies)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poam_sync import formats
from poam_sync.cli import app
from poam_sync.errors import InputError
from poam_sync.store import Store
from tests.formats import hostile

runner = CliRunner()


def _snapshot(url: str) -> tuple[list[str], int, bool]:
    store = Store.open(url, read_only=True)
    try:
        items = sorted(i.model_dump_json() for i in store.items())
        return items, len(store.log()), store.verify_log().ok
    finally:
        store.close()


@pytest.fixture
def seeded(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    seed = hostile.seed_csv(tmp_path)
    result = runner.invoke(app, ["--db", url, "import", str(seed), "--system", "test"])
    assert result.exit_code == 0, result.output
    return url


@pytest.mark.parametrize("case", hostile.CASES, ids=lambda c: c.name)
def test_hostile_file_under_strict(case: hostile.Case, seeded: str, tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    path = case.build(folder)
    before = _snapshot(seeded)
    result = runner.invoke(
        app, ["--db", seeded, "import", "--strict", "--system", "test", "--json", str(path)]
    )
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    if case.expect == "ok":
        assert result.exit_code == 0, text
        return
    assert result.exit_code == 1, text
    assert path.name in text
    for where in case.where:
        assert where in text, f"{where!r} not in {text}"
    assert _snapshot(seeded) == before


@pytest.mark.parametrize(
    "case", [c for c in hostile.CASES if c.expect == "rows"], ids=lambda c: c.name
)
def test_hostile_rows_without_strict_keep_the_good_rows(
    case: hostile.Case, seeded: str, tmp_path: Path
) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    path = case.build(folder)
    result = runner.invoke(app, ["--db", seeded, "import", "--system", "test", "--json", str(path)])
    assert result.exit_code == 1
    (outcome,) = json.loads(result.stdout)
    assert outcome["written"] is True and outcome["rejected"]
    assert len(outcome["unchanged"]) + len(outcome["updated"]) >= 1


def test_strict_with_several_files_writes_none_when_one_is_bad(seeded: str, tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    good = folder / "good.csv"
    good.write_text(
        hostile.seed_csv(folder).read_text(encoding="utf-8").replace("V-100", "N-100"),
        encoding="utf-8",
    )
    bad = hostile.CASES[0].build(folder)
    before = _snapshot(seeded)
    result = runner.invoke(
        app, ["--db", seeded, "import", "--strict", "--system", "test", str(good), str(bad)]
    )
    assert result.exit_code == 1
    assert _snapshot(seeded) == before
    assert "nothing was written" in result.output + result.stderr
    # without --strict the good file goes in and the summary says so per file
    result = runner.invoke(
        app, ["--db", seeded, "import", "--system", "test", "--json", str(good), str(bad)]
    )
    assert result.exit_code == 1
    first, second = json.loads(result.stdout)
    assert first["written"] is True and len(first["created"]) == 3
    assert second["written"] is False and second["rejected"][0]["file"] == bad.name


@pytest.mark.parametrize("case", ["csv-bom", "xlsx-macro", "json-bad-uuid"])
def test_an_import_over_the_memory_cap_stops_with_a_clear_error(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = next(c for c in hostile.CASES if c.name == case).build(tmp_path)
    monkeypatch.setenv("POAM_SYNC_IMPORT_MEMORY_MB", "1")
    with pytest.raises(InputError) as info:
        formats.read(path)
    assert info.value.problem.code == "too_much_memory"
    assert path.name in str(info.value) and "POAM_SYNC_IMPORT_MEMORY_MB" in str(info.value)
