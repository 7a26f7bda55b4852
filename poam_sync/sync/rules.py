"""Rules of the POA&M domain that the sync applies to values it takes in. Pure functions.

A POA&M's scheduled completion date is a commitment to the authorizing official: it never
moves silently. When an engineer or analyst moves an item's due date later in a remote, the
canonical record takes the new due date and records the move as an *extension* deviation in
the item's milestone-change history, naming where and by whom.
"""

from __future__ import annotations

from datetime import date

from poam_sync.connectors.base import SyncValue
from poam_sync.model import MilestoneChange


def due_date_extension(
    old: SyncValue, new: SyncValue, *, source: str, actor: str | None, on: date
) -> MilestoneChange | None:
    """The extension to record when a due date taken from ``source`` moved later, else None.

    An earlier date, a date set for the first time or cleared, or a value that is not an ISO
    date is no extension (nothing to record).
    """
    if not _later(old, new):
        return None
    return MilestoneChange(
        kind="extension",
        on=on,
        text=f"due date moved from {old} to {new} in {source}" + (f" by {actor}" if actor else ""),
    )


def _later(old: SyncValue, new: SyncValue) -> bool:
    try:
        return bool(old and new and date.fromisoformat(str(new)) > date.fromisoformat(str(old)))
    except ValueError:
        return False
