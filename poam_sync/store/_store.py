"""The canonical store: items, the hash-chained change log, and the sync engine's state.

:class:`Store` owns the engine; :meth:`Store.begin` opens one transaction as a :class:`StoreTx`,
through which every write goes. An item's new value, its change-log rows and any sync state
written in the same ``begin()`` block commit together or not at all.

A :class:`StoreTx` is composed of one mixin class per job, all sharing the transaction's
connection and clock (``_tx``): the items (``_items``), the change log and its hash chain, with
how appends are serialized between writers (``_changelog``), the per-connector sync state
(``_sync_state``) and its reads by uuid for an incremental cycle (``_sync_reads``), the claims
on remote creates (``_claims``), conflicts and problems (``_conflicts``), the workbench's
accounts (``_users``), browsing items in SQL (``_browse``) and the notifications sent
(``_notified``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from alembic.util import CommandError

from poam_sync.errors import ConfigError, ItemNotFound, StoreError
from poam_sync.model import PoamItem
from poam_sync.store import _read_only
from poam_sync.store._browse import BrowseTx
from poam_sync.store._claims import ClaimsTx
from poam_sync.store._conflicts import ConflictsTx
from poam_sync.store._engine import WRITE_OPTION, create_engine, migrate
from poam_sync.store._items import ItemsTx
from poam_sync.store._notified import NotifiedTx
from poam_sync.store._rows import ChangeRow, LogQuery, VerifyResult
from poam_sync.store._sync_reads import SyncReadsTx
from poam_sync.store._sync_state import SyncStateTx
from poam_sync.store._tx import _now
from poam_sync.store._users import UsersTx

_URL_HINT = (
    "give a URL like sqlite:///poam-sync.db or postgresql+psycopg://user@host:5432/dbname "
    "(--db or POAM_SYNC_DATABASE_URL)"
)


def _safe_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        # not parseable: keep only the scheme so that nothing secret is echoed
        return url.split("://", 1)[0] + "://..." if "://" in url else "<unparseable URL>"


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class StoreTx(
    ItemsTx, SyncStateTx, SyncReadsTx, ClaimsTx, ConflictsTx, UsersTx, BrowseTx, NotifiedTx
):
    """One database transaction of the store (get one from :meth:`Store.begin`).

    Every method comes from the mixins of the module docstring: a caller sees one object, and a
    reader finds each job in a module of its own.
    """


def _migrate_retrying_locks(engine: sa.Engine, attempts: int = 6) -> None:
    """Migrate; on SQLite, retry briefly when another process holds the lock.

    Two processes opening a brand-new SQLite file at once can meet "database is locked"
    straight away (switching the file to WAL takes an exclusive lock that the busy timeout does
    not always wait for); the second one simply tries again a moment later.
    """
    for attempt in range(1, attempts + 1):
        try:
            migrate(engine)
            return
        except sa.exc.OperationalError as exc:
            locked = engine.dialect.name == "sqlite" and "locked" in str(exc.orig)
            if not locked or attempt == attempts:
                raise
            time.sleep(0.1 * attempt)


class Store:
    """The canonical record. Open with :meth:`open`; write inside :meth:`begin`."""

    def __init__(self, engine: sa.Engine, *, safe_url: str, read_only: bool = False) -> None:
        self._engine = engine
        self.read_only = read_only
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self.url = safe_url  # without any password
        self._local = threading.local()
        self.clock: Callable[[], datetime] = _now

    @classmethod
    def open(cls, url: str, *, read_only: bool = False) -> Store:
        """Open the database at ``url`` and migrate its schema to the newest revision.

        ``read_only``: never create, migrate or write (see _read_only): a missing store, or one
        at another schema revision, raises :class:`StoreUnreadable`; :meth:`begin` refuses.
        """
        safe = _safe_url(url)
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigError(f"{safe} is not a database URL", hint=_URL_HINT) from None
        if parsed.drivername in ("postgresql", "postgres"):
            # psycopg 3 is the driver we ship; SQLAlchemy would look for psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"unsupported database {safe}: poam-sync stores its record in SQLite or PostgreSQL",
                hint=_URL_HINT,
            )
        if read_only and parsed.get_backend_name() == "sqlite":
            parsed = _read_only.sqlite_url(parsed, safe)
        try:
            engine = create_engine(parsed, read_only=read_only)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise ConfigError(
                f"cannot use the database URL {safe}: {_scrub(str(exc), parsed.password)}",
                hint=_URL_HINT,
            ) from None
        try:
            if read_only:
                _read_only.check_revision(engine, safe)
            else:
                _migrate_retrying_locks(engine)
        except StoreError:
            engine.dispose()
            raise
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            detail = _scrub(str(exc.orig).strip().splitlines()[0], parsed.password)
            raise StoreError(
                f"cannot open the database {safe}: {detail}",
                hint="check that the server is running and the URL is right; for SQLite, that "
                "the directory exists and is writable (--db or POAM_SYNC_DATABASE_URL)",
            ) from None
        except CommandError as exc:
            engine.dispose()
            raise StoreError(
                f"cannot migrate the database {safe}: {exc}",
                hint="the database was probably written by a newer poam-sync; upgrade poam-sync",
            ) from None
        return cls(engine, safe_url=safe, read_only=read_only)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def begin(self) -> Iterator[StoreTx]:
        """One write transaction: committed when the block ends, rolled back on an exception."""
        if self.read_only:
            raise StoreError(
                f"the store at {self.url} is open read-only: nothing can be written through it",
                hint="open it with Store.open(url) (read_only=False) to write",
            )
        if getattr(self._local, "writing", False):
            # a second writer in the same thread would wait forever for the first one's lock
            raise StoreError(
                "a write transaction of this store is already open in this thread",
                hint="pass the open StoreTx along instead of calling begin() again",
            )
        self._local.writing = True
        try:
            with self._database_errors(), self._writer.begin() as conn:
                yield StoreTx(conn, clock=self.clock)
        finally:
            self._local.writing = False

    @contextmanager
    def read(self) -> Iterator[StoreTx]:
        """A transaction for reading only: one consistent view, without taking the write lock.

        On SQLite, ``begin()`` holds the database's write lock for the whole block; use this
        for long reads (planning a sync cycle, reports) so that writers are not kept waiting.
        Writing through it is not supported.
        """
        with self._database_errors(), self._engine.connect() as conn, conn.begin():
            yield StoreTx(conn, clock=self.clock)

    @contextmanager
    def _database_errors(self) -> Iterator[None]:
        """A failing database (connection lost, locked file, full disk) as a StoreError: the
        transaction is rolled back, and the caller decides (the engine retries the item)."""
        try:
            yield
        except sa.exc.DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(
                f"database error on {self.url}: {detail}",
                hint="the change was rolled back; check the database and run again",
            ) from exc

    def items(self, system: str | None = None) -> list[PoamItem]:
        with self.read() as tx:
            return tx.items(system)

    def item(self, system: str, poam_id: str) -> PoamItem:
        with self.read() as tx:
            found = tx.get(system, poam_id)
        if found is None:
            raise ItemNotFound(
                f"no item {poam_id!r} in system {system!r}",
                hint="list the items with: poam-sync items list",
            )
        return found

    def find(self, poam_id: str) -> list[PoamItem]:
        with self.read() as tx:
            return tx.find(poam_id)

    def log(self, *, item_uuid: str | None = None, limit: int | None = None) -> list[ChangeRow]:
        with self.read() as tx:
            return tx.log(item_uuid=item_uuid, limit=limit)

    def iter_log(self, query: LogQuery, *, newest: int | None = None) -> Iterator[ChangeRow]:
        """The rows ``query`` asks for, oldest first (only the ``newest`` N when given), read a
        page at a time, each page in its own short read: memory stays flat on any log size."""
        with self.read() as tx:
            after = tx.last_seqs(query, newest) if newest is not None else 0
        left = newest
        while left is None or left > 0:
            size = 1000 if left is None else min(1000, left)
            with self.read() as tx:
                page = tx.log_page(query, after=after, size=size)
            yield from page
            if len(page) < size:
                return
            after = page[-1].seq
            if left is not None:
                left -= len(page)

    def verify_log(self) -> VerifyResult:
        with self.read() as tx:
            return tx.verify_log()
