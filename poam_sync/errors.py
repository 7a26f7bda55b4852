"""The one exception hierarchy of poam-sync.

Every error we raise on purpose derives from :class:`PoamSyncError`; the CLI turns any of them
into one clear message and an exit code, never a traceback::

    PoamSyncError                 anything poam-sync raises on purpose      (exit 1)
    ├── UsageError                a command used wrongly                     (exit 2)
    │   └── SettlementRefused     a conflict that cannot be settled so       (exit 2)
    ├── ConfigError               configuration file or environment invalid  (exit 2)
    ├── InputError                a file that cannot be imported at all      (exit 1)
    ├── StoreError                the canonical store
    │   ├── ItemNotFound          no item with that POA&M ID
    │   ├── DuplicateItem         two items would share (system, POA&M ID)
    │   ├── StoreUnreadable       read-only: no store there, or not at this   (exit 2)
    │   │                         poam-sync's schema revision
    │   ├── LeaderBusy            another process holds the database's leader (exit 2)
    │   │                         lock (a daemon leads it)
    │   ├── LeadershipLost        the leader lock was lost mid-cycle: no more writes
    │   └── ChainBroken           the change log hash chain does not verify
    ├── RemoteError               Jira / ServiceNow (carries connector and key)
    │   ├── RemoteTransientError  429, 5xx, timeouts: retry later (``retry_after``)
    │   ├── RemoteUnreachable     refused, name not resolved, TLS / CA bundle: not retried
    │   ├── RemoteAuthError       401 / 403
    │   ├── RemoteRejected        the remote refused the request (4xx)
    │   └── RecordGone            a linked remote record no longer exists
    └── SyncError                 the sync engine
        └── GuardTripped          a cycle would change too much, or a side looks empty

:class:`Problem` is the plain record of one thing wrong with an input or a field, used both in
errors and in reports.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, with where it is and what to do about it."""

    message: str
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    hint: str | None = None
    code: str = "invalid"

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.sheet:
            parts.append(f"sheet {self.sheet!r}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class PoamSyncError(Exception):
    """Base of every error poam-sync raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(PoamSyncError):
    exit_code = 2


class SettlementRefused(UsageError):
    """A conflict settlement that cannot be made (already settled, a wrong side, no reason):
    its own class so the CLI, the daemon and the web workbench can tell it from other misuse."""


class ConfigError(PoamSyncError):
    exit_code = 2


class InputError(PoamSyncError):
    """A file that cannot be imported at all (not a workbook, no header, XML bomb...)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class StoreError(PoamSyncError):
    pass


class ItemNotFound(StoreError):
    """What the user named (a POA&M ID, a conflict id) is not in the store: the command could
    not run as asked."""

    exit_code = 2


class DuplicateItem(StoreError):
    pass


class StoreUnreadable(StoreError):
    """A read-only command found no poam-sync store at the URL (it never creates one), or one it
    cannot read without migrating it: the user points at the wrong place or must run a writing
    command first."""

    exit_code = 2


class LeaderBusy(StoreError):
    """Another process leads this database (holds its leader lock): a second sync now could
    create what the leader is creating."""

    exit_code = 2


class LeadershipLost(StoreError):
    """The leader lock is gone (its connection dropped, its lock file replaced): this process
    must not write another thing until it leads again."""


class ChainBroken(StoreError):
    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message, hint="restore the database from a backup and investigate")
        self.seq = seq


class RemoteError(PoamSyncError):
    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        key: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.connector = connector
        self.key = key
        self.status = status

    def retold(self, message: str) -> RemoteError:
        """The same error (class, connector, key, status, hint) saying ``message``."""
        return type(self)(
            message, connector=self.connector, key=self.key, status=self.status, hint=self.hint
        )


class RemoteTransientError(RemoteError):
    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        connector: str | None = None,
        key: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, connector=connector, key=key, status=status, hint=hint)
        self.retry_after = retry_after

    def retold(self, message: str) -> RemoteTransientError:
        return RemoteTransientError(
            message,
            retry_after=self.retry_after,
            connector=self.connector,
            key=self.key,
            status=self.status,
            hint=self.hint,
        )


class RemoteUnreachable(RemoteError):
    """The remote cannot be reached at all: connection refused, a host name that does not
    resolve, a TLS certificate that does not verify, a CA bundle that cannot be read. Retrying
    within seconds does not help, so it is not retried; the message names the URL."""


class RemoteAuthError(RemoteError):
    pass


class RemoteRejected(RemoteError):
    pass


class RecordGone(RemoteError):
    pass


class SyncError(PoamSyncError):
    pass


class GuardTripped(SyncError):
    def __init__(self, message: str, *, connector: str | None = None) -> None:
        super().__init__(message, hint="check the connector, then rerun with --force if intended")
        self.connector = connector
