"""``prepare()`` before planning, and a planner that makes no I/O: against both simulators,
on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from poam_sync.errors import RemoteError
from poam_sync.model import with_fields
from poam_sync.sync.plan import Plan, plan
from poam_sync.sync.working_set import read_all
from tests.sync.conftest import World, poam

pytestmark = pytest.mark.filterwarnings(
    # pysnc and jira leave pooled sockets to the garbage collector
    "ignore::ResourceWarning"
)


def test_a_connector_whose_prepare_fails_is_left_out_like_a_failed_pull(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    with world.store.read() as tx:
        mark = tx.watermark("jira")
    jira = engine.targets["jira"].connector
    pulls: list[object] = []
    monkeypatch.setattr(jira, "pull", lambda since, known=None: pulls.append(since) or iter(()))

    def unreachable() -> None:
        raise RemoteError("workflow metadata unavailable", connector="jira")

    monkeypatch.setattr(jira, "prepare", unreachable)
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "Only ServiceNow hears"}))
    report = engine.run_cycle()
    assert report.failed_connectors == {"jira": "workflow metadata unavailable"}
    assert "jira" not in report.pulled and pulls == []  # not pulled either
    assert report.updated_remote.get("servicenow") == 1 and not report.updated_remote.get("jira")
    assert not report.ok
    with world.store.read() as tx:
        assert tx.watermark("jira") == mark
    monkeypatch.undo()
    later = engine.run_cycle()
    assert later.ok, later.errors
    assert later.updated_remote.get("jira") == 1
    issue = world.jira.sim.issue(world.jira_key(item))
    assert issue["fields"]["summary"] == "Only ServiceNow hears"


def test_a_connector_bug_in_pull_leaves_that_connector_out_and_the_cycle_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    engine.run_cycle()
    with world.store.read() as tx:
        mark = tx.watermark("servicenow")
    snow = engine.targets["servicenow"].connector

    def broken(since: object, known: object = None) -> Any:
        raise KeyError("sys_id")  # not one of ours: a bug, never a halted cycle

    monkeypatch.setattr(snow, "pull", broken)
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "Jira still hears"}))
    report = engine.run_cycle()
    assert report.failed_connectors == {"servicenow": "KeyError: 'sys_id'"}
    assert report.updated_remote.get("jira") == 1
    with world.store.read() as tx:
        assert tx.watermark("servicenow") == mark
    assert world.jira.sim.issue(world.jira_key(item))["fields"]["summary"] == "Jira still hears"


def _states_and_plan(world: World, engine: Any) -> tuple[Any, ...]:
    """The planner's inputs built as the engine builds them: prepare, pull, one store read."""
    pulled = {}
    with world.store.read() as tx:
        marks = {name: tx.watermark(name) for name in engine.targets}
    for name, target in engine.targets.items():
        target.connector.prepare()
        pulled[name] = {r.remote_id: r for r in target.connector.pull(marks[name])}
    with world.store.read() as tx:
        snap = read_all(tx, list(engine.targets))
        conflicts = tx.conflicts(state="open")
        states = [engine._state(name, pulled[name], snap, conflicts) for name in engine.targets]
    return snap.items, states, snap.taken


def test_the_plan_makes_no_io(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.add(poam(1), poam(2), poam(3))
    world.engine().run_cycle()
    # Work of every kind for the planner: a local edit, a remote edit, a conflict, a new item.
    world.add(with_fields(world.store.item("acme", "V-1"), {"title": "Changed here"}))
    key = world.jira_key(world.store.item("acme", "V-2"))
    world.jira.sim.human_edit(key, "summary", "Changed in Jira", user_email="bob@example.com")
    world.add(with_fields(world.store.item("acme", "V-3"), {"title": "ISSO title"}))
    key3 = world.jira_key(world.store.item("acme", "V-3"))
    world.jira.sim.human_edit(key3, "summary", "Engineer title", user_email="bob@example.com")
    world.snow.sim.human_update(
        "sn_grc_issue", world.snow_id(world.store.item("acme", "V-2")), {"due_date": "2027-02-15"}
    )
    world.add(poam(4))
    engine = world.engine()  # fresh connectors: nothing cached but what prepare() loads
    items, states, taken = _states_and_plan(world, engine)

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("the planner must make no I/O")

    with monkeypatch.context() as m:
        m.setattr(socket.socket, "connect", refuse)
        m.setattr(socket, "create_connection", refuse)
        cut_off = plan(items, states, engine.policies, taken_ids=taken)
    assert attempts == []
    free = plan(items, states, engine.policies, taken_ids=taken)  # after: caches stay warm
    assert isinstance(cut_off, Plan) and cut_off == free
    kinds = {type(a).__name__ for _, a in free.actions()}
    assert {"PushField", "TakeRemote", "RecordConflict", "CreateRemote"} <= kinds
