"""A fresh or restored store never duplicates: remote records carrying our stamp are adopted.

An empty database (a new container), last week's backup, or a store rebuilt by importing the
POA&M file again (new uuids) meet remotes that are already synced: nothing is created twice.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
import yaml

from poam_sync.store import Store
from tests.sync.conftest import ROOT, World, config_dict, poam

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(autouse=True)
def _close_reopened(world: World) -> Iterator[None]:
    original = world.store
    yield
    if world.store is not original:
        world.store.close()


def _remote_counts(world: World) -> tuple[int, int]:
    return len(world.jira.sim.issues), len(world.snow.sim.records("sn_grc_issue"))


def _wipe(world: World) -> None:
    """The database is lost: the store starts again empty, at the same URL."""
    for ctx in world.engines:
        ctx.__exit__(None, None, None)
    world.engines.clear()
    world.store.close()
    url = sa.make_url(world.db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        for extra in ("", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
    else:
        schema = _schema(url)
        admin = sa.create_engine(url.set(query={}))
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    world.store = Store.open(world.db_url)


def test_an_empty_store_adopts_everything_already_synced_and_creates_nothing(
    world: World,
) -> None:
    items = [poam(n) for n in range(1, 6)]
    world.add(*items)
    assert world.engine().run_cycle().ok
    _wipe(world)

    report = world.engine().run_cycle()

    assert report.ok, report.errors
    assert dict(report.created) == {}
    assert (
        report.imported == 5 and report.adopted == 5
    )  # restored from one side, linked on the other
    restored = {i.poam_id: i for i in world.store.items()}
    for item in items:
        again = restored[item.poam_id]
        assert again.uuid == item.uuid  # the stamp's uuid: the same item, not a new one
        assert (again.title, again.status, again.scheduled_completion_date) == (
            item.title,
            item.status,
            item.scheduled_completion_date,
        )
    with world.store.read() as tx:
        assert len(tx.links("jira")) == len(tx.links("servicenow")) == 5
    assert _remote_counts(world) == (5, 5)
    later = world.engine().run_cycle()
    assert later.ok and dict(later.created) == {} and later.conflicts == 0
    assert _remote_counts(world) == (5, 5)


def _backup(world: World, to: Path) -> None:
    """A backup as an admin takes one: SQLite's online backup, or pg_dump of the schema."""
    url = sa.make_url(world.db_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database or "") as source, sqlite3.connect(to) as copy:
            source.backup(copy)  # the WAL's commits included
        source.close()
        copy.close()
        return
    subprocess.run(
        ["pg_dump", "--format=custom", f"--schema={_schema(url)}", "-f", str(to), _libpq(url)],
        check=True,
        timeout=60,
    )


def _restore(world: World, backup: Path) -> None:
    """Stop, put the backup in place, start again."""
    for ctx in world.engines:
        ctx.__exit__(None, None, None)
    world.engines.clear()
    world.store.close()
    url = sa.make_url(world.db_url)
    if url.get_backend_name() == "sqlite":
        db = Path(url.database or "")
        for extra in ("-wal", "-shm"):
            Path(f"{db}{extra}").unlink(missing_ok=True)
        shutil.copy(backup, db)
    else:
        admin = sa.create_engine(url.set(query={}))
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{_schema(url)}" CASCADE'))
        admin.dispose()
        subprocess.run(["pg_restore", "-d", _libpq(url), str(backup)], check=True, timeout=60)
    world.store = Store.open(world.db_url)


def _schema(url: sa.URL) -> str:
    return unquote(str(url.query["options"])).split("=", 1)[1]


def _libpq(url: sa.URL) -> str:
    return url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)


def test_last_weeks_backup_adopts_what_was_created_since(world: World, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None and "postgresql" in world.db_url:
        pytest.skip("pg_dump and pg_restore are needed to back PostgreSQL up")
    world.add(*(poam(n) for n in range(1, 4)))
    assert world.engine().run_cycle().ok
    backup = tmp_path / "backup.db"
    _backup(world, backup)
    world.add(*(poam(n) for n in range(4, 7)))
    assert world.engine().run_cycle().ok
    _restore(world, backup)

    report = world.engine().run_cycle()

    assert report.ok, report.errors
    assert dict(report.created) == {}
    assert report.imported == 3 and report.adopted == 3
    assert _remote_counts(world) == (6, 6)
    assert sorted(i.poam_id for i in world.store.items()) == [f"V-{n}" for n in range(1, 7)]


def _cli(world: World, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poam_sync", "--config", str(cfg), *args],
        env={**os.environ, **world.env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_store_rebuilt_from_the_csv_links_the_stamped_records_instead_of_creating(
    world: World, tmp_path: Path
) -> None:
    cfg = tmp_path / "poam-sync.yaml"
    cfg.write_text(yaml.safe_dump(config_dict(world)), encoding="utf-8")
    world.add(*(poam(n) for n in range(1, 6)))
    assert world.engine().run_cycle().ok
    csv = tmp_path / "poam.csv"
    exported = _cli(world, cfg, "export", "--format", "csv", "-o", str(csv))
    assert exported.returncode == 0, exported.stderr
    old_uuids = {i.uuid for i in world.store.items()}
    _wipe(world)
    world.store.close()
    imported = _cli(world, cfg, "import", "--system", "acme", str(csv))
    assert imported.returncode == 0, imported.stderr
    world.store = Store.open(world.db_url)
    assert len(world.store.items()) == 5

    synced = _cli(world, cfg, "sync", "--json")

    assert synced.returncode == 0, synced.stderr
    summary = json.loads(synced.stdout)
    assert summary["created"] == {} and summary["imported"] == 0, summary
    assert summary["adopted"] == 10  # each item's Jira issue and ServiceNow record
    assert _remote_counts(world) == (5, 5)
    with world.store.read() as tx:
        assert len(tx.links("jira")) == len(tx.links("servicenow")) == 5
    if old_uuids & {i.uuid for i in world.store.items()}:
        pytest.fail("the CSV kept the uuids: this test no longer shows a rebuilt store")
