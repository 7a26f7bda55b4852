"""The memory connector as the engine's test double: whole cycles against a real store on
SQLite and PostgreSQL, with no simulator and no network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from poam_sync.connectors.memory import MemoryConnector, MemoryRemote
from poam_sync.model import PoamItem, with_fields
from poam_sync.store import Store
from poam_sync.sync.engine import Engine, Guards, SyncTarget
from tests.memory.conftest import FAST_RETRY, PERSON
from tests.sync.conftest import poam as item


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


@pytest.fixture
def engine(store: Store, remote: MemoryRemote) -> Engine:
    connector = MemoryConnector(name="memory", remote=remote, retry=FAST_RETRY)
    target = SyncTarget(connector, import_new=True, system="acme")
    return Engine(store, [target], guards=Guards(max_change_share=1.0, min_items=1000))


def save(store: Store, *items: PoamItem) -> None:
    with store.begin() as tx:
        for one in items:
            tx.save(one, source="cli", actor="isso@example.com", reason="test")


def remote_id(store: Store, one: PoamItem) -> str:
    with store.begin() as tx:
        link = tx.link(one.uuid, "memory")
    assert link is not None
    return link.remote_id


def test_a_new_item_is_created_once_stamped_and_the_next_cycle_is_idle(
    store: Store, remote: MemoryRemote, engine: Engine
) -> None:
    first = item(1)
    save(store, first, item(2, status="completed"))
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert dict(report.created) == {"memory": 1}  # closed items are not created
    (record,) = remote.records()
    assert record.values["title"] == "Weakness number 1"
    assert record.values["owner"] == "alice@example.com"
    assert record.stamp is not None and record.stamp.item_uuid == first.uuid
    idle = engine.run_cycle()
    assert idle.ok and not idle.created and not idle.updated_remote
    assert idle.updated_local == 0 and idle.conflicts == 0
    assert len(remote.records()) == 1


def test_a_remote_edit_is_taken_into_the_canonical_record_with_its_author(
    store: Store, remote: MemoryRemote, engine: Engine
) -> None:
    one = item(1)
    save(store, one)
    engine.run_cycle()
    remote.human_write(remote_id(store, one), "due_date", "2027-02-15", actor=PERSON)
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.updated_local == 1
    assert store.item("acme", "V-1").due_date == date(2027, 2, 15)
    (row,) = [r for r in store.log() if r.field == "due_date" and r.source == "memory"]
    assert (row.actor, row.new_value) == (PERSON, "2027-02-15")
    idle = engine.run_cycle()
    assert not idle.updated_remote and idle.updated_local == 0  # no echo


def test_a_local_edit_is_pushed_to_the_remote(
    store: Store, remote: MemoryRemote, engine: Engine
) -> None:
    one = item(1)
    save(store, one)
    engine.run_cycle()
    save(store, with_fields(store.item("acme", "V-1"), {"title": "Renamed by the ISSO"}))
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert dict(report.updated_remote) == {"memory": 1}
    (record,) = remote.records()
    assert record.values["title"] == "Renamed by the ISSO"
    assert record.updated_by == "poam-sync@example.com"
    assert not engine.run_cycle().updated_remote


def test_both_sides_editing_a_field_is_a_conflict_and_neither_is_overwritten(
    store: Store, remote: MemoryRemote, engine: Engine
) -> None:
    one = item(1)
    save(store, one)
    engine.run_cycle()
    save(store, with_fields(store.item("acme", "V-1"), {"title": "ISSO title"}))
    remote.human_write(remote_id(store, one), "title", "Engineer title", actor=PERSON)
    report = engine.run_cycle()
    assert report.conflicts == 1
    assert store.item("acme", "V-1").title == "ISSO title"
    assert remote.records()[0].values["title"] == "Engineer title"
    with store.begin() as tx:
        (conflict,) = tx.conflicts(state="open")
    assert (conflict.field, conflict.local, conflict.remote) == (
        "title",
        "ISSO title",
        "Engineer title",
    )


def test_a_record_deleted_remotely_breaks_the_link_and_is_never_recreated(
    store: Store, remote: MemoryRemote, engine: Engine
) -> None:
    one = item(1)
    save(store, one)
    engine.run_cycle()
    remote.delete(remote_id(store, one))
    save(store, with_fields(store.item("acme", "V-1"), {"title": "Changed here"}))
    engine.run_cycle()
    with store.begin() as tx:
        link = tx.link(one.uuid, "memory")
        assert link is not None and link.state == "broken"
    assert store.item("acme", "V-1").title == "Changed here"
    assert not engine.run_cycle().created.get("memory")
    assert remote.records() == []


def test_a_record_created_remotely_is_imported(
    store: Store, remote: MemoryRemote, engine: Engine
) -> None:
    engine.run_cycle()
    remote.human_create({"title": "Found in the assessment", "description": "AC-2 gaps"})
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.imported == 1
    (imported,) = store.items("acme")
    assert imported.title == "Found in the assessment"
