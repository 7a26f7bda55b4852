"""Items <-> connector values: an owner taken from a remote is one whole person (the remote's
name for them, no organization), and the change log says so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest

from poam_sync.connectors.base import RemoteRecord
from poam_sync.connectors.memory import MemoryConnector, MemoryRemote
from poam_sync.connectors.memory.remote import StoredRecord
from poam_sync.model import Person
from poam_sync.store import Store
from poam_sync.sync.engine import Engine, Guards, SyncTarget
from poam_sync.sync.values import from_sync
from tests.memory.conftest import FAST_RETRY, PERSON
from tests.sync.conftest import poam

NAMES = {"carol@example.com": "Carol Danvers"}


class NamingConnector(MemoryConnector):
    """The memory connector, naming the people its records hold (as Jira and ServiceNow do)."""

    def _record(self, raw: StoredRecord) -> RemoteRecord:
        record = super()._record(raw)
        owner = record.fields.get("owner")
        named = {owner: NAMES[owner]} if isinstance(owner, str) and owner in NAMES else {}
        return replace(record, people=named)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


def test_a_remote_owner_change_replaces_name_email_and_organization_together(
    store: Store,
) -> None:
    remote = MemoryRemote()
    connector = NamingConnector(name="memory", remote=remote, retry=FAST_RETRY)
    engine = Engine(
        store,
        [SyncTarget(connector, system="acme")],
        guards=Guards(max_change_share=1.0, min_items=1000),
    )
    with store.begin() as tx:
        tx.save(poam(1), source="cli", actor="isso@example.com", reason="test")
    engine.run_cycle()
    (record,) = remote.records()
    remote.human_write(record.id, "owner", "carol@example.com", actor=PERSON)
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert store.item("acme", "V-1").owner == Person(
        email="carol@example.com", name="Carol Danvers", org=None
    )
    (row,) = [r for r in store.log() if r.field == "owner" and r.source == "memory"]
    assert row.reason is not None
    assert "name 'Carol Danvers' from memory, organization unknown (cleared)" in row.reason
    assert row.actor == PERSON


def test_the_same_owner_keeps_the_name_and_organization_known_here() -> None:
    item = poam(1)
    same = from_sync(item, {"owner": "ALICE@example.com"}, names={"alice@example.com": "A."})
    assert same.owner == item.owner


def test_a_new_owner_without_a_name_from_the_remote_has_no_name_and_no_organization() -> None:
    moved = from_sync(poam(1), {"owner": "dan@example.com"})
    assert moved.owner == Person(email="dan@example.com", name=None, org=None)


MILESTONES = [
    {"id": "1", "description": "Patch the hosts", "due_date": "2026-11-30", "status": "open"},
    {"id": "2", "description": "Rescan", "due_date": "2026-12-15", "status": "open"},
]


def test_a_milestone_completed_remotely_gets_the_day_it_was_learned_as_its_completion_date() -> (
    None
):
    item = poam(1, milestones=MILESTONES)
    done = [dict(MILESTONES[0], status="completed"), MILESTONES[1]]
    taken = from_sync(item, {"milestones": done}, today=date(2026, 12, 6))
    assert [m.completed_on for m in taken.milestones] == [date(2026, 12, 6), None]


def test_a_milestone_completed_here_keeps_its_own_completion_date() -> None:
    mine = [dict(MILESTONES[0], status="completed", completed_on="2026-11-21"), MILESTONES[1]]
    item = poam(1, milestones=mine)
    echo = [dict(MILESTONES[0], status="completed"), MILESTONES[1]]
    taken = from_sync(item, {"milestones": echo}, today=date(2026, 12, 6))
    assert taken.milestones[0].completed_on == date(2026, 11, 21)


def test_a_milestone_completed_in_a_remote_is_completed_here_with_a_date(store: Store) -> None:
    remote = MemoryRemote()
    connector = MemoryConnector(name="memory", remote=remote, retry=FAST_RETRY)
    engine = Engine(
        store,
        [SyncTarget(connector, system="acme")],
        guards=Guards(max_change_share=1.0, min_items=1000),
    )
    with store.begin() as tx:
        tx.save(poam(1, milestones=MILESTONES), source="cli", actor="isso@example.com", reason="t")
    engine.run_cycle()
    (record,) = remote.records()
    done = [dict(MILESTONES[0], status="completed"), MILESTONES[1]]
    remote.human_write(record.id, "milestones", done, actor=PERSON)
    report = engine.run_cycle()
    assert report.ok, report.errors
    first = store.item("acme", "V-1").milestones[0]
    assert first.status.value == "completed"
    assert first.completed_on is not None
