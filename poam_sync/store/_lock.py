"""The leader lock: one process at a time syncs a database (a daemon, or ``sync``).

Two syncs on one store both plan the same creates; the lock makes sure only one of them runs.
Standbys poll for it and take over once the leader is gone, whatever way it went.

PostgreSQL: a *session-level* advisory lock (``pg_try_advisory_lock``) held on a connection of
its own, opened for nothing else. The PostgreSQL manual ("Advisory Locks", and "Advisory Lock
Functions" in "System Administration Functions",
https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS) says a session
lock is held until released explicitly or the session ends: a leader killed with ``kill -9``
closes its socket, the server ends its session, and the lock is free for a standby. The key is
derived from the schema the store lives in (``current_schema()``), so two stores in two schemas
of one database have a leader each. TCP keepalives on the lock connection let both ends notice
a peer that vanished without closing the socket.

SQLite: an exclusive ``flock`` (``LOCK_EX | LOCK_NB``) on ``<database>.lock`` beside the file.
flock(2) says the lock belongs to the open file description and is released when every
descriptor of it is closed, which the kernel does for a process that dies however it dies. A
lock file deleted or replaced under a leader could be locked anew by another process; so the
leader's check also compares the file it holds with the one at the path.

:meth:`LeaderLock.check` raises :class:`LeadershipLost` when the lock is no longer ours: the
engine calls it before each item it applies and before each remote write, so a leader that
lost its lock stops writing at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
import structlog
from sqlalchemy.pool import NullPool

from poam_sync.errors import LeaderBusy, LeadershipLost, StoreError

log = structlog.get_logger(__name__)

# libpq keepalive parameters (https://www.postgresql.org/docs/current/libpq-connect.html):
# probe an idle lock connection after 5 s, every 2 s, give up after 3 unanswered probes.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
_KEY_MASK = 0x7FFF_FFFF_FFFF_FFFF  # a positive bigint: pg_locks shows it as classid << 32 | objid


def _me() -> str:
    return f"poam-sync pid {os.getpid()} on {socket.gethostname()}"


class LeaderLock(ABC):
    """The database's leader lock, held or not by this process."""

    #: what is locked, for messages (no password)
    what: str

    def __init__(self) -> None:
        self._held = False
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        return self._held

    @abstractmethod
    def _try(self) -> bool:
        """Take the lock if it is free (never waits)."""

    @abstractmethod
    def _alive(self) -> bool:
        """Is the lock taken by :meth:`_try` still ours?"""

    @abstractmethod
    def _drop(self) -> None:
        """Let the lock go (whatever state the connection or file is in)."""

    @abstractmethod
    def holder(self) -> str | None:
        """Who holds the lock now, as far as can be told (None: unknown, or nobody)."""

    def try_acquire(self) -> bool:
        with self._mutex:
            if not self._held:
                self._held = self._try()
            return self._held

    def acquire(
        self,
        *,
        wait: bool,
        poll_seconds: float,
        stop: threading.Event | None = None,
        waiting: Callable[[str | None], None] | None = None,
    ) -> bool:
        """Take the lock; with ``wait``, poll every ``poll_seconds`` until it is free or
        ``stop`` is set (then False). Without ``wait``, :class:`LeaderBusy` when it is taken.
        ``waiting`` is told the holder once, when the lock is first found taken."""
        told = False
        while True:
            try:
                if self.try_acquire():
                    return True
            except StoreError as exc:  # the database is away: a standby keeps trying
                if not wait:
                    raise
                log.warning("leader.lock_unavailable", lock=self.what, error=str(exc))
            else:
                if not wait:
                    holder = self.holder()
                    raise LeaderBusy(
                        f"another poam-sync leads this database ({holder or 'holder unknown'}; "
                        f"{self.what})",
                        hint="let the running daemon sync, or add --wait to run once it is free",
                    )
                if not told and waiting is not None:
                    waiting(self.holder())
                told = True
            if stop is None:
                threading.Event().wait(poll_seconds)
            elif stop.wait(poll_seconds):
                return False

    def check(self) -> None:
        """Raise :class:`LeadershipLost` unless the lock is still ours."""
        with self._mutex:
            if self._held and self._alive():
                return
            was_held = self._held
            self._held = False
            with contextlib.suppress(Exception):
                self._drop()
        if was_held:
            log.error("leader.lock_lost", lock=self.what)
        raise LeadershipLost(
            f"this process no longer holds the leader lock ({self.what}); it writes nothing more",
            hint="another process may lead now; this one stands by until the lock is free",
        )

    def release(self) -> None:
        with self._mutex:
            if self._held:
                self._held = False
                with contextlib.suppress(Exception):
                    self._drop()

    def __enter__(self) -> LeaderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.close()

    def close(self) -> None:
        """Release anything kept for taking the lock again."""


class NoLock(LeaderLock):
    """An in-memory SQLite store: no other process can reach it, so this one always leads."""

    what = "in-memory database (no lock needed)"

    def _try(self) -> bool:
        return True

    def _alive(self) -> bool:
        return True

    def _drop(self) -> None:
        pass

    def holder(self) -> str | None:
        return None


class FileLock(LeaderLock):
    """``flock`` on a lock file beside the SQLite database."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.what = f"lock file {path.name} beside the database"
        self._fd: int | None = None

    def _try(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot open the lock file {self.path}: {exc.strerror}",
                hint="the database's folder must be writable by poam-sync",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, _me().encode())
        self._fd = fd
        return True

    def _alive(self) -> bool:
        if self._fd is None:
            return False
        try:
            mine, there = os.fstat(self._fd), self.path.stat()
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)

    def _drop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock

    def holder(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text or None


class AdvisoryLock(LeaderLock):
    """A session-level PostgreSQL advisory lock on a connection of its own."""

    def __init__(self, url: sa.URL, safe_url: str) -> None:
        super().__init__()
        args: dict[str, object] = {**_KEEPALIVES, "application_name": _me()[:63]}
        self._engine = sa.create_engine(url, poolclass=NullPool, connect_args=args)
        self._conn: sa.Connection | None = None
        self._key: int | None = None
        self.what = f"advisory lock on {safe_url}"

    def _connect(self) -> sa.Connection:
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        except sa.exc.DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(
                f"cannot reach the database for the leader lock: {detail}",
                hint="check that PostgreSQL is running and the URL is right",
            ) from None
        digest = hashlib.blake2b(f"poam-sync leader:{schema}".encode(), digest_size=8).digest()
        self._key = int.from_bytes(digest, "big") & _KEY_MASK
        return conn

    def _try(self) -> bool:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        try:
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar_one()
        except sa.exc.DBAPIError:
            self._drop()
            raise
        return bool(got)

    def _mine(self, conn: sa.Connection) -> bool:
        found = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objsubid = 1 "
                "AND ((classid::bigint << 32) | objid::bigint) = :key"
            ),
            {"key": self._key},
        ).scalar_one()
        return bool(found)

    def _alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            return self._mine(self._conn)
        except sa.exc.DBAPIError:
            return False

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            # unlocked at once; closing alone frees it only when the server ends the session
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        with contextlib.suppress(Exception):
            conn.close()  # the session ends, and any lock with it

    def holder(self) -> str | None:
        if self._key is None:
            return None
        try:
            with self._engine.connect() as conn:
                name = conn.execute(
                    sa.text(
                        "SELECT a.application_name FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                        "AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"
                    ),
                    {"key": self._key},
                ).scalar()
        except sa.exc.DBAPIError:
            return None
        return str(name) if name else None

    def close(self) -> None:
        self._drop()
        self._engine.dispose()


def leader_lock(url: str) -> LeaderLock:
    """The leader lock of the store at ``url`` (not yet taken)."""
    from poam_sync.store._store import _safe_url

    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return AdvisoryLock(parsed, _safe_url(url))
    database = parsed.database or ""
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    if database in ("", ":memory:") or "mode=memory" in url:
        return NoLock()
    path = Path(database)
    return FileLock(path.with_name(path.name + ".lock"))
