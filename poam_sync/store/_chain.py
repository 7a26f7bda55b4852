"""The change log's hash chain: how a row is hashed, and how ``at`` is written.

``hash = sha256(prev_hash + "\\n" + canonical_json(row))`` where ``row`` holds every column
except ``prev_hash`` and ``hash`` (``seq``, ``at``, ``item_uuid``, ``system``, ``poam_id``,
``field``, ``old_value``, ``new_value``, ``source``, ``actor``, ``reason``, ``batch_id``), old and
new values as JSON values, and canonical JSON means sorted keys, ``(",", ":")`` separators and
UTF-8 text. The first row's ``prev_hash`` is :data:`GENESIS`. ``at`` is an ISO-8601 UTC string
with microseconds (``2026-01-31T12:00:00.000000Z``) so both databases hash the very same text.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from poam_sync.model import JsonValue
from poam_sync.store._schema import dump_json

GENESIS = "0" * 64


def format_at(moment: datetime) -> str:
    """``at`` as stored and hashed: ISO-8601 UTC with microseconds and a ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("change-log times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def row_hash(
    prev_hash: str,
    *,
    seq: int,
    at: str,
    item_uuid: str,
    system: str,
    poam_id: str,
    field: str,
    old_value: JsonValue,
    new_value: JsonValue,
    source: str,
    actor: str | None,
    reason: str | None,
    batch_id: str | None,
) -> str:
    """The hash of one change-log row chained to the previous row's hash."""
    canonical = dump_json(
        {
            "seq": seq,
            "at": at,
            "item_uuid": item_uuid,
            "system": system,
            "poam_id": poam_id,
            "field": field,
            "old_value": old_value,
            "new_value": new_value,
            "source": source,
            "actor": actor,
            "reason": reason,
            "batch_id": batch_id,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()
