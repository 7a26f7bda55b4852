"""Reports for admins: every value escaped in HTML, formulas neutralized in CSV, JSON complete."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from poam_sync.reports import DueRow, ReportData, render
from poam_sync.store import ConflictRow, ProblemRow

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & =HYPERLINK("http://evil")'


def data() -> ReportData:
    conflict = ConflictRow(
        id=7,
        item_uuid="u-1",
        system="Acme <Cloud>",
        poam_id="V-<1>",
        connector="jira",
        field="title",
        baseline="Old",
        local=HOSTILE,
        remote="=cmd|' /C calc'!A0",
        remote_actor="<b>bob</b>",
        remote_changed_at=NOW,
        detected_at=NOW - timedelta(days=3),
        state="open",
    )
    problem = ProblemRow(
        item_uuid="u-1",
        poam_id="V-<1>",
        connector="jira",
        field="owner",
        code="unknown_user",
        message="no Jira user for <ghost@example.com>",
        first_seen=NOW,
        last_seen=NOW,
        active=True,
    )
    due = DueRow("V-2", "acme", HOSTILE, "alice@example.com", date(2026, 11, 20), "overdue", -8)
    return ReportData(NOW, (conflict,), (problem,), (due,), items_total=2, items_open=2)


def test_html_escapes_every_value_and_loads_nothing() -> None:
    page = render(data(), "status", "html")
    assert "<script>" not in page and "<b>bob</b>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;bob&lt;/b&gt;" in page
    assert "&lt;ghost@example.com&gt;" in page
    assert "http://evil" in page  # shown as text ...
    assert 'href="http' not in page and "src=" not in page  # ... never as a link or resource
    assert "3 d" in page and "8 d late" in page
    for section in ("Open conflicts (1)", "Unmapped users (1)", "Broken links (0)"):
        assert section in page


def test_csv_neutralizes_formulas() -> None:
    rows = list(csv.reader(io.StringIO(render(data(), "status", "csv"))))
    assert rows[0][0] == "section"
    cells = [cell for row in rows[1:] for cell in row]
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in cells), cells
    assert "'=cmd|' /C calc'!A0" in cells


@pytest.mark.parametrize("lead", ["\t", "\r", "+", "-", "@", "="])
def test_csv_neutralizes_tab_and_cr_prefixes_too(lead: str) -> None:
    hostile = replace(data().conflicts[0], remote=lead + "cmd|' /C calc'!A0")
    rows = list(
        csv.reader(io.StringIO(render(replace(data(), conflicts=(hostile,)), "status", "csv")))
    )
    assert rows[1][6] == "'" + lead + "cmd|' /C calc'!A0"


def test_json_has_the_three_values_and_their_age() -> None:
    out = json.loads(render(data(), "conflicts", "json"))
    (c,) = out["conflicts"]
    assert (c["baseline"], c["local"], c["remote"], c["age"]) == (
        "Old",
        HOSTILE,
        "=cmd|' /C calc'!A0",
        "3 d",
    )
    assert "problems" not in out  # the conflicts report is only about conflicts


def test_an_unreadable_remote_value_is_listed_with_the_mapping_line_that_covers_it() -> None:
    unreadable = ProblemRow(
        item_uuid="u-1",
        poam_id="V-1",
        connector="jira",
        field="status",
        code="unknown_value",
        message="Jira status 'Blocked' is not in the mapping; the status is left as it was",
        first_seen=NOW,
        last_seen=NOW,
        active=True,
        kind="read",
        hint="add `Blocked: <one of open, ...>` under read_statuses: in mappings/jira.yaml",
        remote_id="10001",
        remote_key="POAM-1 <x>",
    )
    report = ReportData(NOW, (), (unreadable,), (), items_total=1, items_open=1)
    page = render(report, "status", "html")
    assert "Remote values the mapping does not know (1)" in page
    assert "fix: add `Blocked: &lt;one of open, ...&gt;` under read_statuses:" in page
    assert "POAM-1 &lt;x&gt;" in page
    (row,) = json.loads(render(report, "status", "json"))["problems"]
    assert (row["kind"], row["remote_key"], row["hint"]) == ("read", "POAM-1 <x>", unreadable.hint)
    table = list(csv.reader(io.StringIO(render(report, "status", "csv"))))
    assert any("read_statuses" in cell and "POAM-1" in cell for line in table for cell in line)
