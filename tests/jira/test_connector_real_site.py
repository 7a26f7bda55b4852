"""The Jira connector on real sites: a search index that lags behind writes, Data Center's
search without issue properties, hidden and masked e-mails, per-field actors from the
changelog, long comment threads, values the mapping does not cover, duplicate field names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.simulators.jira import RunningJira, start_jira_simulator
from poam_sync.testing import new_stamp
from tests.jira.conftest import FAST_RETRY, settings_for
from tests.jira.test_sim_real_site import Site

LAG = 30.0

Make = Callable[..., JiraConnector]


@pytest.fixture
def lagging(mode: str) -> Iterator[RunningJira]:
    with start_jira_simulator(mode=mode, search_lag=LAG) as running:
        yield running


def _on_site_clock(
    running: RunningJira, mapping: JiraMapping, made: list[JiraConnector], **settings: Any
) -> JiraConnector:
    """A connector whose clock is the simulator's: its waits move that clock, never sleep."""
    sim = running.sim
    c = JiraConnector(
        settings_for(running, **settings),
        mapping,
        retry=FAST_RETRY,
        clock=lambda: sim.now_ms() / 1000,
        sleep=sim.advance_clock,
    )
    made.append(c)
    return c


@pytest.fixture
def make(lagging: RunningJira) -> Iterator[Make]:
    made: list[JiraConnector] = []

    def build(mapping: JiraMapping, **settings: Any) -> JiraConnector:
        return _on_site_clock(lagging, mapping, made, **settings)

    yield build
    for c in made:
        c.close()


def _values(**over: Any) -> dict[str, Any]:
    return {"title": "Outdated OpenSSL", "owner": "alice@example.com", "status": "open"} | over


# -- the lagging search index ---------------------------------------------------------------


def test_a_new_issue_reads_back_at_once_though_search_lags(
    lagging: RunningJira, mapping: JiraMapping, make: Make
) -> None:
    c = make(mapping)  # no lag configured: Cloud reconciles, a miss is read by key
    stamp = new_stamp()
    result = c.create(stamp, _values(status="remediating"))
    assert result.record.stamp == stamp
    assert result.record.fields["status"] == "remediating"


def test_finding_a_stamp_waits_out_the_configured_lag_once_per_connector(
    lagging: RunningJira, mapping: JiraMapping, make: Make
) -> None:
    first = make(mapping, search_lag_seconds=LAG)
    stamp = new_stamp()
    created = first.create(stamp, _values()).record  # then the process dies, unlinked
    before = lagging.sim.now_ms()
    rerun = make(mapping, search_lag_seconds=LAG)
    rerun.prepare()
    found = rerun.find_by_stamp(stamp)
    assert found is not None and found.remote_id == created.remote_id
    assert lagging.sim.now_ms() - before >= LAG * 1000  # it waited (on the site's clock)


def test_without_the_lag_setting_a_lagging_search_misses_the_stamp(
    lagging: RunningJira, mapping: JiraMapping, make: Make
) -> None:
    """Why the setting exists: a search right after the create cannot see it."""
    stamp = new_stamp()
    make(mapping).create(stamp, _values())
    assert make(mapping).find_by_stamp(stamp) is None


def test_a_pull_right_after_an_update_reads_the_new_values(
    lagging: RunningJira, mapping: JiraMapping, make: Make
) -> None:
    c = make(mapping, search_lag_seconds=LAG)
    rec = c.create(new_stamp(), _values(title="Before")).record
    lagging.sim.advance_clock(LAG + 1)
    c.update(rec.remote_id, {"title": "After"})
    pulled = {r.remote_id: r for r in c.pull(None)}
    assert pulled[rec.remote_id].fields["title"] == "After"


def test_a_pull_given_our_version_leaves_our_write_out_and_takes_a_later_edit(
    lagging: RunningJira, mapping: JiraMapping, make: Make
) -> None:
    """Our create is an echo (left out, though the lagging index lists it late or not at
    all); a person's edit after it has a new ``updated`` and is read whole once indexed."""
    c = make(mapping, search_lag_seconds=LAG)
    rec = c.create(new_stamp(), _values(title="Ours")).record
    since = rec.updated_at - timedelta(minutes=5)
    known = {rec.remote_id: rec.version}
    assert list(c.pull(since, known)) == []
    lagging.sim.advance_clock(LAG + 1)
    assert list(c.pull(since, known)) == []  # indexed now, at the version we hold
    lagging.sim.human_edit(rec.key, "summary", "Theirs")
    lagging.sim.advance_clock(LAG + 1)
    (got,) = c.pull(since, known)
    assert got.remote_id == rec.remote_id and got.fields["title"] == "Theirs"
    assert got.version != rec.version


def test_the_stamp_of_each_candidate_is_read_through_the_property_api_on_data_center(
    mapping: JiraMapping,
) -> None:
    with start_jira_simulator(mode="datacenter") as running:
        made: list[JiraConnector] = []
        c = _on_site_clock(running, mapping, made)
        stamp, other = new_stamp(), new_stamp()
        mine = c.create(stamp, _values()).record
        c.create(other, _values())
        running.sim.control.reset()
        found = c.find_by_stamp(stamp)
        assert found is not None and found.remote_id == mine.remote_id
        calls = running.sim.control.calls
        assert any("/properties/" in endpoint for endpoint in calls)
        assert all(r.stamp is not None for r in c.pull(None))
        c.close()


def test_a_pull_survives_an_issue_deleted_while_the_index_still_shows_it(
    lagging: RunningJira, mapping: JiraMapping, make: Make
) -> None:
    """The lagging index still lists a deleted issue: Jira refuses ``parent in (...)`` naming
    it, so the sub-task lookup drops the key and asks again; on Data Center its stamp read
    answers 404, so it is left out of the pull."""
    c = make(mapping, search_lag_seconds=LAG)
    milestone = {"id": "1", "description": "Patch", "due_date": None, "status": "open"}
    kept = c.create(new_stamp(), _values(milestones=[milestone])).record
    doomed = c.create(new_stamp(), _values(milestones=[milestone])).record
    lagging.sim.advance_clock(LAG + 1)
    lagging.sim.delete_issue(doomed.key)
    pulled = {r.key: r for r in c.pull(None)}  # the index still lists the deleted issue
    assert [m["description"] for m in pulled[kept.key].fields["milestones"]] == ["Patch"]


def test_jql_naming_a_deleted_issue_is_refused_as_jira_refuses_it(mode: str) -> None:
    with start_jira_simulator(mode=mode) as running:
        site = Site(running)
        key = site.create()["key"]
        r = site.search(f"issuekey in ({key}, POAM-99, POAM-98)")
        assert r.status_code == 400
        assert r.json()["errorMessages"] == [
            "An issue with key 'POAM-99' does not exist for field 'issuekey'.",
            "An issue with key 'POAM-98' does not exist for field 'issuekey'.",
        ]
        assert site.search("parent = POAM-99").status_code == 400
        assert site.keys(f"issuekey = {key}") == [key]
