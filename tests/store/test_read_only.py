"""Opening a store read-only: it never creates, migrates or writes, and reads a read-only copy."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from poam_sync.errors import StoreError, StoreUnreadable
from poam_sync.model import PoamItem
from poam_sync.store import Store, _read_only

from .factory import make_item


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _write_one(url: str) -> PoamItem:
    item = make_item()
    with Store.open(url) as store, store.begin() as tx:
        tx.save(item, source="cli", actor="ann")
    return item


def test_a_missing_store_is_reported_and_not_created(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreUnreadable) as caught:
        Store.open(db_url, read_only=True)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith("no poam-sync store at ")
    assert "(run `poam-sync import` first, or check --db)" in str(caught.value)
    if db_url.startswith("sqlite"):
        assert list(tmp_path.iterdir()) == []
    else:
        assert _tables(db_url) == set()


def test_an_in_memory_url_is_a_missing_store() -> None:
    with pytest.raises(StoreUnreadable):
        Store.open("sqlite://", read_only=True)


def test_reads_what_a_writer_wrote(db_url: str) -> None:
    item = _write_one(db_url)
    with Store.open(db_url, read_only=True) as store:
        assert store.item("acme", "V-1") == item
        assert store.verify_log().ok
        assert len(store.log()) > 0


def test_a_write_through_a_read_only_store_fails(db_url: str) -> None:
    _write_one(db_url)
    with Store.open(db_url, read_only=True) as store:
        with pytest.raises(StoreError, match="open read-only"), store.begin():
            pass
        # behind the store's API too: the database itself refuses
        with pytest.raises(StoreError, match=r"read.?only"), store.read() as tx:
            tx._conn.execute(sa.text("DELETE FROM change_log"))
    with Store.open(db_url, read_only=True) as store:
        assert store.verify_log().rows_checked > 0


@pytest.mark.parametrize(
    ("revision", "says"),
    [
        ("0001", "written by an older poam-sync"),
        ("9999", "written by a newer poam-sync"),
    ],
)
def test_a_store_at_another_revision_is_reported_not_migrated(
    db_url: str, revision: str, says: str
) -> None:
    _write_one(db_url)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    with pytest.raises(StoreUnreadable, match=says) as caught:
        Store.open(db_url, read_only=True)
    assert caught.value.exit_code == 2
    if revision == "0001":
        assert "`poam-sync import`" in str(caught.value)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert stored == revision


def test_a_sqlite_file_that_is_no_store_is_named_so(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("not a database at all\n" * 50)
    with pytest.raises(StoreUnreadable, match="is not a poam-sync store"):
        Store.open(f"sqlite:///{junk}", read_only=True)
    other = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreUnreadable, match="is not a poam-sync store"):
        Store.open(f"sqlite:///{other}", read_only=True)


@pytest.fixture
def assessor_copy(tmp_path: Path) -> Iterator[Path]:
    """A store's file copied, ``chmod 444``, into a ``chmod 555`` folder."""
    original = tmp_path / "poam-sync.db"
    _write_one(f"sqlite:///{original}")
    folder = tmp_path / "handed-over"
    folder.mkdir()
    copy = folder / "poam-sync.db"
    shutil.copyfile(original, copy)
    copy.chmod(0o444)
    folder.chmod(0o555)
    yield copy
    folder.chmod(0o755)


def _deny_writes(monkeypatch: pytest.MonkeyPatch, under: Path) -> None:
    """``os.access`` as an unprivileged user sees it (root, running these tests, may write)."""
    real = os.access

    def access(path: str | os.PathLike[str], mode: int, **kwargs: object) -> bool:
        if mode & os.W_OK and Path(path).resolve().is_relative_to(under.resolve()):
            return False
        return real(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_read_only.os, "access", access)


def test_a_read_only_copy_in_a_read_only_folder_is_read_without_a_trace(
    assessor_copy: Path,
) -> None:
    before = sorted(p.name for p in assessor_copy.parent.iterdir())
    with Store.open(f"sqlite:///{assessor_copy}", read_only=True) as store:
        assert store.verify_log().ok
        assert [i.poam_id for i in store.items()] == ["V-1"]
        assert sorted(p.name for p in assessor_copy.parent.iterdir()) == before
    assert before == ["poam-sync.db"]  # no -wal, no -shm


def test_immutable_is_chosen_when_the_file_may_not_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "poam-sync.db"
    _write_one(f"sqlite:///{path}")
    url = sa.make_url(f"sqlite:///{path}")
    writable = _read_only.sqlite_url(url, "x")
    assert writable.query == {"mode": "ro", "uri": "true"}
    assert writable.database == f"file:{path}"
    _deny_writes(monkeypatch, tmp_path)
    assert _read_only.sqlite_url(url, "x").query["immutable"] == "1"
    with Store.open(f"sqlite:///{path}", read_only=True) as store:
        assert store.verify_log().ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poam-sync.db"]


def test_a_read_only_file_with_its_wal_files_is_read_through_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "poam-sync.db"
    _write_one(f"sqlite:///{path}")
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").touch()
    _deny_writes(monkeypatch, tmp_path)
    assert "immutable" not in _read_only.sqlite_url(sa.make_url(f"sqlite:///{path}"), "x").query


@pytest.mark.postgres
def test_postgres_read_only_connections_refuse_writes(postgres_url: str) -> None:
    _write_one(postgres_url)
    with Store.open(postgres_url, read_only=True) as store, store._engine.connect() as conn:
        readonly = conn.exec_driver_sql("SHOW transaction_read_only").scalar_one()
        assert readonly == "on"
