"""Canonical items <-> the values connectors speak (see :mod:`poam_sync.connectors.base`).

Connectors exchange a handful of fields in plain JSON: the owner as an e-mail, milestones
without the canonical-only parts. These two pure functions are the only place that converts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from poam_sync.connectors.base import SYNCABLE_FIELDS
from poam_sync.model import JsonValue, Person, PoamItem, with_fields

_MILESTONE_KEYS = ("id", "description", "due_date", "status")


def to_sync(item: PoamItem) -> dict[str, JsonValue]:
    """The item's syncable fields as connector values."""
    dumped = item.model_dump(mode="json", include=set(SYNCABLE_FIELDS))
    dumped["owner"] = item.owner.email if item.owner and item.owner.email else None
    dumped["milestones"] = [
        {k: m.get(k) for k in _MILESTONE_KEYS} for m in dumped.get("milestones") or []
    ]
    return dumped


def from_sync(item: PoamItem, changes: Mapping[str, JsonValue]) -> PoamItem:
    """``item`` with connector values written into it (what a remote change means here)."""
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "owner":
            values["owner"] = _owner(item.owner, value)
        elif name == "milestones":
            values["milestones"] = _milestones(item, value)
        else:
            values[name] = value
    return with_fields(item, values) if values else item


def _owner(current: Person | None, email: JsonValue) -> JsonValue:
    if not email:
        return None
    if current is not None and current.email == email:
        return current.model_dump(mode="json")
    # A new owner: keep the organization, since the remote knows only the person.
    return {"email": email, "name": None, "org": current.org if current else None}


def _milestones(item: PoamItem, value: JsonValue) -> JsonValue:
    """Remote milestones, keeping the completion dates only the canonical record holds."""
    known = {m.id: m.model_dump(mode="json") for m in item.milestones}
    out = []
    for m in value or []:
        merged = {**known.get(str(m.get("id")), {}), **m}
        if merged.get("status") != "completed":
            merged["completed_on"] = None
        out.append(merged)
    return out
