"""The change log's hash chain: how a row is hashed, and how ``at`` is written.

``hash = sha256(prev_hash + "\\n" + canonical_json(row))`` where ``row`` holds every column
except ``prev_hash`` and ``hash`` (``seq``, ``at``, ``item_uuid``, ``system``, ``poam_id``,
``field``, ``old_value``, ``new_value``, ``source``, ``actor``, ``reason``, ``batch_id``), old and
new values as JSON values, and canonical JSON means sorted keys, ``(",", ":")`` separators and
UTF-8 text. The first row's ``prev_hash`` is :data:`GENESIS`. ``at`` is an ISO-8601 UTC string
with microseconds (``2026-01-31T12:00:00.000000Z``) so both databases hash the very same text.

The old and new values are stored as their canonical JSON text, and hashed as that text: a
stored value rewritten in any other way, even to equal JSON, no longer verifies.
"""

from __future__ import annotations

import hashlib
import json.encoder
from collections.abc import Callable
from datetime import UTC, datetime

GENESIS = "0" * 64

# the function json.dumps(str, ensure_ascii=False) uses (its C version when available)
_encode_str: Callable[[str], str] = json.encoder.encode_basestring


def format_at(moment: datetime) -> str:
    """``at`` as stored and hashed: ISO-8601 UTC with microseconds and a ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("change-log times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _s(value: str | None) -> str:
    return "null" if value is None else _encode_str(value)


def canonical_row(
    *,
    seq: int,
    at: str,
    item_uuid: str,
    system: str,
    poam_id: str,
    field: str,
    old_json: str,
    new_json: str,
    source: str,
    actor: str | None,
    reason: str | None,
    batch_id: str | None,
) -> str:
    """The row's canonical JSON, keys in sorted order (built directly: this is the hot path)."""
    enc = _encode_str
    return (
        f'{{"actor":{_s(actor)},"at":{enc(at)},"batch_id":{_s(batch_id)},"field":{enc(field)},'
        f'"item_uuid":{enc(item_uuid)},"new_value":{new_json},"old_value":{old_json},'
        f'"poam_id":{enc(poam_id)},"reason":{_s(reason)},"seq":{int(seq)},'
        f'"source":{enc(source)},"system":{enc(system)}}}'
    )


RowEncoder = Callable[[int, str, str, str, str, str, str, "str | None"], str]


def row_encoder(*, at: str, source: str, actor: str | None, batch_id: str | None) -> RowEncoder:
    """:func:`canonical_row` for many rows sharing ``at``, ``source``, ``actor``, ``batch_id``.

    The returned function takes ``(seq, item_uuid, system, poam_id, field, old_json, new_json,
    reason)``; the shared parts are encoded once.
    """
    enc = _encode_str
    head = f'{{"actor":{_s(actor)},"at":{enc(at)},"batch_id":{_s(batch_id)},"field":'
    source_part = f',"source":{enc(source)},"system":'

    def encode(
        seq: int,
        item_uuid: str,
        system: str,
        poam_id: str,
        field: str,
        old_json: str,
        new_json: str,
        reason: str | None,
    ) -> str:
        return (
            f'{head}{enc(field)},"item_uuid":{enc(item_uuid)},"new_value":{new_json},'
            f'"old_value":{old_json},"poam_id":{enc(poam_id)},"reason":{_s(reason)},'
            f'"seq":{int(seq)}{source_part}{enc(system)}}}'
        )

    return encode


def row_hash(prev_hash: str, canonical: str) -> str:
    """The hash of one change-log row chained to the previous row's hash."""
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()
