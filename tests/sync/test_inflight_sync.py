"""The executor with requests in flight: both hosts busy at once within their bound, the same
records and calls, pushes concurrent and committed one item at a time."""

from __future__ import annotations

from poam_sync.connectors._inflight import limiter_for
from poam_sync.model import Milestone, with_fields
from tests.sync.conftest import World, poam


def _with_milestones(n: int) -> object:
    return poam(n).model_copy(
        update={
            "milestones": (
                Milestone(id="1", description=f"Patch {n}"),
                Milestone(id="2", description=f"Verify {n}"),
            )
        }
    )


def test_an_initial_sync_in_flight_stays_within_the_bound_and_creates_each_record_once(
    world: World,
) -> None:
    items = [_with_milestones(n) for n in range(1, 121)]
    world.add(*items)  # type: ignore[arg-type]
    engine = world.engine(sync={"max_in_flight": 3})
    jira = limiter_for(world.jira.url, 3)  # the live limiters of the engine's sessions
    snow = limiter_for(world.snow.url, 3)
    jira.peak = snow.peak = 0
    for sim in (world.jira.sim, world.snow.sim):
        sim.control.set_latency(20)  # as a real site answers: long enough for calls to overlap
    report = engine.run_cycle()
    assert report.errors == []
    assert dict(report.created) == {"jira": 120, "servicenow": 120}
    assert 1 <= jira.peak <= 3 and 1 <= snow.peak <= 3
    assert jira.peak + snow.peak > 2  # more than one request under way at some moment
    calls = dict(world.jira.sim.control.calls)
    assert calls["POST /rest/api/2/issue/bulk"] == 3 + 5  # 120 issues; 240 sub-tasks
    for item in items[:5]:
        key = world.jira_key(item)  # type: ignore[arg-type]
        assert len(world.jira.sim.issue(key)["fields"]["subtasks"]) == 2
        children = world.snow.sim.records(
            "sn_irm_cont_auth_milestone_task",
            f"parent={world.snow_id(item)}",  # type: ignore[arg-type]
        )
        assert len(children) == 2
    again = engine.run_cycle()
    assert again.errors == [] and dict(again.created) == {}


def test_pushes_in_flight_each_land_once_and_commit_their_baselines(world: World) -> None:
    items = [poam(n) for n in range(1, 31)]
    world.add(*items)
    engine = world.engine()
    engine.run_cycle()
    edited = [
        with_fields(world.store.item("acme", i.poam_id), {"title": f"New title {n}"})
        for n, i in enumerate(items)
    ]
    world.add(*edited)
    report = engine.run_cycle()
    assert report.errors == []
    assert dict(report.updated_remote) == {"jira": 30, "servicenow": 30}
    for n, item in enumerate(items):
        issue = world.jira.sim.issue(world.jira_key(item))
        assert issue["fields"]["summary"] == f"New title {n}"
    quiet = engine.run_cycle()
    assert dict(quiet.updated_remote) == {}  # every baseline moved with its push
