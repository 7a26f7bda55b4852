"""Edits a person makes to a POA&M item: typed, validated, and described for the change log.

Pure: each function takes an item and returns the edited copy (or raises
:class:`~poam_sync.errors.UsageError` naming the field, the value and what is accepted). The
CLI saves the result in one transaction with its change-log rows; the next sync pushes it.

Values are read strictly, the way an import reads a cell: a date is ``YYYY-MM-DD`` (an empty
value clears an optional field), a status or risk is one of the canonical words, a list is
comma-separated. ``scheduled_completion_date`` is the date first committed to (FedRAMP keeps it
unchanged); moving the deadline is a ``due_date`` edit, which records the extension in the
item's Milestone Changes as the sync does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import ValidationError

from poam_sync.errors import UsageError
from poam_sync.model import (
    Milestone,
    MilestoneChange,
    MilestoneStatus,
    PoamItem,
    RiskLevel,
    Status,
    with_fields,
)
from poam_sync.sync.rules import due_date_extension

_TEXT = (
    "title",
    "description",
    "remediation_plan",
    "resources_required",
    "comments",
    "supporting_documents",
    "detector_source",
    "source_identifier",
    "original_risk_label",
    "adjusted_risk_label",
)
_DATES = (
    "detected_on",
    "scheduled_completion_date",
    "due_date",
    "completed_on",
    "status_date",
    "kev_due_date",
)
_LISTS = ("controls", "cves", "asset_identifiers")
_OWNER = ("owner", "owner.email", "owner.name", "owner.org")
_CHOICES: dict[str, tuple[str, ...]] = {
    "status": tuple(s.value for s in Status),
    "original_risk": tuple(r.value for r in RiskLevel),
    "adjusted_risk": tuple(r.value for r in RiskLevel),
    "kev": ("yes", "no"),
}
#: every field ``items set`` takes, as it is written on the command line
SETTABLE: tuple[str, ...] = (*_TEXT, *_DATES, *_LISTS, *_OWNER, *_CHOICES)
#: statuses ``items close`` takes
CLOSING: tuple[str, ...] = tuple(s.value for s in Status if s.is_closed)


@dataclass(frozen=True, slots=True)
class Assignment:
    """One ``FIELD=VALUE`` of ``items set``."""

    field: str
    text: str


def parse_assignments(given: Sequence[str]) -> list[Assignment]:
    """``["due_date=2027-01-31", "owner=bob@example.com"]`` as assignments, checked by name."""
    if not given:
        raise UsageError("nothing to set", hint="write FIELD=VALUE, e.g. due_date=2027-01-31")
    out: list[Assignment] = []
    for raw in given:
        name, sep, text = raw.partition("=")
        name = name.strip()
        if not sep:
            raise UsageError(f"{raw!r} is not FIELD=VALUE", hint="e.g. due_date=2027-01-31")
        if name not in SETTABLE:
            raise UsageError(
                f"{name!r} cannot be set",
                hint=f"fields: {', '.join(SETTABLE)} (milestones: `items milestone`)",
            )
        if any(a.field == name for a in out):
            raise UsageError(f"{name} is set twice", hint="give each field once")
        out.append(Assignment(name, text.strip()))
    return out


def parse_date(text: str, what: str) -> date:
    """A real calendar date written ``YYYY-MM-DD``."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{what}: {text!r} is not a date", hint="write it as YYYY-MM-DD, e.g. 2027-01-31"
        ) from None


def apply_assignments(
    item: PoamItem, assignments: Sequence[Assignment], *, actor: str, today: date
) -> PoamItem:
    """``item`` with the assignments made, validated as a whole item."""
    values: dict[str, object] = {}
    owner: dict[str, str | None] = (
        item.owner.model_dump() if item.owner else {"name": None, "email": None, "org": None}
    )
    owner_touched = False
    for a in assignments:
        if a.field in _TEXT:
            if a.field == "title" and not a.text:
                raise UsageError("title: a POA&M item needs a title")
            # title and description are text (maybe empty); the others are absent when empty
            values[a.field] = a.text if a.field in ("title", "description") else a.text or None
        elif a.field in _DATES:
            values[a.field] = parse_date(a.text, a.field).isoformat() if a.text else None
        elif a.field in _LISTS:
            values[a.field] = [v.strip() for v in a.text.split(",") if v.strip()]
        elif a.field in _CHOICES:
            values[a.field] = _choice(a)
        else:  # owner, owner.email, owner.name, owner.org
            part = "email" if a.field == "owner" else a.field.split(".", 1)[1]
            if part == "email" and a.text and "@" not in a.text:
                raise UsageError(
                    f"{a.field}: {a.text!r} is not an e-mail address",
                    hint="owners are known by e-mail; set owner.name for a name alone",
                )
            if a.field == "owner":  # a new owner is a whole new person
                owner = {"name": None, "email": None, "org": None}
            owner[part] = a.text or None
            owner_touched = True
    if owner_touched:
        values["owner"] = owner if any(owner.values()) else None
    edited = _validated(item, values)
    if edited.due_date != item.due_date and item.due_date is not None and edited.due_date:
        # Moving the deadline is an extension: the history says so, as a sync's would.
        entry = due_date_extension(
            item.due_date.isoformat(),
            edited.due_date.isoformat(),
            source="the canonical record",
            actor=actor,
            on=today,
        )
        if entry is not None:
            edited = _validated(
                edited,
                {
                    "milestone_changes": [
                        *_dump(edited.milestone_changes),
                        entry.model_dump(mode="json"),
                    ]
                },
            )
    return edited


def _choice(a: Assignment) -> object:
    allowed = _CHOICES[a.field]
    text = a.text.casefold().replace(" ", "_").replace("-", "_")
    if a.field == "kev":
        if text in ("yes", "true", "y"):
            return True
        if text in ("no", "false", "n"):
            return False
        if not text:
            return None
    elif text in allowed:
        return text
    elif not text and a.field != "status":
        return None
    raise UsageError(
        f"{a.field}: {a.text!r} is not one of the values it takes",
        hint=f"{a.field} is one of: {', '.join(allowed)}",
    )


def _validated(item: PoamItem, values: Mapping[str, object]) -> PoamItem:
    try:
        return with_fields(item, values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{where}: {first['msg']}") from exc


def _dump(rows: Sequence[Milestone | MilestoneChange]) -> list[object]:
    return [r.model_dump(mode="json") for r in rows]


# -- milestones --------------------------------------------------------------------------------


def add_milestone(
    item: PoamItem, description: str, due: date | None, *, today: date
) -> tuple[PoamItem, Milestone]:
    """A new open milestone (id: the next number), with a "new" Milestone Changes entry."""
    if not description.strip():
        raise UsageError("a milestone needs a description", hint='--description "what is done"')
    numbers = [int(m.id) for m in item.milestones if m.id.isdigit()]
    milestone = Milestone(
        id=str(max(numbers, default=0) + 1), description=description.strip(), due_date=due
    )
    change = MilestoneChange(kind="new", on=today, text=_milestone_text(milestone))
    edited = _validated(
        item,
        {
            "milestones": [*_dump(item.milestones), milestone.model_dump(mode="json")],
            "milestone_changes": [*_dump(item.milestone_changes), change.model_dump(mode="json")],
        },
    )
    return edited, milestone


def change_milestone(
    item: PoamItem,
    milestone_id: str,
    *,
    today: date,
    description: str | None = None,
    due: date | None = None,
    status: str | None = None,
    completed_on: date | None = None,
) -> PoamItem:
    """The milestone ``milestone_id`` changed; completing it stamps ``completed_on``."""
    found = find_milestone(item, milestone_id)
    changes: dict[str, object] = {}
    if description is not None:
        if not description.strip():
            raise UsageError("a milestone needs a description")
        changes["description"] = description.strip()
    if due is not None:
        changes["due_date"] = due
    if status is not None:
        allowed = [s.value for s in MilestoneStatus]
        if status not in allowed:
            raise UsageError(
                f"milestone status {status!r} is not one it takes",
                hint=f"one of: {', '.join(allowed)}",
            )
        changes["status"] = MilestoneStatus(status)
        if status == MilestoneStatus.COMPLETED:
            changes["completed_on"] = completed_on or found.completed_on or today
        elif found.status == MilestoneStatus.COMPLETED:
            changes["completed_on"] = None  # reopened
    if not changes:
        raise UsageError("nothing to change", hint="give --description, --due or --status")
    updated = found.model_copy(update=changes)
    if updated == found:
        return item
    kind = "complete" if updated.status == MilestoneStatus.COMPLETED != found.status else "update"
    entry = MilestoneChange(kind=kind, on=today, text=_milestone_text(updated))
    return _validated(
        item,
        {
            "milestones": [
                (updated if m.id == found.id else m).model_dump(mode="json")
                for m in item.milestones
            ],
            "milestone_changes": [*_dump(item.milestone_changes), entry.model_dump(mode="json")],
        },
    )


def find_milestone(item: PoamItem, milestone_id: str) -> Milestone:
    for m in item.milestones:
        if m.id == milestone_id:
            return m
    known = ", ".join(f"{m.id} ({m.description[:30]})" for m in item.milestones) or "none"
    raise UsageError(
        f"{item.poam_id} has no milestone {milestone_id!r}", hint=f"its milestones: {known}"
    )


def _milestone_text(m: Milestone) -> str:
    due = f" (due {m.due_date.isoformat()})" if m.due_date else ""
    return f"({m.id}) {m.description}{due}"


# -- closing -----------------------------------------------------------------------------------


def close_item(item: PoamItem, status: str, evidence: str, *, on: date, today: date) -> PoamItem:
    """``item`` closed as ``status`` on ``on``, the evidence kept in its comments."""
    if status not in CLOSING:
        raise UsageError(
            f"{status!r} does not close an item", hint=f"close as one of: {', '.join(CLOSING)}"
        )
    if not evidence.strip():
        raise UsageError("closing needs evidence", hint='--evidence "scan 2026-12-01 clean"')
    if on > today:
        raise UsageError(
            f"--on {on.isoformat()} is in the future", hint="close it on or before today"
        )
    line = f"Closed as {status} on {on.isoformat()}: {evidence.strip()}"
    comments = f"{item.comments}\n{line}" if item.comments else line
    values: dict[str, object] = {"status": status, "comments": comments, "status_date": on}
    if status == Status.COMPLETED:
        values["completed_on"] = on
    return _validated(item, values)
