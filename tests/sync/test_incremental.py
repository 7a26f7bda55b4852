"""A running engine's later cycles plan only what changed (poam_sync/sync/working_set.py): what
another process writes to the store between two cycles is still seen and pushed, a record
changed remotely is planned, an untouched item is not even loaded, and a full cycle still comes
every ``full_every`` cycles. Two memory connectors on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from poam_sync.connectors.memory import MemoryConnector, MemoryRemote, MemorySettings
from poam_sync.model import PoamItem, with_fields
from poam_sync.store import Store
from poam_sync.sync.conflicts import settle_conflict
from poam_sync.sync.engine import CycleReport, Engine, Guards, SyncTarget
from tests.memory.conftest import FAST_RETRY, PERSON
from tests.sync.conftest import ROOT, poam


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


@pytest.fixture
def remotes() -> dict[str, MemoryRemote]:
    return {"alpha": MemoryRemote(), "beta": MemoryRemote()}


def make_engine(store: Store, remotes: dict[str, MemoryRemote], full_every: int = 100) -> Engine:
    targets = [
        SyncTarget(
            MemoryConnector(MemorySettings(overlap_seconds=0), name=n, remote=r, retry=FAST_RETRY),
            system="acme",
            import_new=n == "beta",
        )
        for n, r in remotes.items()
    ]
    engine = Engine(
        store,
        targets,
        guards=Guards(max_change_share=1.0, min_items=1000),
        reconcile_every=0,
        full_every=full_every,
    )
    engine.clock_skew = timedelta(0)  # the remotes share this process's clock
    return engine


def save(store: Store, *items: PoamItem) -> None:
    with store.begin() as tx:
        for one in items:
            tx.save(one, source="cli", actor="isso@example.com", reason="test")


def settled(engine: Engine) -> CycleReport:
    """Cycles until one finds nothing to do (the echoes of our own writes read back), past
    the remotes' one-second clock: the steady state of a daemon."""
    for _ in range(4):
        time.sleep(1.05)
        report = engine.run_cycle()
        assert report.ok, report.errors
        if not report.full and report.planned_items == 0:
            return report
    raise AssertionError("the engine never settled")


def running(store: Store, remotes: dict[str, MemoryRemote], count: int = 6) -> Engine:
    save(store, *(poam(n) for n in range(1, count + 1)))
    engine = make_engine(store, remotes)
    first = engine.run_cycle()
    assert first.ok, first.errors
    assert first.full and first.planned_items == count
    assert dict(first.created) == {"alpha": count, "beta": count}
    settled(engine)
    return engine


def record_of(store: Store, remote: MemoryRemote, name: str, poam_id: str) -> dict[str, object]:
    item = store.item("acme", poam_id)
    with store.read() as tx:
        link = tx.link(item.uuid, name)
    assert link is not None
    return dict(next(r for r in remote.records() if r.id == link.remote_id).values)


def test_an_idle_cycle_of_a_running_engine_loads_and_plans_nothing(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = running(store, remotes)
    idle = settled(engine)
    assert idle.pulled == {"alpha": 0, "beta": 0}
    assert not idle.created and not idle.updated_remote and idle.updated_local == 0


def test_a_second_process_setting_a_field_between_two_cycles_is_pushed(
    store: Store, remotes: dict[str, MemoryRemote], db_url: str
) -> None:
    engine = running(store, remotes)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "poam_sync",
            "--db",
            db_url,
            "items",
            "set",
            "V-2",
            "title=Patched by the other shift",
            "--reason",
            "ticket 42",
            "--actor",
            "isso@example.com",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert not report.full and report.planned_items == 1  # V-2 alone, nothing else loaded
    assert dict(report.updated_remote) == {"alpha": 1, "beta": 1}
    for name, remote in remotes.items():
        assert record_of(store, remote, name, "V-2")["title"] == "Patched by the other shift"


def test_an_import_in_another_process_is_seen(
    store: Store, remotes: dict[str, MemoryRemote], db_url: str
) -> None:
    engine = running(store, remotes)
    other = Store.open(db_url)  # another process's store: its own connections
    try:
        with other.begin() as tx:
            tx.import_items(
                [with_fields(poam(3), {"title": "Re-scanned"}), poam(7)],
                system="acme",
                actor="isso@example.com",
                batch_id="scan-2",
            )
    finally:
        other.close()
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert not report.full and report.planned_items == 2
    assert dict(report.created) == {"alpha": 1, "beta": 1}  # V-7 is new
    assert dict(report.updated_remote) == {"alpha": 1, "beta": 1}  # V-3's title
    assert record_of(store, remotes["alpha"], "alpha", "V-3")["title"] == "Re-scanned"
    assert record_of(store, remotes["beta"], "beta", "V-7")["title"] == poam(7).title


def test_a_record_changed_remotely_is_planned_and_reaches_the_other_side(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = running(store, remotes)
    item = store.item("acme", "V-4")
    with store.read() as tx:
        link = tx.link(item.uuid, "alpha")
    assert link is not None
    time.sleep(1.05)  # the remote floors its clock to the second: past the watermark's
    remotes["alpha"].human_write(link.remote_id, "title", "Edited in alpha", actor=PERSON)
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert not report.full and report.planned_items == 1
    assert report.updated_local == 1 and dict(report.updated_remote) == {"beta": 1}
    assert store.item("acme", "V-4").title == "Edited in alpha"
    assert record_of(store, remotes["beta"], "beta", "V-4")["title"] == "Edited in alpha"


def test_new_records_are_imported_or_refused_by_an_incremental_cycle_as_by_a_full_one(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = running(store, remotes)
    # beta imports new records under their key (MEM-7, MEM-8, ...) as POA&M ID; an item closed
    # here (never synced, untouched since) already holds MEM-8
    save(store, poam(99, poam_id="MEM-8", status="completed"))
    settled(engine)
    time.sleep(1.05)  # the remote floors its clock to the second: past the watermark's
    remotes["beta"].human_create({"title": "Found by the SOC", "status": "open"})
    remotes["beta"].human_create({"title": "Clashes with a closed item", "status": "open"})
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert not report.full
    assert report.plan is not None
    assert [p.new_item.poam_id for p in report.plan.items if p.new_item] == ["MEM-7"]
    assert any("MEM-8 already names another item" in why for why in report.plan.skipped)
    assert store.item("acme", "MEM-7").title == "Found by the SOC"
    assert store.item("acme", "MEM-8").title == poam(99).title


def test_a_full_cycle_comes_every_full_every_cycles_and_when_asked(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    save(store, poam(1), poam(2))
    engine = make_engine(store, remotes, full_every=3)
    fulls = [engine.run_cycle().full for _ in range(7)]
    assert fulls == [True, False, False, True, False, False, True]
    assert engine.run_cycle(full=True).full
    forced = engine.run_cycle(full=True)
    assert forced.full and forced.planned_items == 2
    engine.invalidate()  # the daemon, on gaining the lead
    assert engine.run_cycle().full


def test_a_connector_that_missed_a_cycle_gets_a_full_one_when_back(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = running(store, remotes)
    remotes["beta"].fail_next(500, count=20)  # beta is down for this cycle
    save(store, with_fields(store.item("acme", "V-5"), {"title": "Changed while beta was down"}))
    down = engine.run_cycle()
    assert "beta" in down.failed_connectors
    assert not down.full and dict(down.updated_remote) == {"alpha": 1}
    remotes["beta"].clear_faults()
    back = engine.run_cycle()
    assert back.ok, back.errors
    assert back.full  # beta missed a cycle: everything is planned for it again
    assert dict(back.updated_remote) == {"beta": 1}
    assert record_of(store, remotes["beta"], "beta", "V-5")["title"] == (
        "Changed while beta was down"
    )
    assert not settled(engine).full


def test_a_refused_value_is_not_pushed_again_by_incremental_cycles_until_it_changes(
    store: Store, remotes: dict[str, MemoryRemote]
) -> None:
    engine = running(store, remotes)
    remotes["alpha"].blocked_statuses.add("completed")
    save(store, with_fields(store.item("acme", "V-1"), {"status": "completed"}))
    refused = engine.run_cycle()
    assert not refused.full and refused.problems == 1  # alpha refused; beta took it
    assert record_of(store, remotes["beta"], "beta", "V-1")["status"] == "completed"
    save(store, with_fields(store.item("acme", "V-1"), {"title": "Still synced"}))
    again = engine.run_cycle()
    assert not again.full and again.problems == 0  # the status is not tried again
    assert dict(again.updated_remote) == {"alpha": 1, "beta": 1}
    assert record_of(store, remotes["alpha"], "alpha", "V-1")["title"] == "Still synced"
    assert record_of(store, remotes["alpha"], "alpha", "V-1")["status"] != "completed"
    remotes["alpha"].blocked_statuses.clear()
    save(store, with_fields(store.item("acme", "V-1"), {"status": "remediating"}))
    moved = engine.run_cycle()
    assert moved.ok and dict(moved.updated_remote) == {"alpha": 1, "beta": 1}
    assert record_of(store, remotes["alpha"], "alpha", "V-1")["status"] == "remediating"


def test_a_conflict_settled_in_another_process_is_pushed_by_the_next_incremental_cycle(
    store: Store, remotes: dict[str, MemoryRemote], db_url: str
) -> None:
    engine = running(store, remotes)
    item = store.item("acme", "V-3")
    with store.read() as tx:
        link = tx.link(item.uuid, "alpha")
    assert link is not None
    time.sleep(1.05)  # the remote floors its clock to the second: past the watermark's
    save(store, with_fields(item, {"title": "ISSO title"}))
    remotes["alpha"].human_write(link.remote_id, "title", "Engineer title", actor=PERSON)
    assert engine.run_cycle().conflicts == 1
    with store.read() as tx:
        (conflict,) = tx.conflicts(state="open")
    other = Store.open(db_url)  # the workbench or `conflicts settle`, in its own process
    try:
        with other.begin() as tx:
            settle_conflict(
                tx, conflict.id, take="alpha", reason="the engineer knows", actor=PERSON
            )
    finally:
        other.close()
    settled_by = engine.run_cycle()
    assert settled_by.ok, settled_by.errors
    assert not settled_by.full and settled_by.planned_items == 1
    assert store.item("acme", "V-3").title == "Engineer title"
    assert record_of(store, remotes["beta"], "beta", "V-3")["title"] == "Engineer title"
