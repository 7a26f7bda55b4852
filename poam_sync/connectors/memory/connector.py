"""The memory connector: the smallest complete :class:`Connector`, and the one to copy.

Each method says what the sync engine relies on. The remote here is a
:class:`~poam_sync.connectors.memory.remote.MemoryRemote` in this process; a real connector
puts its API client where ``self.remote`` is and keeps everything else: translate the remote's
failures into ``poam_sync.errors``, retry only what is safe to repeat, speak canonical values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from poam_sync.connectors._http import RetryPolicy, with_retries
from poam_sync.connectors.base import (
    Connector,
    FieldProblem,
    RemoteRecord,
    Stamp,
    SyncValue,
    SyncValues,
    WriteResult,
    as_milestones,
    as_strings,
    mark_note,
    parse_note,
)
from poam_sync.connectors.memory.mapping import MemoryMapping
from poam_sync.connectors.memory.remote import (
    DEFAULT_TITLE_LIMIT,
    MemoryFault,
    MemoryRemote,
    StoredRecord,
)
from poam_sync.connectors.memory.settings import MemorySettings
from poam_sync.errors import (
    RecordGone,
    RemoteAuthError,
    RemoteError,
    RemoteRejected,
    RemoteTransientError,
)
from poam_sync.model import Note

T = TypeVar("T")


def translate(exc: MemoryFault, *, connector: str, key: str | None, what: str) -> RemoteError:
    """The remote's failure as ours: the engine decides what to do by the class alone."""
    where = f"{what} on {key}" if key else what
    status = exc.status
    if status == 429 or status >= 500:  # later, maybe after ``retry_after`` seconds
        return RemoteTransientError(
            f"{where}: {exc}",
            retry_after=exc.retry_after,
            connector=connector,
            key=key,
            status=status,
        )
    if status in (401, 403):  # nothing works until a person fixes the credentials
        return RemoteAuthError(
            f"{where}: {exc}",
            connector=connector,
            key=key,
            status=status,
            hint="check the sync user's credentials",
        )
    if status == 404 and key is not None:  # the link is broken, never recreated silently
        return RecordGone(f"{where}: the record is gone", connector=connector, key=key)
    return RemoteRejected(f"{where}: {exc}", connector=connector, key=key, status=status)


class MemoryConnector(Connector):
    skips_echoes = True  # pull(since, known) leaves out records still at their version

    def __init__(
        self,
        settings: MemorySettings | None = None,
        mapping: MemoryMapping | None = None,
        *,
        name: str = "memory",
        remote: MemoryRemote | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        # No I/O here: ``config check`` and the CLI build connectors they may never use.
        self.settings = settings or MemorySettings()
        self.name = name
        self.synced_fields = frozenset((mapping or MemoryMapping()).fields)
        self.remote = remote if remote is not None else MemoryRemote()
        self.retry = retry or RetryPolicy(attempts=self.settings.retry_attempts)
        # the engine hands this many records' pushes to one update_many (the base class's,
        # one update each): how a batching remote is driven, in the engine's tests
        self.update_batch = self.settings.update_batch
        self._title_limit = DEFAULT_TITLE_LIMIT

    def _call(self, what: str, fn: Callable[[], T], *, key: str | None = None) -> T:
        """One remote call, retried on rate limits and server errors. Wrap only calls that are
        safe to repeat: every call here either reads, sets values, or checks first."""

        def attempt() -> T:
            try:
                return fn()
            except MemoryFault as exc:
                raise translate(exc, connector=self.name, key=key, what=what) from exc

        return with_retries(attempt, self.retry, what=f"{self.name} {what}")

    # -- projection: the planner's view of this remote, pure ---------------------------------

    def prepare(self) -> None:
        # Called before a cycle plans: load what project() needs, so project() stays pure.
        self._title_limit = self._call("describe", self.remote.describe)["title_limit"]

    def project(self, field: str, value: SyncValue) -> SyncValue:
        # What ``value`` reads back as after a write. The engine compares in this projection,
        # so an echo of our own write is never taken for a change. Idempotent, no I/O.
        if field == "title" and isinstance(value, str):
            return " ".join(value.split())[: self._title_limit].rstrip()
        # Shapes are checked, never converted: a wrong one is a TypeError (a programming error).
        if field == "controls":
            return list(as_strings(value, field))
        if field == "milestones":
            return [m.copy() for m in as_milestones(value, field)]
        return value

    def check(self) -> dict[str, str]:
        # ``config check``: reach the remote and authenticate; facts only, never secrets.
        facts = self._call("describe", self.remote.describe)
        return {"user": self.settings.user, "records": str(facts["records"])}

    # -- reading -----------------------------------------------------------------------------

    def _record(self, raw: StoredRecord) -> RemoteRecord:
        # Canonical values only; the version changes on every write (links store it).
        return RemoteRecord(
            remote_id=raw.id,
            key=raw.number,
            version=str(raw.version),
            updated_at=raw.updated_at,
            fields={f: self.project(f, raw.values.get(f)) for f in self.synced_fields},
            stamp=raw.stamp,
            updated_by=raw.updated_by,
            url=f"memory://{self.name}/{raw.number}",
            notes=tuple(
                parse_note(
                    c.body, connector=self.name, remote_id=c.id, author=c.author, created=c.created
                )
                for c in raw.comments
            ),
        )

    def pull(
        self, since: datetime | None, known: Mapping[str, str] | None = None
    ) -> Iterator[RemoteRecord]:
        # Everything when ``since`` is None; else changes at or after it, starting earlier by
        # the overlap (the remote floors its clock). A record seen twice is yielded once; one
        # still at the version in ``known`` (an echo of our own write) is not mapped at all.
        known = known or {}
        bound = None if since is None else since - timedelta(seconds=self.settings.overlap_seconds)
        size = self.settings.page_size
        seen: set[tuple[str, int]] = set()
        offset = 0
        while True:
            page = self._call(
                "query", partial(self.remote.query, since=bound, offset=offset, limit=size)
            )
            for raw in page:
                held = known.get(raw.id)
                if held is not None and held.isdigit() and raw.version <= int(held):
                    continue  # what we hold already (or newer): an echo
                if (raw.id, raw.version) not in seen:
                    seen.add((raw.id, raw.version))
                    yield self._record(raw)
            if len(page) < size:
                return
            offset += size

    def get(self, remote_id: str) -> RemoteRecord:
        # RecordGone when deleted: the engine marks the link broken and keeps the item.
        return self._record(self._call("read", partial(self.remote.read, remote_id), key=remote_id))

    def find_by_stamp(self, stamp: Stamp) -> RemoteRecord | None:
        # Crash recovery: a create whose link was never stored is found here, not made twice.
        raw = self._call("search", partial(self.remote.search_stamp, stamp.token))
        return None if raw is None else self._record(raw)

    def list_remote_ids(self) -> list[str]:
        # Ids only, as cheaply as the remote allows: the engine's periodic reconcile compares
        # them with its links to find records deleted remotely (an incremental pull never
        # shows a deletion).
        return self._call("list ids", self.remote.ids)

    # -- writing -----------------------------------------------------------------------------

    def _values(self, fields: SyncValues) -> tuple[dict[str, SyncValue], list[FieldProblem]]:
        """Projected values to write, minus those the remote cannot take (reported instead)."""
        values = {k: self.project(k, v) for k, v in fields.items() if k in self.synced_fields}
        problems: list[FieldProblem] = []
        owner = values.get("owner")
        if owner and not self._call("user", partial(self.remote.user_exists, str(owner))):
            del values["owner"]  # never clear the remote owner for one we cannot find
            problems.append(
                FieldProblem(
                    "owner",
                    "unknown_user",
                    f"no user {owner} in {self.name}",
                    hint="add the user remotely, or fix the owner's e-mail",
                )
            )
        return values, problems

    def create(self, stamp: Stamp, fields: SyncValues) -> WriteResult:
        (result,) = self.create_many([(stamp, fields)])
        if isinstance(result, Exception):
            raise result
        return result

    def create_many(
        self, batch: Sequence[tuple[Stamp, SyncValues]]
    ) -> list[WriteResult | Exception]:
        # One bulk call. The engine wants one result or error per input, in order, and never
        # an exception from here: a failing batch fails each of its items.
        if not batch:
            return []
        prepared = [(stamp, *self._values(fields)) for stamp, fields in batch]

        def attempt() -> list[StoredRecord | MemoryFault]:
            # Safe to retry: rows already created (a retry after a lost answer) are found by
            # their stamp and not sent again.
            out: dict[int, StoredRecord | MemoryFault] = {}
            for n, (stamp, _v, _p) in enumerate(prepared):
                found = self.remote.search_stamp(stamp.token)
                if found is not None:
                    out[n] = found
            todo = [n for n in range(len(prepared)) if n not in out]
            rows = [(prepared[n][0], prepared[n][1]) for n in todo]
            out.update(zip(todo, self.remote.insert_many(rows, self.settings.user), strict=True))
            return [out[n] for n in range(len(prepared))]

        try:
            answers = self._call("bulk create", attempt)
        except RemoteError as exc:
            return [exc for _ in batch]
        results: list[WriteResult | Exception] = []
        for (_stamp, _v, problems), answer in zip(prepared, answers, strict=True):
            if isinstance(answer, MemoryFault):
                results.append(translate(answer, connector=self.name, key=None, what="create"))
            else:
                results.append(WriteResult(self._record(answer), tuple(problems)))
        return results

    def update(self, remote_id: str, changes: SyncValues) -> WriteResult:
        # Write only ``changes``. A field the remote refuses is a FieldProblem and the others
        # still go through; RecordGone when the record was deleted.
        values, problems = self._values(changes)
        status = values.pop("status", None)
        write = partial(self.remote.write, remote_id, actor=self.settings.user)
        if values:
            self._call("write", partial(write, values), key=remote_id)
        if status is not None:
            try:  # the status on its own: a blocked transition must not lose the rest
                self._call("transition", partial(write, {"status": status}), key=remote_id)
            except RemoteRejected as exc:
                problems.append(FieldProblem("status", "transition_blocked", str(exc)))
        # read after the last write, comments and all: the version names this state
        return WriteResult(self.get(remote_id), tuple(problems), whole=True)

    def add_note(self, remote_id: str, note: Note) -> None:
        # The marker line lets the engine recognise this note when it reads it back (no echo).
        body = mark_note(note)

        def attempt() -> None:
            # Idempotent, so safe to retry: a note already there is not posted again.
            if all(c.body != body for c in self.remote.read(remote_id).comments):
                self.remote.comment(remote_id, body, self.settings.user)

        self._call("note", attempt, key=remote_id)
