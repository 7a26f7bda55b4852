"""`poam-sync demo --dir DIR` never deletes what it did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from poam_sync.demo import MARKER, prepare_folder
from poam_sync.errors import UsageError
from tests.test_cli import run


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
