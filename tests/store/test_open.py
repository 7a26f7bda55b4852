"""Opening a store: migrations to head, one schema per URL, clear errors without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from poam_sync.errors import ConfigError, StoreError
from poam_sync.store import Store
from poam_sync.store._schema import metadata

from .conftest import make_item


def test_migrations_create_exactly_the_declared_schema(store: Store, raw: sa.Engine) -> None:
    with raw.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == "0001"
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
    with Store.open(postgres_url):
        pass
    engine = sa.create_engine(postgres_url)
    try:
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
            public = set(
                conn.execute(
                    sa.text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'public' AND table_name = 'alembic_version'"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    assert schema.startswith("t_")
    assert {"alembic_version", "items", "change_log", "links", "conflicts"} <= tables
    assert public == set()


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
