"""Canonical items <-> the values connectors speak (see :mod:`poam_sync.connectors.base`).

Connectors exchange a handful of fields as :data:`SyncValue` s: the owner as an e-mail,
milestones without the canonical-only parts. These two pure functions are the only place that
converts.
"""

from __future__ import annotations

from datetime import date

from poam_sync.connectors.base import (
    MilestoneValue,
    SyncValue,
    SyncValues,
    as_milestones,
    as_optional_text,
)
from poam_sync.model import JsonValue, Person, PoamItem, with_fields


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def to_sync(item: PoamItem) -> dict[str, SyncValue]:
    """The item's syncable fields as connector values (built by hand: the planner's hot path)."""
    milestones: list[MilestoneValue] = [  # a local only to tell mypy the list's type
        {
            "id": m.id,
            "description": m.description,
            "due_date": _iso(m.due_date),
            "status": m.status.value,
        }
        for m in item.milestones
    ]
    return {
        "title": item.title,
        "description": item.description,
        "status": item.status.value,
        "owner": item.owner.email if item.owner and item.owner.email else None,
        "due_date": _iso(item.due_date),
        "scheduled_completion_date": _iso(item.scheduled_completion_date),
        "original_risk": item.original_risk.value if item.original_risk else None,
        "controls": list(item.controls),
        "milestones": milestones,
    }


def from_sync(item: PoamItem, changes: SyncValues) -> PoamItem:
    """``item`` with connector values written into it (what a remote change means here).

    The owner must be text or None and the milestones a list of :class:`MilestoneValue`
    (``TypeError`` or ``ValueError`` otherwise); every value is then validated by the model."""
    values: dict[str, object] = {}
    for name, value in changes.items():
        if name == "owner":
            values["owner"] = _owner(item.owner, as_optional_text(value, "owner"))
        elif name == "milestones":
            values["milestones"] = _milestones(item, as_milestones(value))
        else:
            values[name] = value
    return with_fields(item, values) if values else item


def _owner(current: Person | None, email: str | None) -> dict[str, JsonValue] | None:
    if not email:
        return None
    if current is not None and current.email == email:
        return current.model_dump(mode="json")
    # A new owner: keep the organization, since the remote knows only the person.
    return {"email": email, "name": None, "org": current.org if current else None}


def _milestones(item: PoamItem, value: list[MilestoneValue]) -> list[dict[str, JsonValue]]:
    """Remote milestones, keeping the completion dates only the canonical record holds."""
    completed_on = {m.id: _iso(m.completed_on) for m in item.milestones}
    return [
        {
            "id": m["id"],
            "description": m["description"],
            "due_date": m["due_date"],
            "status": m["status"],
            # a milestone completed here keeps its date while the remote says completed too
            "completed_on": completed_on.get(m["id"]) if m["status"] == "completed" else None,
        }
        for m in value
    ]
