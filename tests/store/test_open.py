"""Opening a store: migrations to head, one schema per URL, clear errors without secrets."""

from __future__ import annotations

import threading
from pathlib import Path

import alembic.config
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import poam_sync.store
from poam_sync.errors import ConfigError, StoreError
from poam_sync.store import Store
from poam_sync.store._engine import alembic_config
from poam_sync.store._schema import metadata

from .factory import make_item


def test_migrations_create_exactly_the_declared_schema(store: Store, raw: sa.Engine) -> None:
    with raw.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        # the newest revision (the chain grows as features land): one head, reached on open
        from alembic.script import ScriptDirectory

        from poam_sync.store._engine import alembic_config

        (head,) = ScriptDirectory.from_config(alembic_config()).get_heads()
        assert context.get_current_revision() == head
        assert compare_metadata(context, metadata) == []


def test_reopening_keeps_data_and_does_not_migrate_again(db_url: str) -> None:
    item = make_item()
    with Store.open(db_url) as first, first.begin() as tx:
        tx.save(item, source="cli", actor="ann")
    with Store.open(db_url) as second:
        assert second.item("acme", "V-1") == item
        assert second.verify_log().ok


@pytest.mark.postgres
def test_postgres_tables_and_version_table_live_in_the_urls_schema(
    postgres_url: str,
) -> None:
    engine = sa.create_engine(postgres_url)

    def public_tables(conn: sa.Connection) -> set[str]:
        # Whatever else uses the database's public schema (a user's own store) is left alone:
        # the test only checks that opening this store added nothing there.
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        return set(conn.execute(sa.text(query)).scalars())

    try:
        with engine.connect() as conn:
            public_before = public_tables(conn)
        with Store.open(postgres_url):
            pass
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
            tables = set(
                conn.execute(
                    sa.text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    ),
                    {"s": schema},
                ).scalars()
            )
            public_after = public_tables(conn)
    finally:
        engine.dispose()
    assert schema.startswith("t_")
    assert {"alembic_version", "items", "change_log", "links", "conflicts"} <= tables
    assert public_after == public_before


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store, store.begin() as tx:
        conn = tx._conn  # the connection the store configured
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql+psycopg://auditor:s3cr3t-pw@127.0.0.1:1/poam"
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    text = str(caught.value)
    assert "s3cr3t-pw" not in text
    assert "postgresql+psycopg://auditor:***@127.0.0.1:1/poam" in text
    assert caught.value.hint is not None
    assert "POAM_SYNC_DATABASE_URL" in caught.value.hint


def test_a_sqlite_file_in_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'poam.db'}"
    with pytest.raises(StoreError, match="cannot open the database sqlite:///") as caught:
        Store.open(url)
    assert "unable to open database file" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://root:hunter2@db/poam", "unsupported database mysql://root:***@db/poam"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Store.open(url)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is a text file, not SQLite " * 64)
    with pytest.raises(StoreError, match="file is not a database"):
        Store.open(f"sqlite:///{path}")


def test_two_processes_opening_a_fresh_database_at_once_both_succeed(db_url: str) -> None:
    opened: list[Store] = []
    failures: list[Exception] = []
    start = threading.Barrier(2)

    def opener() -> None:
        start.wait()
        try:
            opened.append(Store.open(db_url))
        except Exception as exc:  # noqa: BLE001 - handed to the main thread
            failures.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        assert len(opened) == 2
        with opened[0].begin() as tx:
            tx.save(make_item(), source="cli", actor="ann")
        assert opened[1].item("acme", "V-1").poam_id == "V-1"
    finally:
        for store in opened:
            store.close()


def test_read_gives_one_view_without_the_write_lock(store: Store) -> None:
    with store.begin() as tx:
        tx.save(make_item("V-1"), source="cli", actor="ann")
    with store.read() as reader:
        before = reader.all_items()
        # a writer is not kept waiting by the open read transaction
        with store.begin() as tx:
            tx.save(make_item("V-2"), source="cli", actor="ann")
        assert [i.poam_id for i in before] == ["V-1"]
    assert [i.poam_id for i in store.items()] == ["V-1", "V-2"]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_plain_postgresql_url_uses_psycopg_3(scheme: str) -> None:
    # psycopg2 is not a dependency: a plain URL must still reach the server (here: nobody there)
    with pytest.raises(StoreError, match="cannot open the database") as caught:
        Store.open(f"{scheme}://auditor:pw-9x@127.0.0.1:1/poam")
    assert f"{scheme}://auditor:***@127.0.0.1:1/poam" in str(caught.value)
    assert "pw-9x" not in str(caught.value)


@pytest.mark.postgres
def test_a_plain_postgresql_url_opens_the_store(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with Store.open(plain) as store:
        assert store.verify_log().ok


def test_the_developer_alembic_command_works_with_the_bundled_ini(sqlite_url: str) -> None:
    ini = str(Path(poam_sync.store.__file__).with_name("alembic.ini"))
    alembic.config.main(argv=["-c", ini, "-x", f"db={sqlite_url}", "upgrade", "head"])
    alembic.config.main(argv=["-c", ini, "-x", f"db={sqlite_url}", "check"])
    with Store.open(sqlite_url) as store:
        assert store.verify_log().ok
    alembic.config.main(argv=["-c", ini, "-x", f"db={sqlite_url}", "downgrade", "base"])
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == ["alembic_version"]
    finally:
        engine.dispose()


def test_pending_intents_of_an_older_store_become_pending_claims(tmp_path: Path) -> None:
    """Revision 0004 turns the intents of a create in flight into claims whoever leads next
    may take over (their writer is gone); finished intents were history only."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    alembic.command.upgrade(config, "0002")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO items (uuid, system, poam_id, status, updated_at, data) "
                "VALUES ('u1', 'acme', 'V-1', 'open', '2026-01-01 00:00:00', :data)"
            ),
            {"data": '{"poam_id": "V-1", "system": "acme", "uuid": "u1"}'},  # a stored item
        )
        for token, finished in (("t1", None), ("t2", None), ("t3", "2026-01-02 00:00:00")):
            conn.execute(
                sa.text(
                    "INSERT INTO intents (item_uuid, connector, token, created_at, finished_at) "
                    "VALUES ('u1', :c, :t, '2026-01-01 00:00:00', :f)"
                ),
                {"c": "jira" if token != "t3" else "servicenow", "t": token, "f": finished},
            )
    engine.dispose()
    alembic.command.upgrade(config, "0004")
    with Store.open(url) as store, store.read() as tx:
        [claim] = tx.pending_claims("jira")
        assert (claim.token, claim.leader, claim.attempt) == ("t1", True, 1)
        assert tx.pending_claims("servicenow") == []
