"""Field pushes handed to a connector several records at a time (``update_batch``,
sync/pushes.py), on the memory connector, whose ``update_many`` is the base class's: each
record's outcome is its own (one failing rolls back alone), what the push answered is
remembered under echoes.py's rule, and notes still go one by one, never twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import pytest

from poam_sync.connectors.base import SyncValues, WriteResult
from poam_sync.connectors.memory import MemoryConnector, MemoryRemote, MemorySettings
from poam_sync.model import Note, PoamItem, with_fields
from poam_sync.store import Store
from poam_sync.sync.engine import Engine, Guards, SyncTarget
from tests.memory.conftest import FAST_RETRY, PERSON
from tests.sync.conftest import poam


class CountingConnector(MemoryConnector):
    """The memory connector, counting what the executor hands it."""

    def __init__(self, remote: MemoryRemote, batch: int) -> None:
        super().__init__(
            MemorySettings(update_batch=batch), name="memory", remote=remote, retry=FAST_RETRY
        )
        self.batches: list[int] = []
        self.updates = 0

    def update_many(self, batch: Sequence[tuple[str, SyncValues]]) -> list[WriteResult | Exception]:
        self.batches.append(len(batch))
        return super().update_many(batch)

    def update(self, remote_id: str, changes: SyncValues) -> WriteResult:
        self.updates += 1
        return super().update(remote_id, changes)


@pytest.fixture
def remote() -> MemoryRemote:
    return MemoryRemote()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


def _engine(store: Store, connector: MemoryConnector) -> Engine:
    target = SyncTarget(connector, import_new=False, system="acme")
    return Engine(store, [target], guards=Guards(max_change_share=1.0, min_items=1000))


def _save(store: Store, *items: PoamItem) -> None:
    with store.begin() as tx:
        for one in items:
            tx.save(one, source="cli", actor="isso@example.com", reason="test")


def _move_dates(store: Store, items: Sequence[PoamItem], day: str) -> None:
    with store.begin() as tx:
        for one in items:
            current = tx.get_by_uuid(one.uuid)
            assert current is not None
            tx.save(
                with_fields(current, {"scheduled_completion_date": day}),
                source="import",
                actor="isso@example.com",
                reason="mass change",
            )


def _remote_id(store: Store, one: PoamItem) -> str:
    with store.read() as tx:
        link = tx.link(one.uuid, "memory")
    assert link is not None
    return link.remote_id


def _versions(store: Store) -> dict[str, str | None]:
    with store.read() as tx:
        return {link.item_uuid: link.remote_version for link in tx.links("memory")}


def test_a_mass_change_goes_out_in_batches_and_the_next_pull_reads_nothing(
    store: Store, remote: MemoryRemote
) -> None:
    items = [poam(n) for n in range(1, 8)]
    _save(store, *items)
    connector = CountingConnector(remote, batch=3)
    engine = _engine(store, connector)
    assert engine.run_cycle().ok
    _move_dates(store, items, "2027-09-30")
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert dict(report.updated_remote) == {"memory": 7}
    assert connector.batches == [3, 3, 1]  # in plan order, 3 to a call
    assert all(r.values["scheduled_completion_date"] == "2027-09-30" for r in remote.records())
    # each answer showed the record after our write, holding the baselines: remembered
    held = _versions(store)
    for one in items:
        assert held[one.uuid] == str(remote.read(_remote_id(store, one)).version)
    quiet = engine.run_cycle()
    assert quiet.ok and quiet.pulled["memory"] == 0 and not quiet.updated_remote


def test_a_record_failing_in_a_batch_fails_alone(store: Store, remote: MemoryRemote) -> None:
    items = [poam(n) for n in range(1, 5)]
    _save(store, *items)
    connector = CountingConnector(remote, batch=10)
    engine = _engine(store, connector)
    assert engine.run_cycle().ok
    remote.delete(_remote_id(store, items[1]))  # gone: its link breaks
    _move_dates(store, items, "2027-10-31")
    report = engine.run_cycle()
    assert connector.batches == [4]
    assert dict(report.updated_remote) == {"memory": 3}
    with store.read() as tx:
        states = {one.poam_id: tx.link(one.uuid, "memory") for one in items}
        base = {one.poam_id: tx.baselines(one.uuid, "memory") for one in items}
    assert states["V-2"] is not None and states["V-2"].state == "broken"
    for pid in ("V-1", "V-3", "V-4"):
        link = states[pid]
        assert link is not None and link.state != "broken"
        assert base[pid]["scheduled_completion_date"] == "2027-10-31"
    assert base["V-2"]["scheduled_completion_date"] != "2027-10-31"


def test_a_refused_record_in_a_batch_is_retried_next_cycle_alone(
    store: Store, remote: MemoryRemote
) -> None:
    items = [poam(n) for n in range(1, 4)]
    _save(store, *items)
    connector = CountingConnector(remote, batch=10)
    engine = _engine(store, connector)
    assert engine.run_cycle().ok
    _move_dates(store, items, "2027-11-30")
    refused = _remote_id(store, items[0])
    original = connector.update

    def refuse_first(remote_id: str, changes: SyncValues) -> WriteResult:
        if remote_id == refused:
            remote.fail_next(400)  # a permanent refusal of this record only
        return original(remote_id, changes)

    connector.update = refuse_first  # type: ignore[method-assign]
    report = engine.run_cycle()
    assert [e.poam_id for e in report.errors] == ["V-1"]
    assert dict(report.updated_remote) == {"memory": 2}
    with store.read() as tx:
        assert tx.baselines(items[0].uuid, "memory")["scheduled_completion_date"] != "2027-11-30"
    connector.update = original  # type: ignore[method-assign]
    again = engine.run_cycle()
    assert again.ok, again.errors
    assert dict(again.updated_remote) == {"memory": 1}
    assert remote.read(refused).values["scheduled_completion_date"] == "2027-11-30"


def test_a_person_editing_after_our_batched_push_is_read(
    store: Store, remote: MemoryRemote
) -> None:
    items = [poam(1), poam(2)]
    _save(store, *items)
    engine = _engine(store, CountingConnector(remote, batch=5))
    assert engine.run_cycle().ok
    _move_dates(store, items, "2027-12-01")
    assert engine.run_cycle().ok
    remote.human_write(_remote_id(store, items[0]), "due_date", "2027-06-30", actor=PERSON)
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.pulled["memory"] == 1
    assert store.item("acme", "V-1").due_date == date(2027, 6, 30)


def test_a_note_written_after_a_batched_push_is_written_once_and_forgets_the_answer(
    store: Store, remote: MemoryRemote
) -> None:
    one = poam(1)
    _save(store, one)
    engine = _engine(store, CountingConnector(remote, batch=5))
    assert engine.run_cycle().ok
    with store.begin() as tx:
        current = tx.get_by_uuid(one.uuid)
        assert current is not None
        changed = with_fields(current, {"title": "Retitled"})
        note = Note(body="Vendor patch due in March.", origin="local")
        tx.save(
            changed.model_copy(update={"notes": (*changed.notes, note)}),
            source="cli",
            actor="isso@example.com",
            reason="test",
        )
    report = engine.run_cycle()
    assert report.ok, report.errors
    (record,) = remote.records()
    assert [c.body.endswith("Vendor patch due in March.") for c in record.comments] == [True]
    # the note moved the version past the push's answer: not remembered, read once more
    assert _versions(store)[one.uuid] != str(record.version)
    echo = engine.run_cycle()
    assert echo.ok and echo.pulled["memory"] == 1 and not echo.updated_remote
    assert engine.run_cycle().pulled["memory"] == 0
    assert len(remote.records()[0].comments) == 1
