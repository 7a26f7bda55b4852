"""The guards, on every cycle: a connector that suddenly shows far fewer of its linked records,
or a cycle that would change more than the allowed share, stops that connector's writes for the
cycle (the others go on) with a clear reason and the --force escape. Two memory connectors on a
real store (SQLite and PostgreSQL), no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from poam_sync.connectors.memory import MemoryConnector, MemoryRemote
from poam_sync.model import PoamItem, with_fields
from poam_sync.store import Store
from poam_sync.sync.engine import Engine, Guards, SyncTarget
from tests.memory.conftest import FAST_RETRY, PERSON
from tests.sync.conftest import poam


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


@pytest.fixture
def remotes() -> dict[str, MemoryRemote]:
    return {"alpha": MemoryRemote(), "beta": MemoryRemote()}


def make_engine(store: Store, remotes: dict[str, MemoryRemote], **guards: float) -> Engine:
    targets = [
        SyncTarget(MemoryConnector(name=n, remote=r, retry=FAST_RETRY), system="acme")
        for n, r in remotes.items()
    ]
    limits = Guards(max_change_share=guards.get("share", 0.5), min_items=int(guards.get("min", 4)))
    return Engine(store, targets, guards=limits, reconcile_every=0)


def save(store: Store, *items: PoamItem) -> None:
    with store.begin() as tx:
        for one in items:
            tx.save(one, source="cli", actor="isso@example.com", reason="test")


def linked(store: Store, count: int, remotes: dict[str, MemoryRemote]) -> Engine:
    save(store, *(poam(n) for n in range(1, count + 1)))
    engine = make_engine(store, remotes)
    first = engine.run_cycle()
    assert first.ok, first.errors
    return engine


def test_a_remote_deleting_every_linked_record_is_stopped_at_the_reconcile(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = linked(store, 6, remotes)
    for record in remotes["alpha"].records():
        remotes["alpha"].delete(record.id)
    report = engine.run_cycle(reconcile=True)
    assert not report.ok
    assert "alpha shows none of the 6 record(s) linked to it" in report.guarded["alpha"]
    assert "--force" in report.guarded["alpha"]
    assert report.vanished == []  # nothing taken for gone behind the guard
    with store.read() as tx:
        assert all(link.state == "active" for link in tx.links("alpha"))
    assert "beta" not in report.guarded and report.reconciled["beta"] == 6


def test_far_fewer_linked_records_than_before_trips_the_guard_and_force_proceeds(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = linked(store, 6, remotes)
    for record in remotes["alpha"].records()[:4]:
        remotes["alpha"].delete(record.id)
    report = engine.run_cycle(reconcile=True)
    assert "shows only 2 of the 6 records linked to it (67% missing" in report.guarded["alpha"]
    forced = engine.run_cycle(reconcile=True, force=True)
    assert not forced.guarded
    assert len(forced.vanished) == 4
    with store.read() as tx:
        assert sum(link.state == "broken" for link in tx.links("alpha")) == 4


def test_a_remote_showing_nothing_stops_only_that_connector_even_below_min_items(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = linked(store, 2, remotes)  # below min_items: "none at all" still trips
    for record in remotes["beta"].records():
        remotes["beta"].delete(record.id)
    save(store, with_fields(store.item("acme", "V-1"), {"title": "Still reaches alpha"}))
    report = engine.run_cycle(reconcile=True)
    assert "beta shows none of the 2 record(s)" in report.guarded["beta"]
    assert report.updated_remote == {"alpha": 1}
    assert report.summary()["guarded"] == report.guarded


def test_a_local_mass_change_stops_the_writes_of_every_connector_it_would_reach(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = linked(store, 4, remotes)
    for n in range(1, 5):
        save(store, with_fields(store.item("acme", f"V-{n}"), {"title": f"Bulk {n}"}))
    report = engine.run_cycle()
    assert set(report.guarded) == {"alpha", "beta"}
    assert "would change 4 of 4 items linked to alpha (100%" in report.guarded["alpha"]
    assert not report.updated_remote
    assert {r.values["title"] for r in remotes["alpha"].records()} == {
        f"Weakness number {n}" for n in range(1, 5)
    }
    forced = engine.run_cycle(force=True)
    assert forced.updated_remote == {"alpha": 4, "beta": 4}


def test_a_mass_change_from_one_remote_leaves_it_out_and_the_other_still_syncs(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = linked(store, 4, remotes)
    for record in remotes["alpha"].records():
        remotes["alpha"].human_write(record.id, "status", "completed", actor=PERSON)
    beta_one = remotes["beta"].records()[0]
    remotes["beta"].human_write(beta_one.id, "title", "One edit in beta", actor=PERSON)
    report = engine.run_cycle()
    assert list(report.guarded) == ["alpha"]  # beta's pushes came from alpha: they go too
    assert "4 from alpha's side" in report.guarded["alpha"]
    assert report.updated_local == 1  # beta's one edit is taken
    assert all(i.status.value == "open" for i in store.items())
    assert report.updated_remote.get("alpha") is None
    with store.read() as tx:
        assert tx.watermark("beta") is not None
    # alpha's changes are still there to be seen once someone looks: its watermark stayed
    forced = engine.run_cycle(force=True)
    assert all(i.status.value == "completed" for i in store.items())
    assert forced.updated_remote.get("beta") == 4
