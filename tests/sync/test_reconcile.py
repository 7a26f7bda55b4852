"""The periodic keys-only reconcile: linked records deleted remotely are found (an incremental
pull never shows a deletion), their links marked broken and reported once with what to do; the
canonical item stays and nothing is re-created."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from poam_sync.connectors.memory import MemoryConnector, MemoryRemote
from poam_sync.model import PoamItem, with_fields
from poam_sync.store import Store
from poam_sync.sync.engine import Engine, Guards, SyncTarget
from tests.memory.conftest import FAST_RETRY
from tests.sync.conftest import World, poam

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


def memory_engine(store: Store, remote: MemoryRemote, every: int) -> Engine:
    connector = MemoryConnector(name="memory", remote=remote, retry=FAST_RETRY)
    guards = Guards(max_change_share=0.5, min_items=1000)
    return Engine(
        store, [SyncTarget(connector, system="acme")], guards=guards, reconcile_every=every
    )


def save(store: Store, *items: PoamItem) -> None:
    with store.begin() as tx:
        for one in items:
            tx.save(one, source="cli", actor="isso@example.com", reason="test")


def test_every_nth_cycle_lists_the_ids_and_breaks_the_link_of_a_deleted_record(
    store: Store,
) -> None:
    remote = MemoryRemote()
    save(store, poam(1), poam(2), poam(3))
    engine = memory_engine(store, remote, every=3)
    assert engine.run_cycle().ok  # cycle 1: creates
    gone = next(r for r in remote.records() if r.stamp and r.stamp.poam_id == "V-2")
    remote.delete(gone.id)
    quiet = engine.run_cycle()  # cycle 2: an incremental pull cannot see the deletion
    assert quiet.reconciled == {} and quiet.vanished == []
    report = engine.run_cycle()  # cycle 3: the reconcile
    assert report.reconciled == {"memory": 2}
    (vanished,) = report.vanished
    assert (vanished.poam_id, vanished.connector, vanished.remote_key) == (
        "V-2",
        "memory",
        gone.number,
    )
    assert "restore the record there, or close the item" in vanished.hint
    with store.read() as tx:
        link = tx.link(store.item("acme", "V-2").uuid, "memory")
        (problem,) = [p for p in tx.problems() if p.code == "broken_link"]
    assert link is not None and link.state == "broken"
    assert problem.poam_id == "V-2" and gone.number in problem.message
    assert store.item("acme", "V-2").title == "Weakness number 2"  # the item stays
    # nothing is re-created, and a local change is not pushed anywhere for it
    save(store, with_fields(store.item("acme", "V-2"), {"title": "Edited here"}))
    later = engine.run_cycle()
    assert not later.created and not later.updated_remote
    assert len(remote.records()) == 2


def test_a_record_that_only_left_the_listing_stays_linked(store: Store) -> None:
    remote = MemoryRemote()
    save(store, poam(1))
    engine = memory_engine(store, remote, every=0)
    engine.run_cycle()
    shown = remote.ids()
    remote.ids = lambda: []  # type: ignore[method-assign]  # a listing scope that excludes it
    engine.guards = Guards(max_change_share=1.0, min_items=1000)
    report = engine.run_cycle(reconcile=True, force=True)
    assert report.vanished == []
    with store.read() as tx:
        assert [link.state for link in tx.links("memory")] == ["active"]
    assert shown


def test_a_dry_run_reconcile_reports_what_is_gone_and_writes_nothing(store: Store) -> None:
    remote = MemoryRemote()
    save(store, poam(1), poam(2), poam(3))
    engine = memory_engine(store, remote, every=0)
    engine.run_cycle()
    remote.delete(remote.records()[0].id)
    report = engine.run_cycle(dry_run=True, reconcile=True)
    assert len(report.vanished) == 1
    with store.read() as tx:
        assert all(link.state == "active" for link in tx.links("memory"))


def test_the_reconcile_finds_an_issue_deleted_in_jira_and_a_record_deleted_in_servicenow(
    world: World,
) -> None:
    one, two = poam(1), poam(2)
    world.add(one, two)
    engine = world.engine()
    assert engine.run_cycle().ok
    world.jira.sim.delete_issue(world.jira_key(one))
    world.snow.sim.delete("sn_grc_issue", world.snow_id(two))
    report = engine.run_cycle(reconcile=True)
    assert report.reconciled == {"jira": 1, "servicenow": 1}
    assert {(v.poam_id, v.connector) for v in report.vanished} == {
        ("V-1", "jira"),
        ("V-2", "servicenow"),
    }
    with world.store.read() as tx:
        assert tx.link(one.uuid, "jira").state == "broken"  # type: ignore[union-attr]
        assert tx.link(two.uuid, "servicenow").state == "broken"  # type: ignore[union-attr]
        assert tx.link(one.uuid, "servicenow").state == "active"  # type: ignore[union-attr]
