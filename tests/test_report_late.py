"""The status report lists the open items scheduled later than the FedRAMP rule allows (the
ones ``import`` warns of), in HTML, CSV and JSON; a deviation or a closed item is not listed."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

from poam_sync import reports
from poam_sync.model import Deviation, DeviationStatus, RiskLevel, Status
from poam_sync.store import Store
from tests.store.factory import make_item
from tests.test_cli import run

TODAY = date(2026, 12, 6)


def _fill(store: Store) -> None:
    detected = date(2026, 1, 5)
    items = [
        # High: 30 days, so 2026-02-04; scheduled 240 days out (the case)
        make_item("V-HIGH", scheduled_completion_date=date(2026, 9, 2)),
        # Moderate: 90 days (2026-04-05); scheduled 10 days over
        make_item(
            "V-MOD",
            title="<b>bold</b>",
            original_risk=RiskLevel.MODERATE,
            scheduled_completion_date=date(2026, 4, 15),
        ),
        # within the rule
        make_item("V-OK", scheduled_completion_date=date(2026, 2, 1)),
        # late, but closed
        make_item("V-CLOSED", status=Status.COMPLETED, scheduled_completion_date=date(2026, 9, 2)),
        # an approved risk adjustment to Low: 180 days (2026-07-04), within it
        make_item(
            "V-ADJ",
            adjusted_risk=RiskLevel.LOW,
            deviation=Deviation(risk_adjustment=DeviationStatus.APPROVED),
            scheduled_completion_date=date(2026, 7, 1),
        ),
    ]
    with store.begin() as tx:
        for item in items:
            assert item.detected_on == detected
            tx.save(item, source="import", actor="ann")


def test_the_late_items_are_collected_furthest_over_first(db_url: str) -> None:
    with Store.open(db_url) as store:
        _fill(store)
        data = reports.collect(store, today=TODAY)
    assert [(r.poam_id, r.allowed, r.days_over, r.risk) for r in data.late] == [
        ("V-HIGH", date(2026, 2, 4), 210, "high"),
        ("V-MOD", date(2026, 4, 5), 10, "moderate"),
    ]

    as_json = json.loads(reports.render(data, "status", "json"))
    assert as_json["late"][0] == {
        "poam_id": "V-HIGH",
        "system": "acme",
        "title": "Weakness V-HIGH",
        "owner": "ann@example.gov",
        "scheduled_completion_date": "2026-09-02",
        "rule_allows": "2026-02-04",
        "days_over": 210,
        "risk": "high",
        "links": [],
    }
    assert "late" not in json.loads(reports.render(data, "conflicts", "json"))

    rows = list(csv.DictReader(io.StringIO(reports.render(data, "status", "csv"))))
    late = [r for r in rows if r["section"] == "late"]
    assert [(r["poam_id"], r["code_or_state"], r["local"], r["remote"]) for r in late] == [
        ("V-HIGH", "210 d over", "2026-09-02", "2026-02-04"),
        ("V-MOD", "10 d over", "2026-04-15", "2026-04-05"),
    ]

    html = reports.render(data, "status", "html")
    assert "Scheduled later than the FedRAMP rule allows (2)" in html
    assert "<b>2</b>Later than the rule" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "<td>210 d</td>" not in html and '<td class="due_soon">210 d</td>' in html


def test_an_empty_list_says_so(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        with store.begin() as tx:
            tx.save(
                make_item("V-OK", scheduled_completion_date=date(2026, 2, 1)),
                source="cli",
                actor="ann",
            )
        data = reports.collect(store, today=TODAY)
    assert data.late == ()
    html = reports.render(data, "status", "html")
    assert "Scheduled later than the FedRAMP rule allows (0)" in html
    assert "None: every open item is scheduled within it." in html


def test_report_status_from_the_cli_lists_them(tmp_path: Path, sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        _fill(store)
    done = run("--db", sqlite_url, "report", "status", "--format", "json", "-o", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["poam_id"] for r in json.loads(done.stdout)["late"]] == ["V-HIGH", "V-MOD"]
