"""Real sites, real data: what one record holds never halts a cycle, a remote value the mapping
does not know is never read as empty, and a field the POA&M office owns is put back.

End to end over both simulators, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
import structlog

import poam_sync.sync.apply
import poam_sync.sync.intake
import poam_sync.sync.plan
from poam_sync.config import parse_config
from poam_sync.connectors.base import FieldProblem, RemoteRecord
from poam_sync.daemon import run_daemon
from poam_sync.model import PoamItem, with_fields
from poam_sync.store import ProblemRow
from poam_sync.sync.engine import Engine
from tests.sync.conftest import World, config_dict, poam

pytestmark = pytest.mark.filterwarnings(
    # pysnc and jira leave pooled sockets to the garbage collector
    "ignore::ResourceWarning"
)


def _problems(world: World, **match: Any) -> list[ProblemRow]:
    with world.store.read() as tx:
        rows = tx.problems()
    return [p for p in rows if all(getattr(p, k) == v for k, v in match.items())]


def _watermark(world: World, name: str) -> datetime | None:
    with world.store.read() as tx:
        return tx.watermark(name)


def _synced(world: World, *items: PoamItem) -> Engine:
    world.add(*items)
    engine = world.engine()
    first = engine.run_cycle()
    assert first.ok, first.errors
    return engine


# -- an unknown remote value is never read as "empty" -----------------------------------------


def test_an_unmapped_jira_status_keeps_the_status_is_reported_once_and_clears_when_mapped(
    world: World,
) -> None:
    item = poam(1)
    engine = _synced(world, item)
    key, snow_id = world.jira_key(item), world.snow_id(item)
    snow_before = world.snow.sim.record("sn_grc_issue", snow_id)
    mark = _watermark(world, "jira")

    world.jira.sim.human_transition(key, "Blocked", user_email="bob@example.com")
    report = engine.run_cycle()

    assert report.ok, report.errors  # the cycle completes
    assert world.store.item("acme", "V-1").status.value == "open"  # never read as empty
    snow_after = world.snow.sim.record("sn_grc_issue", snow_id)
    assert snow_after["state"] == snow_before["state"]  # nothing pushed for the field
    assert snow_after["sys_mod_count"] == snow_before["sys_mod_count"]
    (unreadable,) = report.unreadable
    assert (unreadable.poam_id, unreadable.field, unreadable.remote_key) == ("V-1", "status", key)
    assert unreadable.hint and "read_statuses" in unreadable.hint
    (problem,) = _problems(world, code="unknown_value")
    assert (problem.kind, problem.connector, problem.field, problem.remote_key) == (
        "read",
        "jira",
        "status",
        key,
    )
    assert "Blocked" in problem.message and problem.hint == unreadable.hint
    new_mark = _watermark(world, "jira")
    assert mark is not None and new_mark is not None and new_mark > mark

    again = engine.run_cycle()  # still Blocked: reported once, not again
    assert again.ok and not again.unreadable
    assert len(_problems(world, code="unknown_value")) == 1

    world.jira.sim.human_transition(key, "In Progress", user_email="bob@example.com")
    moved = engine.run_cycle()
    assert moved.ok, moved.errors
    assert world.store.item("acme", "V-1").status.value != "open"
    assert _problems(world, code="unknown_value") == []  # cleared once the field reads fine
    assert world.snow.sim.record("sn_grc_issue", snow_id)["state"] != snow_before["state"]


def test_an_unmapped_priority_keeps_the_original_risk_rating(world: World) -> None:
    item = poam(1)
    engine = _synced(world, item)
    key, snow_id = world.jira_key(item), world.snow_id(item)
    snow_before = world.snow.sim.record("sn_grc_issue", snow_id)

    world.jira.sim.human_edit(key, "priority", {"name": "Lowest"}, user_email="bob@example.com")
    report = engine.run_cycle()

    assert report.ok, report.errors
    assert world.store.item("acme", "V-1").original_risk is not None
    assert world.store.item("acme", "V-1").original_risk.value == "high"  # type: ignore[union-attr]
    assert world.snow.sim.record("sn_grc_issue", snow_id)["priority"] == snow_before["priority"]
    (problem,) = _problems(world, code="unknown_value")
    assert problem.field == "original_risk" and "Lowest" in problem.message
    assert problem.hint and "read_priorities" in problem.hint
    assert not [r for r in world.store.log() if r.field == "original_risk" and r.source == "jira"]


def test_an_imported_record_with_an_unknown_value_keeps_the_default_and_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new ServiceNow record whose priority the mapping does not know (as the connector
    reports it): the item is made with no Original Risk Rating (the canonical default, not a
    guess), Jira gets the default priority, and the problem is reported on the new item."""
    engine = world.engine()
    engine.run_cycle()
    snow = engine.targets["servicenow"].connector
    pull = snow.pull
    unknown = FieldProblem(
        "original_risk",
        "unknown_value",
        "ServiceNow priority '5 - Planning' is not in the mapping",
        hint="add `5 - Planning: <risk>` under read_risks: in mappings/servicenow.yaml",
    )

    def unreadable_priority(
        since: datetime | None, known: Mapping[str, str] | None = None
    ) -> Iterator[RemoteRecord]:
        for r in pull(since, known):
            fields = {k: v for k, v in r.fields.items() if k != "original_risk"}
            yield replace(r, fields=fields, problems=(unknown,))

    monkeypatch.setattr(snow, "pull", unreadable_priority)
    world.snow.sim.human_create("sn_grc_issue", {"short_description": "Found in the assessment"})
    report = engine.run_cycle()

    assert report.imported == 1 and report.ok, report.errors
    with world.store.read() as tx:
        (new,) = tx.all_items()
    assert new.original_risk is None
    (problem,) = _problems(world, item_uuid=new.uuid, kind="read")
    assert (problem.field, problem.code, problem.hint) == (
        "original_risk",
        "unknown_value",
        unknown.hint,
    )
    assert [(u.poam_id, u.field) for u in report.unreadable] == [(new.poam_id, "original_risk")]


# -- nothing one record holds halts a cycle --------------------------------------------------


def _fault_at(stage: str, monkeypatch: pytest.MonkeyPatch, poam_id: str) -> Callable[[], None]:
    """Make one item's mapping, planning or applying raise; returns what removes the fault."""

    def boom() -> None:
        raise RuntimeError(f"injected fault in {stage}")

    if stage == "mapping":
        check = poam_sync.sync.intake.check_record

        def mapping(record: RemoteRecord, item: PoamItem | None) -> None:
            if item is not None and item.poam_id == poam_id:
                boom()
            check(record, item)

        monkeypatch.setattr(poam_sync.sync.intake, "check_record", mapping)
    elif stage == "planning":
        to_sync = poam_sync.sync.plan.to_sync

        def planning(item: PoamItem) -> Any:
            if item.poam_id == poam_id:
                boom()
            return to_sync(item)

        monkeypatch.setattr(poam_sync.sync.plan, "to_sync", planning)
    else:
        from_sync = poam_sync.sync.apply.from_sync

        def applying(item: PoamItem, changes: Any, **options: Any) -> PoamItem:
            if item.poam_id == poam_id:
                boom()
            return from_sync(item, changes, **options)

        monkeypatch.setattr(poam_sync.sync.apply, "from_sync", applying)
    return monkeypatch.undo


@pytest.mark.parametrize("stage", ["mapping", "planning", "applying"])
def test_a_fault_in_one_item_spares_the_others_and_the_item_goes_through_next_cycle(
    world: World, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    items = [poam(n) for n in (1, 2, 3)]
    engine = _synced(world, *items)
    for item in items:
        world.jira.sim.human_edit(world.jira_key(item), "summary", f"Engineer title {item.poam_id}")
    mark = _watermark(world, "jira")
    remove_fault = _fault_at(stage, monkeypatch, "V-2")

    report = engine.run_cycle()

    assert {e.poam_id for e in report.errors} == {"V-2"}  # the only item that failed
    assert all("RuntimeError: injected fault" in e.message for e in report.errors)
    assert world.store.item("acme", "V-1").title == "Engineer title V-1"
    assert world.store.item("acme", "V-3").title == "Engineer title V-3"
    assert world.store.item("acme", "V-2").title == "Weakness number 2"  # rolled back alone
    # one problem per remote record of the item this cycle pulled (here its Jira issue, and
    # its ServiceNow record read back after the creates)
    failures = _problems(world, code="item_failed")
    assert {(p.poam_id, p.kind) for p in failures} == {("V-2", "item")}
    (failed,) = [p for p in failures if p.connector == "jira"]
    assert failed.remote_key == world.jira_key(items[1]) and failed.remote_id
    assert all("Traceback" not in p.message for p in failures)
    new_mark = _watermark(world, "jira")
    assert mark is not None and new_mark is not None and new_mark > mark  # moved on

    remove_fault()
    later = engine.run_cycle()
    assert later.ok, later.errors
    assert world.store.item("acme", "V-2").title == "Engineer title V-2"
    assert _problems(world, code="item_failed") == []
    assert world.snow.sim.record("sn_grc_issue", world.snow_id(items[1]))["short_description"] == (
        "Engineer title V-2"
    )


def test_a_failed_record_is_fetched_again_although_the_pull_no_longer_returns_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [poam(1), poam(2)]
    engine = _synced(world, *items)
    key = world.jira_key(items[1])
    world.jira.sim.human_edit(key, "summary", "Engineer title")
    remove_fault = _fault_at("mapping", monkeypatch, "V-2")
    assert {e.poam_id for e in engine.run_cycle().errors} == {"V-2"}
    remove_fault()

    jira = engine.targets["jira"].connector
    pull = jira.pull
    monkeypatch.setattr(
        jira, "pull", lambda since, known=None: iter(()) if since else pull(since, known)
    )
    later = engine.run_cycle()
    assert later.ok, later.errors
    assert world.store.item("acme", "V-2").title == "Engineer title"
    assert _problems(world, code="item_failed") == []


def test_the_daemon_survives_a_cycle_that_raises(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.add(poam(1))
    calls: list[int] = []
    run_cycle = Engine.run_cycle

    def flaky(self: Engine, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the disk is on fire")
        report = run_cycle(self, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # the second cycle ran: stop the daemon
        return report

    monkeypatch.setattr(Engine, "run_cycle", flaky)
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 5}
    config = parse_config(raw, env=world.env)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with structlog.testing.capture_logs() as logs:
            run_daemon(config, world.db_url)
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert len(calls) == 2
    (failed,) = [e for e in logs if e["event"] == "sync.cycle_failed"]
    assert failed["error_type"] == "RuntimeError" and failed["error"] == "the disk is on fire"
    assert any(e["event"] == "sync.cycle" for e in logs)  # the next cycle ran, and synced
    with world.store.read() as tx:
        assert tx.links("jira") and tx.links("servicenow")


# -- authority applies to one-sided remote edits too -----------------------------------------


def test_a_one_sided_jira_edit_of_a_field_the_office_owns_is_put_back(world: World) -> None:
    item = poam(1)
    engine = _synced(world, item)
    key = world.jira_key(item)
    world.jira.sim.human_edit(key, "customfield_10042", "2027-06-30", user_email="bob@example.com")

    report = engine.run_cycle()

    assert report.ok, report.errors
    got = world.store.item("acme", "V-1")
    assert got.scheduled_completion_date is not None
    assert got.scheduled_completion_date.isoformat() == "2026-12-31"
    assert world.jira.sim.issue(key)["fields"]["customfield_10042"] == "2026-12-31"
    (row,) = [r for r in world.store.log() if r.field == "scheduled_completion_date"][-1:]
    assert row.source == "policy"
    assert row.old_value == "2027-06-30" and row.new_value == "2026-12-31"
    assert row.reason and "jira" in row.reason and "bob@example.com" in row.reason
    assert "owned by the POA&M office: put back" in row.reason
    idle = engine.run_cycle()
    assert not idle.updated_remote and idle.updated_local == 0


def test_with_jira_as_the_authority_its_one_sided_edit_is_taken(world: World) -> None:
    item = poam(1)
    world.add(item)
    policies = {"fields": {"scheduled_completion_date": {"mode": "authority", "owner": "jira"}}}
    engine = world.engine(policy=policies)
    engine.run_cycle()
    key = world.jira_key(item)
    world.jira.sim.human_edit(key, "customfield_10042", "2027-06-30", user_email="bob@example.com")

    report = engine.run_cycle()

    assert report.ok, report.errors
    got = world.store.item("acme", "V-1")
    assert got.scheduled_completion_date is not None
    assert got.scheduled_completion_date.isoformat() == "2027-06-30"
    assert not [r for r in world.store.log() if r.source == "policy"]
    assert world.jira.sim.issue(key)["fields"]["customfield_10042"] == "2027-06-30"


def test_a_local_change_still_reaches_every_side_under_the_office_s_authority(
    world: World,
) -> None:
    item = poam(1)
    engine = _synced(world, item)
    world.add(
        with_fields(world.store.item("acme", "V-1"), {"scheduled_completion_date": "2027-01-15"})
    )
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert world.jira.sim.issue(world.jira_key(item))["fields"]["customfield_10042"] == "2027-01-15"
    assert not [r for r in world.store.log() if r.source == "policy"]
