"""The sync engine end to end: real connectors over HTTP(S) against both simulators, on SQLite
and PostgreSQL. Each test tells one story a POA&M office lives through."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from poam_sync.model import Note, with_fields
from tests.sync.conftest import World, poam

pytestmark = pytest.mark.filterwarnings(
    # pysnc and jira leave pooled sockets to the garbage collector
    "ignore::ResourceWarning"
)


def test_initial_sync_creates_everything_once_and_the_next_cycle_is_idle(world: World) -> None:
    world.add(poam(1), poam(2), poam(3, status="completed"))
    engine = world.engine()
    first = engine.run_cycle()
    assert first.ok, first.errors
    assert dict(first.created) == {"jira": 2, "servicenow": 2}  # closed items are not created
    second = engine.run_cycle()
    assert second.ok and not second.created and not second.updated_remote
    assert second.updated_local == 0 and second.conflicts == 0
    third = engine.run_cycle()
    assert not third.created and not third.updated_remote and third.updated_local == 0
    assert (
        len(
            world.jira.sim.search(
                "project = POAM", world.jira.sim.user_by_email("sync@example.com")
            )
        )
        >= 2
    )
    assert world.store.verify_log().ok


def test_an_engineer_closing_in_jira_reaches_servicenow_in_the_same_cycle(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    world.jira.sim.human_transition(world.jira_key(item), "Done", user_email="alice@example.com")
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert world.store.item("acme", "V-1").status.value == "completed"
    record = world.snow.sim.record("sn_grc_issue", world.snow_id(item))
    assert (
        record["state"]
        == world.snow.sim.records(
            "sys_choice", "name=sn_grc_issue^element=state^label=Closed Complete"
        )[0]["value"]
    )
    rows = [r for r in world.store.log() if r.field == "status"]
    assert rows[-1].source == "jira" and rows[-1].new_value == "completed"
    assert rows[-1].actor and "alice" in rows[-1].actor
    # and nothing echoes back
    idle = engine.run_cycle()
    assert not idle.updated_remote and idle.updated_local == 0


def test_a_due_date_moved_in_servicenow_is_an_extension_not_a_new_commitment(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    world.snow.sim.human_update("sn_grc_issue", world.snow_id(item), {"due_date": "2027-02-15"})
    report = engine.run_cycle()
    assert report.ok, report.errors
    got = world.store.item("acme", "V-1")
    assert got.due_date == date(2027, 2, 15)
    assert got.scheduled_completion_date == date(2026, 12, 31)  # never silently moved
    assert got.milestone_changes[-1].kind == "extension"
    assert "2026-12-31" in got.milestone_changes[-1].text
    assert world.jira.sim.issue(world.jira_key(item))["fields"]["duedate"] == "2027-02-15"


def test_both_sides_changing_a_field_is_a_conflict_and_nothing_is_overwritten(
    world: World,
) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    key = world.jira_key(item)
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "ISSO title"}))
    world.jira.sim.human_edit(key, "summary", "Engineer title", user_email="bob@example.com")
    report = engine.run_cycle()
    assert report.conflicts == 1
    assert world.store.item("acme", "V-1").title == "ISSO title"
    assert world.jira.sim.issue(key)["fields"]["summary"] == "Engineer title"
    with world.store.begin() as tx:
        (conflict,) = tx.conflicts(state="open")
    assert (conflict.field, conflict.local, conflict.remote) == (
        "title",
        "ISSO title",
        "Engineer title",
    )
    # still open, still untouched, on the next cycle
    again = engine.run_cycle()
    assert world.jira.sim.issue(key)["fields"]["summary"] == "Engineer title"
    assert again.conflicts == 0
    with world.store.begin() as tx:
        assert len(tx.conflicts(state="open")) == 1


def test_a_new_record_in_servicenow_becomes_an_item_and_reaches_jira(world: World) -> None:
    engine = world.engine()
    engine.run_cycle()
    world.snow.sim.human_create(
        "sn_grc_issue",
        {"short_description": "Found during the annual assessment", "description": "AC-2 gaps"},
    )
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.imported == 1 and report.created.get("jira") == 1
    (item,) = world.store.items("acme")
    assert item.title == "Found during the annual assessment"
    issue = world.jira.sim.issue(world.jira_key(item))
    assert issue["fields"]["summary"] == "Found during the annual assessment"


def test_comments_travel_both_ways_and_never_echo(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    world.jira.sim.human_comment(
        world.jira_key(item), "Patched web-01.", user_email="alice@example.com"
    )
    assert engine.run_cycle().ok
    notes = world.store.item("acme", "V-1").notes
    assert [n.body for n in notes] == ["Patched web-01."]
    journal = world.snow.sim.journal("sn_grc_issue", world.snow_id(item))
    assert any("Patched web-01." in j["value"] for j in journal)
    engine.run_cycle()
    engine.run_cycle()
    assert len(world.snow.sim.journal("sn_grc_issue", world.snow_id(item))) == len(journal)
    comments = world.jira.sim.issue(world.jira_key(item))["fields"]["comment"]["comments"]
    assert len(comments) == 1
    # a local note reaches both
    current = world.store.item("acme", "V-1")
    world.add(current.model_copy(update={"notes": (*current.notes, Note(body="ISSO: verified"))}))
    engine.run_cycle()
    comments = world.jira.sim.issue(world.jira_key(item))["fields"]["comment"]["comments"]
    assert len(comments) == 2


def test_an_unknown_owner_is_reported_and_the_remote_owner_kept(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    current = world.store.item("acme", "V-1")
    world.add(with_fields(current, {"owner": {"email": "ghost@nowhere.invalid"}}))
    report = engine.run_cycle()
    assert report.problems >= 1
    with world.store.begin() as tx:
        codes = {(p.connector, p.code) for p in tx.problems()}
    assert ("jira", "unknown_user") in codes
    assignee = world.jira.sim.issue(world.jira_key(item))["fields"]["assignee"]
    assert assignee is not None and assignee["emailAddress"] == "alice@example.com"


def test_a_vanished_remote_record_breaks_the_link_and_keeps_the_item(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    world.jira.sim.delete_issue(world.jira_key(item))
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "Changed here"}))
    engine.run_cycle()
    with world.store.begin() as tx:
        link = tx.link(item.uuid, "jira")
        assert link is not None and link.state == "broken"
        assert any(p.code == "broken_link" for p in tx.problems())
    assert world.store.item("acme", "V-1").title == "Changed here"
    report = engine.run_cycle()
    assert not report.created.get("jira")  # never silently recreated


def test_a_connector_that_fails_to_pull_is_left_alone_and_keeps_its_watermark(
    world: World,
) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    with world.store.begin() as tx:
        mark = tx.watermark("jira")
    world.jira.sim.control.add_fault(503, count=1000)
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "Only ServiceNow hears"}))
    report = engine.run_cycle()
    assert "jira" in report.failed_connectors
    assert report.updated_remote.get("servicenow") == 1
    with world.store.begin() as tx:
        assert tx.watermark("jira") == mark
    world.jira.sim.control.reset()
    later = engine.run_cycle()
    assert later.updated_remote.get("jira") == 1


def test_mass_change_guard_stops_the_writes_unless_forced(world: World) -> None:
    world.add(*(poam(n) for n in range(1, 5)))
    engine = world.engine(guards={"max_change_share": 0.5, "min_items": 2})
    engine.run_cycle()
    for n in range(1, 5):
        world.add(with_fields(world.store.item("acme", f"V-{n}"), {"title": f"Bulk {n}"}))
    stopped = engine.run_cycle()
    assert not stopped.ok and not stopped.updated_remote
    assert "would change 4 of 4 items linked to jira" in stopped.guarded["jira"]
    assert engine.run_cycle(force=True).updated_remote.get("jira") == 4


def test_a_dry_run_plans_with_reasons_and_writes_nothing(world: World) -> None:
    world.add(poam(1))
    engine = world.engine()
    report = engine.run_cycle(dry_run=True)
    whys = [a.why for _, a in report.plan.actions()] if report.plan else []
    assert any("not linked yet" in w for w in whys)
    with world.store.begin() as tx:
        assert tx.links("jira") == []
    assert (
        world.jira.sim.search("project = POAM", world.jira.sim.user_by_email("sync@example.com"))
        == []
    )


def test_watermarks_move_forward_even_when_only_old_records_come_back(world: World) -> None:
    world.add(poam(1))
    engine = world.engine()
    engine.run_cycle()
    before_second = datetime.now(UTC)
    engine.run_cycle()  # reads our own creates back (echoes): only old records
    with world.store.read() as tx:
        for name in ("jira", "servicenow"):
            mark = tx.watermark(name)
            assert mark is not None and mark >= before_second - engine.clock_skew, name


def test_a_blocked_status_change_is_reported_once_and_not_retried_until_the_value_changes(
    world: World,
) -> None:
    item = poam(1)
    world.add(item)
    world.engine().run_cycle()
    key = world.jira_key(item)
    world.jira.sim.block_status("Done")
    world.add(with_fields(world.store.item("acme", "V-1"), {"status": "completed"}))
    blocked = world.engine().run_cycle()
    assert blocked.problems == 1  # Jira refused; ServiceNow took it
    with world.store.read() as tx:
        (problem,) = [p for p in tx.problems() if p.code == "transition_blocked"]
    assert problem.connector == "jira" and problem.field == "status"
    # another process, later: the same value is not pushed to Jira again, other fields are
    tried = transitions_posted(world)
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "Still synced"}))
    again = world.engine().run_cycle()
    assert again.problems == 0 and again.updated_remote.get("jira") == 1
    assert world.jira.sim.issue(key)["fields"]["summary"] == "Still synced"
    assert transitions_posted(world) == tried
    # a new canonical value is worth trying again
    world.add(with_fields(world.store.item("acme", "V-1"), {"status": "remediating"}))
    moved = world.engine().run_cycle()
    assert moved.updated_remote.get("jira") == 1
    assert world.jira.sim.issue(key)["fields"]["status"]["name"] != "Done"


def transitions_posted(world: World) -> int:
    calls = world.jira.sim.control.calls
    return sum(n for name, n in calls.items() if name.startswith("POST") and "transitions" in name)
