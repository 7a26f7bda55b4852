"""Opening a store read-only: never create a database, never migrate one, never write.

The read-only commands (``items``, ``log``, ``export``, ``report``, ``conflicts list|show``) use
this, so that a command run in the wrong folder says so instead of making an empty
``poam-sync.db``, and an assessor can verify a copy they may not write.

SQLite (https://www.sqlite.org/uri.html, "Recognized Query Parameters"): ``mode=ro`` opens the
file read-only but SQLite still keeps the WAL protocol, so a reader may create the ``-wal`` and
``-shm`` files beside it (https://www.sqlite.org/wal.html, "Read-Only Databases": a read-only
WAL database opens only if those files exist, can be created, or the database is
``immutable``). ``immutable=1`` tells SQLite the file cannot change at all: no locking, no
change detection, no ``-wal``/``-shm`` files. So a file we may write (in a folder we may
write) opens ``mode=ro``, which still sees a concurrent writer's commits; a file or folder we
may not write (a ``chmod 444`` copy, read-only media; see :func:`_writable`) opens
``immutable=1``, unless its ``-wal`` and ``-shm`` files are already there (then ``mode=ro`` can
read them, and the committed changes still waiting in the ``-wal`` file are not missed).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from poam_sync.errors import StoreUnreadable
from poam_sync.store._engine import alembic_config

MISSING_HINT = "run `poam-sync import` first, or check --db"


def missing(safe: str) -> StoreUnreadable:
    return StoreUnreadable(f"no poam-sync store at {safe}", hint=MISSING_HINT)


def not_a_store(safe: str) -> StoreUnreadable:
    return StoreUnreadable(
        f"{safe} is not a poam-sync store (it has no poam-sync tables)",
        hint="check --db or POAM_SYNC_DATABASE_URL",
    )


def _writable(path: Path) -> bool:
    """May we write the file and its folder? A file without any write permission bit counts as
    not writable even for root, who may write it anyway (a copy made read-only on purpose)."""
    if not path.stat().st_mode & 0o222:
        return False
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def sqlite_url(url: sa.URL, safe: str) -> sa.URL:
    """The read-only URI form of a SQLite URL, or :class:`StoreUnreadable` if there is no file."""
    database = url.database or ""
    if url.query.get("uri") in ("true", "1") or database.startswith("file:"):
        return url  # already a URI: the user chose its mode
    if database in ("", ":memory:"):
        raise missing(safe)  # an in-memory database is always empty
    path = Path(database).resolve()
    if not path.is_file():
        raise missing(safe)
    wal_present = all(Path(f"{path}{suffix}").is_file() for suffix in ("-wal", "-shm"))
    query = {"mode": "ro", "uri": "true"}
    if not _writable(path) and not wal_present:
        query["immutable"] = "1"
    return url.set(database=f"file:{quote(str(path))}", query=query)


def check_revision(engine: sa.Engine, safe: str) -> None:
    """The store must be at this poam-sync's schema revision: reading never migrates."""
    try:
        with engine.connect() as conn, conn.begin():
            has_version = sa.inspect(conn).has_table("alembic_version")
            current = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DatabaseError as exc:
        if engine.dialect.name == "sqlite" and "not a database" in str(exc.orig):
            raise not_a_store(safe) from None
        raise
    if not has_version:
        # an empty PostgreSQL schema is where no store was made yet; a SQLite file is something
        raise missing(safe) if engine.dialect.name == "postgresql" else not_a_store(safe)
    if current is None:
        raise missing(safe)
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if current == head:
        return
    try:
        known = script.get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        raise StoreUnreadable(
            f"the store at {safe} was written by a newer poam-sync (schema revision {current})",
            hint="upgrade poam-sync to read it",
        )
    raise StoreUnreadable(
        f"the store at {safe} was written by an older poam-sync (schema revision {current}, "
        f"this one reads {head})",
        hint="run any writing command (e.g. `poam-sync import`) to migrate it, "
        "or read it with the poam-sync that wrote it",
    )
