"""One leader per database: daemons and one-off syncs never create a record twice.

Real processes on both databases against both simulators: two daemons at once, a daemon killed
with SIGKILL and its standby taking over, ``sync`` while a daemon leads, and a leader that
loses its lock mid-cycle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa
import yaml

from poam_sync.errors import LeaderBusy, LeadershipLost
from poam_sync.store import LeaderLock, leader_lock
from poam_sync.store._lock import AdvisoryLock, FileLock
from tests.sync.conftest import ROOT, World, config_dict, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


# -- the lock itself -------------------------------------------------------------------------


@pytest.fixture
def two_locks(db_url: str) -> Iterator[tuple[LeaderLock, LeaderLock]]:
    from poam_sync.store import Store

    Store.open(db_url).close()
    first, second = leader_lock(db_url), leader_lock(db_url)
    try:
        yield first, second
    finally:
        for lock in (first, second):
            lock.release()
            lock.close()


def test_only_one_process_holds_the_leader_lock_and_the_next_gets_it_once_released(
    two_locks: tuple[LeaderLock, LeaderLock],
) -> None:
    first, second = two_locks
    assert first.try_acquire()
    assert not second.try_acquire()
    with pytest.raises(LeaderBusy) as busy:
        second.acquire(wait=False, poll_seconds=0.1)
    assert f"pid {os.getpid()}" in busy.value.message  # the holder is named
    first.check()  # still ours: no error
    first.release()
    assert second.try_acquire()


def _break(lock: LeaderLock, db_url: str) -> None:
    """Take the lock away from under its holder, as a dropped connection would."""
    if isinstance(lock, FileLock):
        lock.path.unlink()
        return
    assert isinstance(lock, AdvisoryLock)
    admin = sa.create_engine(db_url)
    with admin.begin() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :key"
            ),
            {"key": lock._key},
        )
    admin.dispose()


def test_a_lock_taken_away_is_reported_lost_and_can_be_taken_again(
    two_locks: tuple[LeaderLock, LeaderLock], db_url: str
) -> None:
    first, second = two_locks
    assert first.try_acquire()
    _break(first, db_url)
    with pytest.raises(LeadershipLost):
        first.check()
    assert not first.held
    assert second.try_acquire()
    assert not first.try_acquire()


def test_a_leader_that_loses_its_lock_mid_cycle_writes_nothing_more(world: World) -> None:
    world.add(*(poam(n) for n in range(1, 5)))
    lock = leader_lock(world.db_url)
    assert lock.try_acquire()
    engine = world.engine()
    engine.fence = lock.check
    written: list[str] = []
    for name, target in engine.targets.items():
        # One write at a time: a write already handed out when the lock goes still finishes
        # (it cannot be called back); what this shows is that nothing after it starts.
        target.connector.max_in_flight = 1
        create_many = target.connector.create_many

        def breaking(batch: Any, name: str = name, create_many: Any = create_many) -> Any:
            results = create_many(batch)
            written.append(name)
            _break(lock, world.db_url)  # the first batch went out; then the lock is gone
            return results

        target.connector.create_many = breaking  # type: ignore[method-assign]
    try:
        with pytest.raises(LeadershipLost):
            engine.run_cycle()
    finally:
        lock.release()
        lock.close()
    assert len(written) == 1  # the second connector's batch was never sent
    jira_issues = len(world.jira.sim.issues)
    snow_records = len(world.snow.sim.records("sn_grc_issue"))
    assert sorted([jira_issues, snow_records]) == [0, 4]


# -- real processes -------------------------------------------------------------------------


class Proc:
    """A poam-sync process whose log lines are read as they come."""

    def __init__(self, world: World, cfg: Path, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "poam_sync", "--config", str(cfg), *args],
            env={**os.environ, **world.env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        assert self.popen.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.popen.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def events(self) -> list[str]:
        found = []
        for line in list(self.lines):
            if line.startswith("{"):
                found.append(json.loads(line)["event"])
        return found

    def wait_for(self, event: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while event not in self.events():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {event} logged:\n{''.join(self.lines)}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout=60)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=30)
        self._reader.join(timeout=10)

    @property
    def text(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def cfg(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "poam-sync.yaml"
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 5, "takeover_seconds": 1}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _wait_linked(world: World, count: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with world.store.read() as tx:
            if len(tx.links("jira")) >= count and len(tx.links("servicenow")) >= count:
                return
        time.sleep(0.2)
    pytest.fail(f"{count} items were not linked on both sides in time")


def _remote_counts(world: World) -> tuple[int, int]:
    return len(world.jira.sim.issues), len(world.snow.sim.records("sn_grc_issue"))


def test_two_daemons_create_each_record_once_and_the_standby_takes_over_after_kill_9(
    world: World, cfg: Path
) -> None:
    world.add(*(poam(n) for n in range(1, 11)))
    daemons = [Proc(world, cfg, "run"), Proc(world, cfg, "run")]
    try:
        _wait_linked(world, 10)
        for d in daemons:
            d.wait_for("daemon.started")
        deadline = time.monotonic() + 30
        while not any("daemon.standby" in d.events() for d in daemons):
            assert time.monotonic() < deadline, [d.text for d in daemons]
            time.sleep(0.1)
        (leader,) = [d for d in daemons if "daemon.standby" not in d.events()]
        (standby,) = [d for d in daemons if d is not leader]
        assert _remote_counts(world) == (10, 10)

        leader.kill()  # SIGKILL: no chance to release anything
        world.add(*(poam(n) for n in range(11, 16)))
        standby.wait_for("daemon.leading")
        _wait_linked(world, 15)
        assert standby.stop() == 0
    finally:
        for d in daemons:
            d.kill()
    assert _remote_counts(world) == (15, 15)
    assert "Traceback" not in standby.text and "JobLookupError" not in standby.text
    assert standby.events()[-1] == "daemon.stopped"


def test_a_sync_while_a_daemon_leads_says_so_and_exits_2_or_waits_its_turn(
    world: World, cfg: Path
) -> None:
    world.add(*(poam(n) for n in range(1, 4)))
    daemon = Proc(world, cfg, "run")
    try:
        _wait_linked(world, 3)
        busy = subprocess.run(
            [sys.executable, "-m", "poam_sync", "--config", str(cfg), "sync", "--once"],
            env={**os.environ, **world.env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert busy.returncode == 2, busy.stderr
        assert "another poam-sync leads this database" in busy.stderr
        assert "--wait" in busy.stderr

        world.add(poam(4))
        waiting = Proc(world, cfg, "sync", "--once", "--wait")
        deadline = time.monotonic() + 60
        while "waiting for the lead" not in waiting.text:
            assert time.monotonic() < deadline and waiting.popen.poll() is None, waiting.text
            time.sleep(0.1)
        assert daemon.stop() == 0
        assert waiting.popen.wait(timeout=120) == 0, waiting.text
    finally:
        daemon.kill()
    _wait_linked(world, 4, seconds=5)
    assert _remote_counts(world) == (4, 4)


def test_two_syncs_started_together_create_each_record_once(world: World, cfg: Path) -> None:
    world.add(*(poam(n) for n in range(1, 9)))
    syncs = [Proc(world, cfg, "sync", "--wait"), Proc(world, cfg, "sync", "--wait")]
    try:
        codes = [s.popen.wait(timeout=180) for s in syncs]
    finally:
        for s in syncs:
            s.kill()
    assert codes == [0, 0], [s.text for s in syncs]
    assert _remote_counts(world) == (8, 8)
