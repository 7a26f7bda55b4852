"""ServiceNow milestone parents are left out of the cycle after our writes only when neither
they nor their milestone records moved: a parent's version carries a tag of its children's
update counts (connectors/servicenow/versions.py), so a person's edit to a milestone record, or
a milestone record a person adds, still has its parent read."""

from __future__ import annotations

import pytest

from poam_sync.model import Milestone, PoamItem
from tests.sync.conftest import World, poam

pytestmark = pytest.mark.filterwarnings(
    # pysnc and jira leave pooled sockets to the garbage collector
    "ignore::ResourceWarning"
)

CHILDREN = "sn_irm_cont_auth_milestone_task"


def _with_milestones(n: int) -> PoamItem:
    return poam(n).model_copy(
        update={
            "milestones": (
                Milestone(id="1", description=f"Patch {n}"),
                Milestone(id="2", description=f"Verify {n}"),
            )
        }
    )


def _children(world: World, item: PoamItem) -> list[dict[str, str]]:
    return world.snow.sim.records(CHILDREN, f"parent={world.snow_id(item)}")


def test_parents_of_our_milestone_records_are_left_out_after_the_initial_sync(
    world: World,
) -> None:
    items = [_with_milestones(n) for n in range(1, 4)]
    world.add(*items)
    engine = world.engine()
    first = engine.run_cycle()
    assert first.ok, first.errors
    world.snow.sim.control.calls.clear()
    after = engine.run_cycle()
    assert after.ok, after.errors
    assert dict(after.pulled) == {"jira": 0, "servicenow": 0}
    assert after.plan is not None and not any(p.actions for p in after.plan.items)
    calls = dict(world.snow.sim.control.calls)
    # the listings only: the records and the milestone records changed in the window
    assert calls.get(f"GET /api/now/table/{CHILDREN}") == 1
    assert calls.get("GET /api/now/table/sn_grc_issue") == 1
    assert not calls.get("GET /api/now/table/sys_journal_field")


def test_a_persons_edit_to_a_milestone_record_has_its_parent_read(world: World) -> None:
    items = [_with_milestones(n) for n in range(1, 3)]
    world.add(*items)
    engine = world.engine()
    assert engine.run_cycle().ok
    child = next(c for c in _children(world, items[0]) if c["correlation_id"] == "2")
    world.snow.sim.human_update(CHILDREN, child["sys_id"], {"short_description": "Verify by Bob"})
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.pulled["servicenow"] == 1  # the parent of the edited record, not the other
    got = world.store.item("acme", "V-1")
    assert [m.description for m in got.milestones] == ["Patch 1", "Verify by Bob"]
    # read whole, its version (with the children's tag) is remembered: left out again
    quiet = engine.run_cycle()
    assert quiet.ok, quiet.errors
    assert quiet.pulled["servicenow"] == 0


def test_a_milestone_record_a_person_adds_has_its_parent_read(world: World) -> None:
    item = _with_milestones(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    world.snow.sim.human_create(
        CHILDREN,
        {
            "parent": world.snow_id(item),
            "correlation_id": "3",
            "short_description": "Retest, added in ServiceNow",
            "state": "1",
        },
    )
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.pulled["servicenow"] == 1


def test_an_edit_to_the_parent_alone_is_read(world: World) -> None:
    item = _with_milestones(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    world.snow.sim.human_update(
        "sn_grc_issue", world.snow_id(item), {"short_description": "Renamed by Bob"}
    )
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.pulled["servicenow"] == 1
    assert world.store.item("acme", "V-1").title == "Renamed by Bob"


def test_a_version_without_the_childrens_tag_has_the_parent_read_as_before(
    world: World,
) -> None:
    items = [_with_milestones(n) for n in range(1, 3)]
    world.add(*items)
    engine = world.engine()
    assert engine.run_cycle().ok
    with world.store.begin() as tx:  # as a link remembered before versions carried the tag
        bare = {
            link.item_uuid: (link.remote_version or "").partition("+")[0]
            for link in tx.links("servicenow")
        }
        tx.set_link_versions("servicenow", bare)
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.pulled["servicenow"] == 2  # their milestone records are in the window
    assert not report.updated_remote and report.updated_local == 0
