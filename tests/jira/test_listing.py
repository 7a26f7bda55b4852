"""A pull with versions lists a big window in key ranges at once (connectors/jira/listing.py):
every issue is found, including one changed in the middle of a range and issues created past
the last key the links know; a stale bound (a deleted issue) loses no range; an idle pull is
one search call."""

from __future__ import annotations

from typing import Any

from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.listing import _bounds
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.simulators.jira import RunningJira
from poam_sync.testing import base_fields, new_stamp
from tests.jira.conftest import FAST_RETRY, JiraHarness, settings_for


def _create(jira_sim: RunningJira, connector: JiraConnector, n: int) -> list[Any]:
    h = JiraHarness(jira_sim, connector)
    results = connector.create_many([(new_stamp(), base_fields(h)) for _ in range(n)])
    assert all(not isinstance(r, Exception) for r in results), results
    return [r.record for r in results]  # type: ignore[union-attr]


def _searches(jira_sim: RunningJira) -> int:
    calls = dict(jira_sim.sim.control.calls)
    return sum(n for endpoint, n in calls.items() if "/search" in endpoint)


def _hold(connector: JiraConnector, records: list[Any]) -> dict[str, str]:
    keys = {r.remote_id: r.key for r in records}
    connector.hold_keys(lambda: keys)
    return {r.remote_id: r.version for r in records}


def test_a_big_window_is_listed_in_ranges_and_every_moved_issue_is_found(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    records = _create(jira_sim, connector, 450)
    known = _hold(connector, records)
    middle = records[300]  # inside a range, not at a bound
    jira_sim.sim.human_edit(middle.key, "summary", "Edited by a person")
    new = _create(jira_sim, connector, 5)  # past the last key the links know
    jira_sim.sim.control.reset()
    pulled = {r.remote_id: r for r in connector.pull(None, known)}
    assert set(pulled) == {middle.remote_id, *(r.remote_id for r in new)}
    assert pulled[middle.remote_id].fields["title"] == "Edited by a person"
    # the first page, then (Cloud) the bounds looked up and the ranges, or (Data Center)
    # the pages at the offsets the first page's total leaves; and the moved issues read whole
    assert _searches(jira_sim) >= 4


def test_a_deleted_issue_bounds_no_range(cloud_sim: RunningJira, mapping: JiraMapping) -> None:
    # Cloud only: Data Center's pages are asked by offset, with no bounds
    jira_sim = cloud_sim
    connector = JiraConnector(settings_for(cloud_sim), mapping, retry=FAST_RETRY)
    records = _create(jira_sim, connector, 450)
    known = _hold(connector, records)
    keys = [r.key for r in records]
    wanted = _bounds(connector.client, keys, "POAM", 100, 4)
    assert len(wanted) == 3
    gone = wanted[1]
    jira_sim.sim.delete_issue(gone)
    assert gone not in _bounds(connector.client, keys, "POAM", 100, 4)
    after_gone = next(r for r in records if int(r.key.split("-")[1]) > int(gone.split("-")[1]))
    jira_sim.sim.human_edit(after_gone.key, "summary", "Edited past the deleted key")
    pulled = {r.remote_id for r in connector.pull(None, known)}
    connector.close()
    assert pulled == {after_gone.remote_id}


def test_an_idle_pull_is_one_search_call(jira_sim: RunningJira, connector: JiraConnector) -> None:
    records = _create(jira_sim, connector, 40)
    known = _hold(connector, records)
    jira_sim.sim.control.reset()
    assert list(connector.pull(None, known)) == []
    assert _searches(jira_sim) == 1
