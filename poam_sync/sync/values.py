"""Canonical items <-> the values connectors speak (see :mod:`poam_sync.connectors.base`).

Connectors exchange a handful of fields in plain JSON: the owner as an e-mail, milestones
without the canonical-only parts. These two pure functions are the only place that converts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from poam_sync.model import JsonValue, Person, PoamItem, with_fields

_MILESTONE_KEYS = ("id", "description", "due_date", "status")


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def to_sync(item: PoamItem) -> dict[str, JsonValue]:
    """The item's syncable fields as connector values (built by hand: the planner's hot path)."""
    return {
        "title": item.title,
        "description": item.description,
        "status": item.status.value,
        "owner": item.owner.email if item.owner and item.owner.email else None,
        "due_date": _iso(item.due_date),
        "scheduled_completion_date": _iso(item.scheduled_completion_date),
        "original_risk": item.original_risk.value if item.original_risk else None,
        "controls": list(item.controls),
        "milestones": [
            {
                "id": m.id,
                "description": m.description,
                "due_date": _iso(m.due_date),
                "status": m.status.value,
            }
            for m in item.milestones
        ],
    }


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
