"""The Jira simulator behaves as real sites do where they surprise clients: a lagging search
index, Data Center's search without issue properties, the JQL people write, e-mail visibility,
paged changelogs and comments, and custom fields that share a name (over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from poam_sync.simulators.jira import (
    DEFAULT_EMAIL,
    DEFAULT_PAT,
    DEFAULT_TOKEN,
    RunningJira,
    start_jira_simulator,
)


def _session(running: RunningJira) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    if running.sim.cloud:
        s.auth = (DEFAULT_EMAIL, DEFAULT_TOKEN)
    else:
        s.headers["Authorization"] = f"Bearer {DEFAULT_PAT}"
    s.headers["Content-Type"] = "application/json"
    return s


class Site:
    """A simulator and a raw session to it (the shapes are what these tests look at)."""

    def __init__(self, running: RunningJira) -> None:
        self.running = running
        self.sim = running.sim
        self.http = _session(running)
        self.api = f"{running.url}/rest/api/2"

    def post(self, summary: str = "Weakness", **fields: Any) -> requests.Response:
        """``POST /issue`` of a Task with these fields, answered as it is."""
        body = {
            "fields": {"project": {"key": "POAM"}, "issuetype": {"name": "Task"}}
            | {"summary": summary}
            | fields
        }
        return self.http.post(f"{self.api}/issue", json=body)

    def create(self, summary: str = "Weakness", **fields: Any) -> dict[str, Any]:
        r = self.post(summary, **fields)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    def search(self, jql: str, **extra: Any) -> requests.Response:
        if self.sim.cloud:
            return self.http.post(f"{self.api}/search/jql", json={"jql": jql, **extra})
        return self.http.post(f"{self.api}/search", json={"jql": jql, **extra})

    def keys(self, jql: str, **extra: Any) -> list[str]:
        r = self.search(jql, fields=["summary"], **extra)
        assert r.status_code == 200, r.text
        return [str(i["key"]) for i in r.json()["issues"]]


@pytest.fixture
def site(mode: str) -> Iterator[Site]:
    with start_jira_simulator(mode=mode) as running:
        yield Site(running)


@pytest.fixture
def lagging(mode: str) -> Iterator[Site]:
    with start_jira_simulator(mode=mode, search_lag=30) as running:
        yield Site(running)


# -- search lag -----------------------------------------------------------------------------


def test_a_new_issue_reaches_search_only_after_the_lag(lagging: Site) -> None:
    created = lagging.create("Fresh")
    assert lagging.keys("project = POAM") == []
    lagging.sim.advance_clock(31)
    assert lagging.keys("project = POAM") == [created["key"]]


def test_reading_by_key_is_consistent_at_once(lagging: Site) -> None:
    created = lagging.create("Fresh")
    r = lagging.http.get(f"{lagging.api}/issue/{created['key']}")
    assert r.status_code == 200 and r.json()["fields"]["summary"] == "Fresh"


def test_a_lagging_search_shows_the_previous_values_of_an_edited_issue(lagging: Site) -> None:
    created = lagging.create("Before")
    lagging.sim.advance_clock(31)
    r = lagging.http.put(
        f"{lagging.api}/issue/{created['key']}", json={"fields": {"summary": "After"}}
    )
    assert r.status_code == 204
    assert lagging.keys('summary ~ "Before"') == [created["key"]]
    assert lagging.keys('summary ~ "After"') == []
    lagging.sim.advance_clock(31)
    assert lagging.keys('summary ~ "After"') == [created["key"]]


def test_a_deleted_issue_lingers_in_search_until_the_lag_passes(lagging: Site) -> None:
    created = lagging.create("Doomed")
    lagging.sim.advance_clock(31)
    assert lagging.http.delete(f"{lagging.api}/issue/{created['key']}").status_code == 204
    assert lagging.keys("project = POAM") == [created["key"]]
    lagging.sim.advance_clock(31)
    assert lagging.keys("project = POAM") == []


def test_reconcile_issues_makes_the_named_issues_consistent_on_cloud() -> None:
    with start_jira_simulator(mode="cloud", search_lag=30) as running:
        site = Site(running)
        first, second = site.create("One"), site.create("Two")
        found = site.keys("project = POAM", reconcileIssues=[int(first["id"])])
        assert found == [first["key"]]  # only the reconciled one; the other still lags
        r = site.http.get(
            f"{site.api}/search/jql",
            params={"jql": "project = POAM", "fields": "summary", "reconcileIssues": second["id"]},
        )
        assert [i["key"] for i in r.json()["issues"]] == [second["key"]]


def test_reconcile_issues_takes_at_most_fifty_ids() -> None:
    with start_jira_simulator(mode="cloud") as running:
        r = Site(running).search("project = POAM", reconcileIssues=list(range(1, 52)))
        assert r.status_code == 400 and r.json()["errorMessages"]


def test_without_a_lag_search_sees_writes_at_once(site: Site) -> None:
    created = site.create("Now")
    assert site.keys("project = POAM") == [created["key"]]


# -- Data Center search and issue properties -------------------------------------------------


def test_data_center_search_returns_no_issue_properties() -> None:
    with start_jira_simulator(mode="datacenter") as running:
        site = Site(running)
        r = site.http.post(
            f"{site.api}/issue",
            json={
                "fields": {
                    "project": {"key": "POAM"},
                    "issuetype": {"name": "Task"},
                    "summary": "Stamped",
                },
                "properties": [{"key": "poam-sync", "value": {"poam_id": "V-1"}}],
            },
        )
        key = r.json()["key"]
        found = site.search("project = POAM", properties=["poam-sync"]).json()["issues"]
        assert "properties" not in found[0]
        prop = site.http.get(f"{site.api}/issue/{key}/properties/poam-sync").json()
        assert prop["value"] == {"poam_id": "V-1"}
