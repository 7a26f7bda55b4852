"""Every command, given the ordinary mistakes (a database that is no database, a URL that is no
URL, a folder that does not exist, a broken configuration), says what is wrong and exits 1 or
2: never a traceback. A new command must be added to ``COMMANDS`` (a test checks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from poam_sync.cli import app

runner = CliRunner()

# Each command with the arguments it needs to get past its own option parsing.
COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("audit", "bundle"): ("-o", "{tmp}/bundle.zip"),
    ("config", "check"): (),
    ("conflicts", "list"): (),
    ("conflicts", "show"): ("1",),
    ("conflicts", "resolve"): ("1", "--take", "local", "--reason", "test"),
    ("export",): ("--format", "csv", "-o", "-"),
    ("import",): ("{sample}",),
    ("items", "list"): (),
    ("items", "show"): ("V-1",),
    ("items", "set"): ("V-1", "due_date=2027-01-31", "--reason", "test"),
    ("items", "close"): ("V-1", "--status", "completed", "--evidence", "test"),
    ("items", "milestone", "add"): ("V-1", "--description", "d", "--reason", "test"),
    ("items", "milestone", "set"): ("V-1", "1", "--due", "2027-01-31", "--reason", "test"),
    ("items", "milestone", "complete"): ("V-1", "1", "--reason", "test"),
    ("log", "show"): (),
    ("log", "verify"): (),
    ("log", "export"): ("--format", "jsonl", "-o", "{tmp}/log.jsonl"),
    ("log", "keygen"): ("-o", "{tmp}/checkpoint.key"),
    ("log", "checkpoint"): ("--key", "{tmp}/no.key", "-o", "{tmp}/checkpoint.json"),
    ("report",): ("status", "--format", "csv", "-o", "{tmp}/report.csv"),
    ("sync",): ("--once",),
    ("run",): (),
    ("init",): ("{tmp}/a-file",),
    ("users", "add"): ("ann@example.gov", "--role", "viewer"),
    ("users", "list"): (),
    ("users", "disable"): ("ann@example.gov",),
    ("serve",): ("--http", "127.0.0.1:0"),
}
# Commands that start servers or write a whole folder; their own tests cover their mistakes.
NOT_HERE = {("demo",), ("simulate", "jira"), ("simulate", "servicenow")}


def _commands() -> Iterator[tuple[str, ...]]:
    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                yield from walk(sub, (*path, name))
        else:
            yield path

    yield from walk(typer.main.get_command(app), ())


def test_every_command_is_tried_here() -> None:
    assert set(_commands()) == set(COMMANDS) | NOT_HERE


MISTAKES = {
    "garbage file as database": ("--db", "sqlite:///{tmp}/garbage.db"),
    "url that is no url": ("--db", "no-such-scheme://x"),
    "folder that does not exist": ("--db", "sqlite:///{tmp}/missing/folder/x.db"),
    "broken configuration": ("--config", "{tmp}/broken.yaml"),
    "configuration that is missing": ("--config", "{tmp}/absent.yaml"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_a_mistake_is_told_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...], mistake: str
) -> None:
    from poam_sync.samples import SAMPLE_FEDRAMP_XLSX

    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.db").write_text("this is not a database\n" * 100)
    (tmp_path / "broken.yaml").write_text("connectors:\n  jira: [unclosed\n")
    (tmp_path / "a-file").write_text("in the way\n")

    def fill(arg: str) -> str:
        return arg.format(tmp=tmp_path, sample=SAMPLE_FEDRAMP_XLSX)

    args = [*map(fill, MISTAKES[mistake]), *command, *map(fill, COMMANDS[command])]
    result = runner.invoke(app, args)
    said = result.stdout + result.stderr
    assert "Traceback" not in said, said
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{' '.join(args)} raised {result.exception!r}"
    )
    assert result.exit_code in (0, 1, 2), said
    if result.exit_code:
        assert "error" in result.stderr.lower() or "broken" in result.stderr.lower(), said


@pytest.mark.parametrize(
    "command",
    [
        ("report", "status", "--format", "html", "-o"),
        ("report", "conflicts", "--format", "csv", "-o"),
        ("export", "--format", "csv", "-o"),
        ("export", "--format", "fedramp-xlsx", "-o"),
    ],
    ids=" ".join,
)
def test_an_output_file_that_cannot_be_written_is_named(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    from poam_sync.store import Store

    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store.open(url).close()  # an empty store
    (tmp_path / "a-file").write_text("in the way\n")
    target = tmp_path / "a-file" / "out"
    result = runner.invoke(app, ["--db", url, *command, str(target)])
    assert result.exit_code == 2, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr and str(target.parent) in result.stderr.replace(
        "\n", ""
    )


def test_verbose_names_the_causes_and_debug_adds_the_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_text("this is not a database\n" * 100)
    args = ["--db", f"sqlite:///{garbage}", "items", "list"]
    plain = runner.invoke(app, args)
    assert plain.exit_code == 2 and "caused by" not in plain.stderr
    assert "not a poam-sync store" in plain.stderr.replace("\n", " ")
    verbose = runner.invoke(app, ["-v", *args])
    assert "caused by: DatabaseError" in verbose.stderr and "Traceback" not in verbose.stderr
    debug = runner.invoke(app, ["--debug", *args])
    assert "caused by" in debug.stderr and "Traceback (most recent call last)" in debug.stderr


def test_shell_completion_completes_commands_and_options(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_POAM_SYNC_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        done = subprocess.run(
            [str(Path(sys.executable).parent / "poam-sync")],  # the installed command
            env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip
        return done.stdout.split()

    assert complete("poam-sync it") == ["items"]
    assert "--format" in complete("poam-sync items list --for")
