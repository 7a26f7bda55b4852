"""Reports and ``conflicts show`` say where each item lives: the Jira key, the ServiceNow
number, and their addresses, as links a reader can follow (and never a script URL)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

from poam_sync.reports import DueRow, ReportData, render
from poam_sync.store import ConflictRow, LinkRow

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def data() -> ReportData:
    conflict = ConflictRow(
        id=3,
        item_uuid="u-1",
        system="acme",
        poam_id="V-1",
        connector="jira",
        field="title",
        baseline="Old",
        local="Ours",
        remote="Theirs",
        remote_actor="bob",
        remote_changed_at=NOW,
        detected_at=NOW - timedelta(hours=2),
        state="open",
    )
    due = DueRow(
        "V-2", "acme", "Patch it", "alice@example.com", date(2026, 11, 20), "overdue", -8, "u-2"
    )
    links = {
        "u-1": (
            LinkRow("u-1", "jira", "10001", "SEC-1", url="https://jira.example.com/browse/SEC-1"),
            LinkRow(
                "u-1",
                "servicenow",
                "abc",
                "ISS0001001",
                url="https://sn.example.com/nav_to.do?uri=sn_grc_issue.do%3Fsys_id%3Dabc&x=1",
            ),
        ),
        "u-2": (
            LinkRow("u-2", "jira", "10002", "SEC-2", url="javascript:alert(1)", state="broken"),
        ),
    }
    return ReportData(NOW, (conflict,), (), (due,), items_total=2, items_open=2, links=links)


def test_the_html_report_links_each_item_to_its_records() -> None:
    page = render(data(), "status", "html")
    assert '<a href="https://jira.example.com/browse/SEC-1">SEC-1</a>' in page
    assert (
        'href="https://sn.example.com/nav_to.do?uri=sn_grc_issue.do%3Fsys_id%3Dabc&amp;x=1"' in page
    )
    assert "ISS0001001</a>" in page
    # A URL that is not a web address is shown as its key only, and a broken link says so.
    assert "javascript:" not in page
    assert "jira SEC-2 (broken)" in page


def test_json_and_csv_reports_carry_the_keys_and_urls() -> None:
    report = json.loads(render(data(), "status", "json"))
    assert report["conflicts"][0]["links"] == [
        {
            "connector": "jira",
            "key": "SEC-1",
            "url": "https://jira.example.com/browse/SEC-1",
            "state": "active",
        },
        {
            "connector": "servicenow",
            "key": "ISS0001001",
            "url": "https://sn.example.com/nav_to.do?uri=sn_grc_issue.do%3Fsys_id%3Dabc&x=1",
            "state": "active",
        },
    ]
    assert report["due"][0]["links"][0]["key"] == "SEC-2"
    rows = list(csv.DictReader(io.StringIO(render(data(), "status", "csv"))))
    conflict = next(r for r in rows if r["section"] == "conflict")
    assert conflict["links"].startswith(
        "jira SEC-1 https://jira.example.com/browse/SEC-1; servicenow ISS0001001"
    )
