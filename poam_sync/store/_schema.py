"""The tables of the canonical store (SQLAlchemy Core, shared by both databases).

The migrations under ``migrations/versions`` create exactly these tables; a test compares the
migrated database with this metadata so the two never drift apart.

Portable choices: JSON values are kept as canonical JSON text (sorted keys, fixed separators), so
SQLite and PostgreSQL store and hash the same bytes; timestamps go through :class:`UTCDateTime`,
which hands back timezone-aware UTC datetimes on both databases; the change log keeps its ``at``
column as an ISO-8601 UTC string because that string is part of the hashed row.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from poam_sync.model import JsonValue, SyncValue

StoredValue: TypeAlias = "JsonValue | SyncValue"
"""A value the store keeps as JSON: a canonical field's :data:`JsonValue` (items, the change
log) or a :data:`SyncValue` (baselines, conflicts). A synced value is JSON too, but mypy takes
neither a ``list[str]`` for a ``list[JsonValue]`` nor a TypedDict for a ``dict[str, JsonValue]``."""

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


# one encoder for all calls: json.dumps() with options builds a new encoder every time
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_encode_str = json.encoder.encode_basestring  # what the encoder itself uses for str


def _make_fast_encode() -> Callable[[StoredValue], str]:
    """``_ENCODER.encode`` without building a new C encoder on every call (CPython's json does).

    Same arguments as ``json.JSONEncoder.iterencode`` passes, except ``markers=None``: no
    circular-reference check, which plain JSON data parsed from our own models never needs.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator on this Python
        return _ENCODER.encode
    iterencode = make(None, _ENCODER.default, _encode_str, None, ":", ",", True, False, True)

    def encode(value: StoredValue) -> str:
        return "".join(iterencode(value, 0))

    return encode


_fast_encode = _make_fast_encode()


def dump_json(value: StoredValue) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept as is.

    Scalars take a short cut that gives the very text ``json.dumps`` gives (the change log
    writes about 17 values per imported item; the general encoder is the slow path).
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str:  # not isinstance: a str subclass takes the general path, as before
        return _encode_str(value)
    if type(value) is int:
        return int.__repr__(value)
    return _fast_encode(value)


def dump_object_fields(values: Mapping[str, JsonValue]) -> tuple[str, dict[str, str]]:
    """``dump_json(values)`` for a JSON object, and each of its values' text on the side.

    The store needs both for every imported item (the item's JSON, and each changed field's
    JSON in the change log); this encodes every value once.
    """
    texts = {key: dump_json(value) for key, value in values.items()}
    body = ",".join(f"{_encode_str(key)}:{texts[key]}" for key in sorted(texts))
    return f"{{{body}}}", texts


_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that goes in as aware UTC and comes back as aware UTC on every database.

    SQLite has no time zones: values are stored as naive UTC and marked UTC when read back.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware UTC one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JsonText(sa.types.TypeDecorator["SyncValue"]):
    """A synced value (baselines, conflicts), stored as canonical JSON text (``null`` for None,
    never SQL NULL). Read back as it was written: the store is its only writer."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: SyncValue, dialect: Dialect) -> str:
        return dump_json(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> SyncValue:
        decoded: SyncValue = None if value is None else json.loads(value)
        return decoded


items = sa.Table(
    "items",
    metadata,
    sa.Column("uuid", sa.String(36), primary_key=True),
    sa.Column("system", sa.String(200), nullable=False),
    sa.Column("poam_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("due_date", sa.Date, nullable=True),
    sa.Column("owner_email", sa.String(320), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # the item's canonical JSON (PoamItem.model_dump(mode="json"), canonical text)
    sa.Column("data", sa.Text, nullable=False),
    sa.UniqueConstraint("system", "poam_id"),
    sa.Index(None, "poam_id"),
    sa.Index(None, "status"),
    sa.Index(None, "due_date"),
    sa.Index(None, "owner_email"),
)

# What the workbench filters, sorts and counts on: one narrow row per item, written with the
# item (poam_sync.store._browse.facets: the effective risk, the current due date and the FedRAMP
# deadline as poam_sync.deadlines computes them). A scan of it reads a few MB at 100,000 items,
# where a scan of ``items`` reads every item's JSON.
item_facets = sa.Table(
    "item_facets",
    metadata,
    sa.Column("uuid", sa.String(36), sa.ForeignKey("items.uuid"), primary_key=True),
    sa.Column("system", sa.String(200), nullable=False),
    sa.Column("poam_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("effective_risk", sa.String(20), nullable=True),
    sa.Column("current_due", sa.Date, nullable=True),
    sa.Column("fedramp_due", sa.Date, nullable=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("owner_email", sa.String(320), nullable=True),
    sa.Column("owner_name", sa.String(320), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # no index on the dates: most items of a large POA&M are overdue or due, and a scan of this
    # narrow table beats an index lookup per matching row
    sa.Index(None, "poam_id"),
    sa.Index(None, "status", "effective_risk"),  # the dashboard's counts, from the index alone
)

change_log = sa.Table(
    "change_log",
    metadata,
    # INTEGER on SQLite: only that spelling makes the key the rowid itself (no second index)
    sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),  # ISO-8601 UTC, part of the hashed row
    sa.Column("item_uuid", sa.String(36), nullable=False),
    sa.Column("system", sa.String(200), nullable=False),
    sa.Column("poam_id", sa.String(200), nullable=False),
    sa.Column("field", sa.String(100), nullable=False),
    sa.Column("old_value", sa.Text, nullable=False),  # canonical JSON text
    sa.Column("new_value", sa.Text, nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(320), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("batch_id", sa.String(100), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index(None, "item_uuid"),
)

# One row (id = 1): the seq and hash of the last change-log row. Appends read it under the
# chain lock and move it forward; verify compares it with the last row, so deleting rows at the
# end of the log is caught as well as in the middle.
chain_head = sa.Table(
    "chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("item_uuid", sa.String(36), sa.ForeignKey("items.uuid"), primary_key=True),
    sa.Column("connector", sa.String(100), primary_key=True),
    sa.Column("remote_id", sa.String(200), nullable=False),
    sa.Column("remote_key", sa.String(200), nullable=True),
    sa.Column("remote_version", sa.String(200), nullable=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("broken_reason", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("connector", "remote_id"),
)

baselines = sa.Table(
    "baselines",
    metadata,
    sa.Column("item_uuid", sa.String(36), sa.ForeignKey("items.uuid"), primary_key=True),
    sa.Column("connector", sa.String(100), primary_key=True),
    sa.Column("field", sa.String(100), primary_key=True),
    sa.Column("value", JsonText, nullable=False),
    sa.Index(None, "connector"),
)

intents = sa.Table(
    "intents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_uuid", sa.String(36), sa.ForeignKey("items.uuid"), nullable=False),
    sa.Column("connector", sa.String(100), nullable=False),
    sa.Column("token", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Index(None, "connector", "finished_at"),
)

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("connector", sa.String(100), primary_key=True),
    sa.Column("value", UTCDateTime, nullable=False),
)

conflicts = sa.Table(
    "conflicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_uuid", sa.String(36), sa.ForeignKey("items.uuid"), nullable=False),
    sa.Column("connector", sa.String(100), nullable=False),
    sa.Column("field", sa.String(100), nullable=False),
    sa.Column("baseline", JsonText, nullable=False),
    sa.Column("local", JsonText, nullable=False),
    sa.Column("remote", JsonText, nullable=False),
    sa.Column("remote_actor", sa.String(320), nullable=True),
    sa.Column("remote_changed_at", UTCDateTime, nullable=True),
    sa.Column("detected_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("resolution_value", sa.Text, nullable=True),  # canonical JSON text once resolved
    sa.Column("taken_from", sa.String(100), nullable=True),
    sa.Column("resolved_by", sa.String(320), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index(None, "state"),
    # at most one open conflict per (item, connector, field)
    sa.Index(
        "uq_conflicts_open",
        "item_uuid",
        "connector",
        "field",
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    ),
)

problems = sa.Table(
    "problems",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_uuid", sa.String(36), sa.ForeignKey("items.uuid"), nullable=True),
    sa.Column("connector", sa.String(100), nullable=False),
    sa.Column("field", sa.String(100), nullable=True),
    sa.Column("code", sa.String(100), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    # "write": a connector could not write a field; "read": it could not read one (an unmapped
    # value); "item": the item failed in a cycle (its remote record is fetched again)
    sa.Column("kind", sa.String(10), nullable=False, server_default="write"),
    sa.Column("hint", sa.Text, nullable=True),  # what would fix it (the mapping line)
    sa.Column("remote_id", sa.String(200), nullable=True),
    sa.Column("remote_key", sa.String(200), nullable=True),
    sa.Index(None, "item_uuid", "connector"),
    sa.Index(None, "active"),
)

# The workbench's local accounts (poam_sync.web): a name, a role, an argon2 hash. Never deleted:
# a disabled account keeps its name, so the change log's actors stay unambiguous.
users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),  # viewer | resolver | admin
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# Notifications poam-sync sent (poam_sync.notify): each event is sent once. ``key`` names the
# event (``conflict:12``, ``digest:owner:alice@example.com:2026-12-07``, ...).
notifications_sent = sa.Table(
    "notifications_sent",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
)
