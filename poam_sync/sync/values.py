"""Canonical items <-> the values connectors speak (see :mod:`poam_sync.connectors.base`).

Connectors exchange a handful of fields as :data:`SyncValue` s: the owner as an e-mail,
milestones without the canonical-only parts. These two pure functions are the only place that
converts.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def from_sync(
    item: PoamItem,
    changes: SyncValues,
    *,
    names: Mapping[str, str] | None = None,
    today: date | None = None,
) -> PoamItem:
    """``item`` with connector values written into it (what a remote change means here).

    ``names``: e-mail -> display name of the people the remote named (``RemoteRecord.people``),
    so that a new owner is one whole person. The owner must be text or None and the milestones
    a list of :class:`MilestoneValue` (``TypeError`` or ``ValueError`` otherwise); every value
    is then validated by the model. ``today``: the completion date of a milestone the remote
    completed that is not completed here (None: left without one)."""
    values: dict[str, object] = {}
    for name, value in changes.items():
        if name == "owner":
            email = as_optional_text(value, "owner")
            values["owner"] = _owner(item.owner, email, display_name(names or {}, email))
        elif name == "milestones":
            values["milestones"] = _milestones(item, as_milestones(value), today)
        else:
            values[name] = value
    return with_fields(item, values) if values else item


def display_name(names: Mapping[str, str], email: str | None) -> str | None:
    """The display name ``names`` gives ``email`` (e-mails compared case-insensitively)."""
    if not email or not names:
        return None
    wanted = email.casefold()
    return next((n for e, n in names.items() if e.casefold() == wanted and n), None)


def _owner(
    current: Person | None, email: str | None, name: str | None
) -> dict[str, JsonValue] | None:
    if not email:
        return None
    if current is not None and current.email and current.email.casefold() == email.casefold():
        return current.model_dump(mode="json")
    # A new owner is one new person: the remote's name for them (when it shows one), and no
    # organization (the remote does not say; the old owner's would be wrong).
    return {"email": email, "name": name, "org": None}


def _milestones(
    item: PoamItem, value: list[MilestoneValue], today: date | None
) -> list[dict[str, JsonValue]]:
    """Remote milestones, keeping the completion dates only the canonical record holds; one
    completed remotely gets ``today`` (the remotes keep no completion date of their own)."""
    completed_on = {m.id: _iso(m.completed_on) for m in item.milestones}
    done_here = {m.id for m in item.milestones if m.status.value == "completed"}
    fresh = _iso(today)
    return [
        {
            "id": m["id"],
            "description": m["description"],
            "due_date": m["due_date"],
            "status": m["status"],
            # a milestone completed here keeps its date while the remote says completed too
            "completed_on": (
                (completed_on.get(m["id"]) if m["id"] in done_here else fresh)
                if m["status"] == "completed"
                else None
            ),
        }
        for m in value
    ]
