"""Engines for both databases, and migrating the schema to head on open.

SQLite: WAL journal, ``foreign_keys=ON``, a busy timeout, and transactions we begin ourselves
(pysqlite's own implicit BEGIN is switched off, as SQLAlchemy's SQLite dialect documentation
recommends in "Serializable isolation / Savepoints / Transactional DDL"): reads use ``BEGIN``,
writes ``BEGIN IMMEDIATE`` so that two writers queue on the database lock instead of failing
half-way through.

PostgreSQL (``postgresql+psycopg://``): a URL may carry ``?options=-csearch_path%3D<schema>``; every
table, and Alembic's version table, then lives in that schema.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event

log = structlog.get_logger(__name__)

BUSY_TIMEOUT_S = 30
# pg_advisory_xact_lock keys (arbitrary constants, "poam" in ASCII + a suffix)
CHAIN_LOCK_KEY = 0x706F616D_0001
MIGRATE_LOCK_KEY = 0x706F616D_0002
WRITE_OPTION = "poam_sync_write"


def _sqlite_engine(url: sa.URL, *, read_only: bool = False) -> sa.Engine:
    engine = sa.create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    memory = url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        if not memory and not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")  # a write: never on a read-only open
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def create_engine(url: sa.URL, *, read_only: bool = False) -> sa.Engine:
    """An engine for ``url``; ``read_only`` engines never write: no WAL switch on SQLite (whose
    URL is then a ``mode=ro`` / ``immutable`` URI, see _read_only), and on PostgreSQL every
    transaction begins ``READ ONLY`` (psycopg's ``Connection.read_only``)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, read_only=read_only)
    if read_only:
        return sa.create_engine(
            url, pool_pre_ping=True, execution_options={"postgresql_readonly": True}
        )
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration that needs no alembic.ini (migrations ship inside the package)."""
    config = Config()
    location = resources.files("poam_sync.store").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to head, in one transaction; concurrent openers wait for each other.

    A database already at head is left alone without running Alembic's command machinery
    (quicker, and silent: opening a store happens on every CLI command).
    """
    config = alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn, conn.begin():
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATE_LOCK_KEY)))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    log.info("store.migrated", revision=head)
