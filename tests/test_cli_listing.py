"""`items list`, `items show` and `log show` read well in a terminal and in a pipe: formats,
columns, filters, sort, limits, the remote keys and URLs, and clear errors for bad options."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.cli._output import Column, emit
from poam_sync.formats import read
from poam_sync.model import Person
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.store import LinkRow, Store

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store with the sample workbook's eight items, two of them linked to Jira and one to
    ServiceNow, and a title edit by a person."""
    url = f"sqlite:///{tmp_path / 'listing.db'}"
    items = read(SAMPLE_FEDRAMP_XLSX).items
    with Store.open(url) as store:
        with store.begin() as tx:
            tx.import_items(items, system="Acme", actor="isso", batch_id="b1")
        first, second = store.items("Acme")[:2]
        with store.begin() as tx:
            tx.set_link(
                LinkRow(
                    first.uuid, "jira", "10001", "SEC-1", "v1", "https://jira.test/browse/SEC-1"
                )
            )
            tx.set_link(LinkRow(second.uuid, "jira", "10002", "SEC-2", "v1"))
            tx.set_link(LinkRow(first.uuid, "servicenow", "abc", "ISS0001001", "3"))
            tx.save(
                first.model_copy(
                    update={"title": "Renamed\tby the ISSO", "owner": Person(email="zoe@x.test")}
                ),
                source="cli",
                actor="isso@x.test",
                reason="scope",
            )
    return url


def invoke(db: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db, *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_pipe_gets_one_tsv_line_per_item_with_the_remote_keys(db: str) -> None:
    code, stdout, stderr = invoke(db, "items", "list")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split("\t") == [
        "poam_id", "status", "risk", "owner", "due", "jira", "servicenow", "title"
    ]  # fmt: skip
    assert len(lines) == 9 and "┃" not in stdout and "─" not in stdout
    renamed = next(line.split("\t") for line in lines if "SEC-1" in line)
    assert renamed[5:] == ["SEC-1", "ISS0001001", "Renamed by the ISSO"]  # the tab folded
    assert "8 item(s)" in stderr


def test_columns_formats_and_urls(db: str) -> None:
    code, stdout, _ = invoke(
        db, "items", "list", "--columns", "poam_id,jira,jira_url", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert {"jira": "SEC-1", "jira_url": "https://jira.test/browse/SEC-1"}.items() <= next(
        r for r in rows if r["jira"] == "SEC-1"
    ).items()
    code, stdout, _ = invoke(db, "items", "list", "--columns", "poam_id,owner", "--format", "json")
    listed = json.loads(stdout)
    assert len(listed) == 8 and set(listed[0]) == {"poam_id", "owner"}
    code, stdout, _ = invoke(db, "items", "list", "--format", "plain", "--columns", "title")
    assert stdout.splitlines()[0].rstrip() == "Title"


def test_filters_sort_and_limit(db: str) -> None:
    _, stdout, _ = invoke(db, "items", "list", "--owner", "ZOE", "--columns", "owner")
    assert stdout.splitlines()[1:] == ["zoe@x.test"]
    _, stdout, _ = invoke(db, "items", "list", "--search", "renamed", "--columns", "jira")
    assert stdout.splitlines()[1:] == ["SEC-1"]
    _, stdout, stderr = invoke(
        db, "items", "list", "--sort", "-risk,due", "--limit", "3", "--columns", "risk,due"
    )
    risks = [line.split("\t")[0] for line in stdout.splitlines()[1:]]
    order = {"critical": 4, "high": 3, "moderate": 2, "low": 1, "": 0}
    assert len(risks) == 3 and [order[r] for r in risks] == sorted(
        (order[r] for r in risks), reverse=True
    )
    assert "3 item(s) of 8" in stderr
    _, stdout, _ = invoke(db, "items", "list", "--overdue", "--columns", "due_state")
    assert set(stdout.splitlines()[1:]) <= {"overdue"}
    _, stdout, _ = invoke(db, "items", "list", "--due-within", "36500", "--columns", "due_state")
    assert set(stdout.splitlines()[1:]) <= {"overdue", "due_soon", "ok"}
    assert len(stdout.splitlines()) > 1
    _, stdout, _ = invoke(db, "items", "list", "--conflicted")
    assert stdout.splitlines()[1:] == []  # no conflict in this store
    _, stdout, _ = invoke(db, "items", "list", "--status", "open,completed", "--columns", "status")
    assert set(stdout.splitlines()[1:]) <= {"open", "completed"}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--columns", "poam_id,colour"), "unknown column 'colour'"),
        (("--status", "opn"), "unknown status 'opn'"),
        (("--due", "late"), "unknown due state 'late'"),
        (("--sort", "colour"), "cannot sort by 'colour'"),
        (("--format", "yaml"), "unknown output format 'yaml'"),
    ],
)
def test_a_bad_option_is_named_with_the_choices_and_no_traceback(
    db: str, args: tuple[str, ...], said: str
) -> None:
    code, stdout, stderr = invoke(db, "items", "list", *args)
    assert code == 2 and said in stderr and "Traceback" not in stderr and stdout == ""


def test_items_show_names_the_linked_records(db: str) -> None:
    _, listed, _ = invoke(db, "items", "list", "--columns", "poam_id,jira")
    poam_id = next(line.split("\t")[0] for line in listed.splitlines() if "SEC-1" in line)
    code, stdout, _ = invoke(db, "items", "show", poam_id, "--json")
    assert code == 0
    links = {link["connector"]: link for link in json.loads(stdout)["links"]}
    assert links["jira"]["url"] == "https://jira.test/browse/SEC-1"
    assert links["servicenow"]["remote_key"] == "ISS0001001"
    _, stdout, _ = invoke(db, "items", "show", poam_id)
    assert "SEC-1 https://jira.test/browse/SEC-1" in stdout and "ISS0001001" in stdout


def test_log_show_filters_limits_and_streams(db: str) -> None:
    code, stdout, _ = invoke(db, "log", "show", "--source", "cli", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert {r["field"] for r in rows} == {"title", "owner"} and {r["actor"] for r in rows} == {
        "isso@x.test"
    }
    assert next(r for r in rows if r["field"] == "title")["new"] == "Renamed\tby the ISSO"
    _, stdout, _ = invoke(db, "log", "show", "--json", "--limit", "2")
    newest = json.loads(stdout)
    _, everything, _ = invoke(db, "log", "show", "--json")
    assert [r["seq"] for r in newest] == [r["seq"] for r in json.loads(everything)][-2:]
    _, stdout, _ = invoke(db, "log", "show", "--actor", "isso@x.test", "--columns", "actor")
    assert set(stdout.splitlines()[1:]) == {"isso@x.test"}
    _, stdout, _ = invoke(db, "log", "show", "--field", "title", "--columns", "field")
    assert set(stdout.splitlines()[1:]) == {"title"}
    _, stdout, _ = invoke(db, "log", "show", "--since", "2999-01-01", "--json")
    assert json.loads(stdout) == []
    code, _, stderr = invoke(db, "log", "show", "--since", "2026-13-01")
    assert code == 2 and "--since '2026-13-01' is not a date or time" in stderr


def test_the_log_reads_a_page_at_a_time(db: str) -> None:
    from poam_sync.store import LogQuery

    with Store.open(db, read_only=True) as store:
        everything = [r.seq for r in store.iter_log(LogQuery())]
        assert len(everything) > 30
        with store.read() as tx:
            first = tx.log_page(LogQuery(), size=10)
            second = tx.log_page(LogQuery(), after=first[-1].seq, size=10)
        assert [r.seq for r in first + second] == everything[:20]
        assert [r.seq for r in store.iter_log(LogQuery(), newest=5)] == everything[-5:]


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_terminal_table_fits_the_width_without_cutting_dates_or_e_mails(width: int) -> None:
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system=None)
    columns = [
        Column("id", "POA&M ID"),
        Column("system", "System", drop=1),
        Column("owner", "Owner", drop=2),
        Column("due", "Due"),
        Column("title", "Title", wrap=True),
    ]
    email = "someone.with.a.long.name@example.com"
    rows = [
        {
            "id": f"V-{n}",
            "system": "Acme Cloud Platform",
            "owner": email,
            "due": str(date(2026, 9, 29)),
            "title": "[bold]not markup[/bold] and a very long title " * 3,
        }
        for n in range(3)
    ]
    assert emit(rows, columns, "auto", console=console) == 3
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    assert sum("2026-09-29" in line for line in lines) == 3  # dates never cut or wrapped
    assert sum(email in line for line in lines) == (3 if width >= 120 else 0)  # whole, or left out
    assert ("left out at this width: system" in text) == (width < 120)
    assert "[bold]" in text  # shown as written, not taken as markup
