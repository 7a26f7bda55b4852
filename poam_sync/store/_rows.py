"""Plain, frozen records the store hands out (never live database objects)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from poam_sync.errors import ChainBroken
from poam_sync.model import JsonValue, SyncValue

if TYPE_CHECKING:
    from poam_sync.store._schema import StoredValue


def _json_value(value: StoredValue | datetime) -> StoredValue:
    if isinstance(value, datetime):
        # the change log's own format (docs/store.md), so `at` can be re-hashed from JSON output
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


class _JsonRow:
    """``to_json()`` for the row dataclasses: a dict ready for ``json.dumps`` (``--json``)."""

    __slots__ = ()

    def to_json(self) -> dict[str, StoredValue]:
        return {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ChangeRow(_JsonRow):
    """One change-log row: one field of one item changed (or an event about it)."""

    seq: int
    at: datetime  # aware UTC
    item_uuid: str
    system: str
    poam_id: str
    field: str
    old_value: StoredValue  # decoded JSON when read back; as given when just written
    new_value: StoredValue
    source: str  # import, cli, jira, servicenow, policy, ...
    actor: str | None
    reason: str | None
    batch_id: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class LinkRow(_JsonRow):
    """The link of one canonical item with its record at one connector."""

    item_uuid: str
    connector: str
    remote_id: str
    remote_key: str | None = None
    remote_version: str | None = None
    url: str | None = None
    state: str = "active"  # "active" | "broken"
    broken_reason: str | None = None
    updated_at: datetime | None = None  # set by the store when written


@dataclass(frozen=True, slots=True)
class IntentRow(_JsonRow):
    """A remote create announced before it is made (crash safety)."""

    id: int
    item_uuid: str
    connector: str
    token: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConflictRow(_JsonRow):
    """A field both sides changed differently, with the three values side by side."""

    id: int
    item_uuid: str
    system: str
    poam_id: str
    connector: str
    field: str
    baseline: SyncValue
    local: SyncValue
    remote: SyncValue
    remote_actor: str | None
    remote_changed_at: datetime | None
    detected_at: datetime
    state: str  # "open" | "resolved"
    resolved_at: datetime | None = None
    resolution_value: SyncValue = None
    taken_from: str | None = None
    resolved_by: str | None = None
    reason: str | None = None


ProblemKind = Literal["write", "read", "item"]
"""``write``: a connector could not write a field; ``read``: it could not read one (a remote
value the mapping does not know); ``item``: the item failed in a cycle and is retried."""


@dataclass(frozen=True, slots=True)
class ProblemRow(_JsonRow):
    """Something a connector could not do for an item (unknown user, blocked transition...)."""

    item_uuid: str | None
    poam_id: str | None
    connector: str
    field: str | None
    code: str
    message: str
    first_seen: datetime
    last_seen: datetime
    active: bool
    kind: ProblemKind = "write"
    hint: str | None = None  # what would fix it (for a read: the mapping line that covers it)
    remote_id: str | None = None  # the remote record it is about, when known
    remote_key: str | None = None


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which change-log rows to read: every condition given must hold."""

    item_uuid: str | None = None
    system: str | None = None
    fields: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    actors: frozenset[str] = frozenset()
    since: datetime | None = None  # at or after (aware)
    until: datetime | None = None  # before (aware)


@dataclass(frozen=True, slots=True)
class VerifyResult(_JsonRow):
    """What ``Store.verify_log`` found."""

    ok: bool
    rows_checked: int
    first_bad_seq: int | None = None
    message: str = ""

    def raise_if_broken(self) -> None:
        """Raise :class:`ChainBroken` (naming the first bad row) unless the chain verified."""
        if not self.ok:
            raise ChainBroken(self.message, seq=self.first_bad_seq)


# A change-log row as stored, for streaming it out: seq, at, item_uuid, system, poam_id, field,
# old_value, new_value (their canonical JSON text), source, actor, reason, batch_id, prev_hash,
# hash
StoredLogRow = tuple[
    int, str, str, str, str, str, str, str, str, str | None, str | None, str | None, str, str
]


@dataclass(frozen=True, slots=True)
class ChainPoint(_JsonRow):
    """Where the change log stands: its last row (``seq``, ``hash``, ``at``) and row count;
    what a signed checkpoint records (``seq`` 0 and the genesis hash for an empty log)."""

    seq: int
    hash: str
    rows: int
    at: datetime | None = None  # the last row's time


@dataclass(frozen=True, slots=True)
class ImportClash:
    """A field a re-imported file changed while another side (Jira, ServiceNow, an edit) changed
    it too: the canonical value was kept. Values as the item's JSON holds them."""

    poam_id: str
    item_uuid: str
    field: str
    baseline: JsonValue  # what the file held at its last import
    canonical: JsonValue
    file: JsonValue


@dataclass(frozen=True, slots=True)
class ImportOutcome(_JsonRow):
    """What an import did (or would do, on a dry run), by POA&M ID."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the store, not in the file; kept
    changes: int = 0  # change-log rows written (or that would be written)
    dry_run: bool = False
    source: str | None = None  # the file lineage whose baselines decided (None: none kept)
    clashes: list[ImportClash] = field(default_factory=list)  # kept canonical, see ImportClash
    kept: int = 0  # fields the file had not changed since its last import, left as they were
