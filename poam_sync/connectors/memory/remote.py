"""The remote system the memory connector talks to: a small record store in this process.

It stands where a real connector has its API client and server. It keeps records in its own
shape (a version counter, timestamps floored to the second, comments, a stamp column), answers
a call with a :class:`MemoryFault` when told to (as an HTTP API answers 429 or 503), and lets
tests act on it as a person would, without going through the connector.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from poam_sync.connectors.base import Stamp, SyncValue

DEFAULT_TITLE_LIMIT = 255
_EMPTY: dict[str, SyncValue] = {
    "title": "",
    "description": "",
    "status": "open",
    "owner": None,
    "due_date": None,
    "scheduled_completion_date": None,
    "original_risk": None,
    "controls": [],
    "milestones": [],
}


class MemoryFault(Exception):
    """What a call answers instead of data: an HTTP-like status (404, 409, 429, 503...)."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    author: str
    created: datetime
    body: str


@dataclass(slots=True)
class StoredRecord:
    id: str
    number: str  # the human key, MEM-1, MEM-2...
    values: dict[str, SyncValue]
    stamp: Stamp | None
    version: int
    updated_at: datetime
    updated_by: str
    comments: list[Comment] = field(default_factory=list)


def _tick() -> datetime:
    # Floored to the second, as many remotes store it: why pulls need an overlap.
    return datetime.now(UTC).replace(microsecond=0)


class MemoryRemote:
    """Records, users and faults of one remote; several connectors may share one."""

    def __init__(
        self,
        *,
        users: tuple[str, ...] = ("alice@example.com", "bob@example.com"),
        title_limit: int = DEFAULT_TITLE_LIMIT,
    ) -> None:
        self.users = set(users)
        self.title_limit = title_limit
        self.blocked_statuses: set[str] = set()
        self._records: dict[str, StoredRecord] = {}
        self._faults: deque[tuple[int, float | None]] = deque()
        self._numbers = itertools.count(1)
        self._lock = threading.RLock()

    # -- the API a connector calls (each call may answer a fault) ----------------------------

    def describe(self) -> dict[str, int]:
        with self._lock:
            self._answer()
            return {"title_limit": self.title_limit, "records": len(self._records)}

    def user_exists(self, email: str) -> bool:
        with self._lock:
            self._answer()
            return email in self.users

    def query(self, *, since: datetime | None, offset: int, limit: int) -> list[StoredRecord]:
        """Records changed at or after ``since``, by number, one page."""
        with self._lock:
            self._answer()
            rows = [r for r in self._records.values() if since is None or r.updated_at >= since]
            return [copy.deepcopy(r) for r in rows[offset : offset + limit]]

    def read(self, record_id: str) -> StoredRecord:
        with self._lock:
            self._answer()
            return copy.deepcopy(self._get(record_id))

    def search_stamp(self, token: str) -> StoredRecord | None:
        with self._lock:
            self._answer()
            found = [r for r in self._records.values() if r.stamp and r.stamp.token == token]
            return copy.deepcopy(found[0]) if found else None

    def insert_many(
        self, rows: Sequence[tuple[Stamp | None, dict[str, SyncValue]]], actor: str
    ) -> list[StoredRecord | MemoryFault]:
        """The bulk API: one call; a row without a title is refused alone."""
        with self._lock:
            self._answer()
            out: list[StoredRecord | MemoryFault] = []
            for stamp, values in rows:
                if not values.get("title"):
                    out.append(MemoryFault(400, "title is required"))
                    continue
                out.append(copy.deepcopy(self._insert(stamp, values, actor)))
            return out

    def write(self, record_id: str, values: dict[str, SyncValue], actor: str) -> StoredRecord:
        with self._lock:
            self._answer()
            record = self._get(record_id)
            status = values.get("status")
            if status in self.blocked_statuses and status != record.values["status"]:
                raise MemoryFault(409, f"no transition to {status!r} from here")
            self._touch(record, values, actor)
            return copy.deepcopy(record)

    def comment(self, record_id: str, body: str, actor: str) -> Comment:
        with self._lock:
            self._answer()
            record = self._get(record_id)
            note = Comment(uuid.uuid4().hex[:12], actor, _tick(), body)
            record.comments.append(note)
            self._touch(record, {}, actor)
            return note

    # -- a person's hand, and the test's (never faulted) --------------------------------------

    def human_create(self, values: dict[str, SyncValue], actor: str = "carol@example.com") -> str:
        with self._lock:
            return self._insert(None, values, actor).id

    def human_write(self, record_id: str, field: str, value: SyncValue, actor: str) -> None:
        with self._lock:
            self._touch(self._get(record_id), {field: value}, actor)

    def human_comment(self, record_id: str, body: str, actor: str) -> None:
        with self._lock:
            record = self._get(record_id)
            record.comments.append(Comment(uuid.uuid4().hex[:12], actor, _tick(), body))
            self._touch(record, {}, actor)

    def delete(self, record_id: str) -> None:
        with self._lock:
            self._records.pop(record_id, None)

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        with self._lock:
            self._faults.extend([(status, retry_after)] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def ids(self) -> list[str]:
        """The ids of every record, nothing else (the reconcile's cheap listing)."""
        with self._lock:
            self._answer()
            return sorted(self._records)

    def records(self) -> list[StoredRecord]:
        with self._lock:
            return copy.deepcopy(list(self._records.values()))

    # -- inside --------------------------------------------------------------------------------

    def _answer(self) -> None:
        if self._faults:
            status, retry_after = self._faults.popleft()
            raise MemoryFault(status, "injected fault", retry_after=retry_after)

    def _get(self, record_id: str) -> StoredRecord:
        try:
            return self._records[record_id]
        except KeyError:
            raise MemoryFault(404, f"no record {record_id}") from None

    def _insert(
        self, stamp: Stamp | None, values: dict[str, SyncValue], actor: str
    ) -> StoredRecord:
        record = StoredRecord(
            id=uuid.uuid4().hex,
            number=f"MEM-{next(self._numbers)}",
            values={**copy.deepcopy(_EMPTY), **copy.deepcopy(values)},
            stamp=stamp,
            version=1,
            updated_at=_tick(),
            updated_by=actor,
        )
        self._records[record.id] = record
        return record

    def _touch(self, record: StoredRecord, values: dict[str, SyncValue], actor: str) -> None:
        record.values.update(copy.deepcopy(values))
        record.version += 1
        record.updated_at = _tick()
        record.updated_by = actor
