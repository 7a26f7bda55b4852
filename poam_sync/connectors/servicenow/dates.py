"""Canonical days <-> the values of ServiceNow date and date/time columns.

A canonical due date is a day (``YYYY-MM-DD``). ServiceNow has two column types for it:

- ``glide_date`` (a custom ``u_scheduled_completion_date``): a plain day, read and written as is;
- ``glide_date_time`` (``due_date``, which a GRC issue inherits from task): an instant, stored
  and sent by the Table API in UTC, shown to people in their time zone or the instance's
  (``glide.sys.default.tz``). ServiceNow docs, "Time zones": "All times are stored in
  Coordinated Universal Time (UTC). They are displayed globally based on the system time zone".

So a day is written as the first second of that day in the *instance's* time zone, converted to
UTC (``2026-03-09`` in America/New_York is ``2026-03-09 04:00:00``, the day after the change to
daylight saving time, and ``2026-03-07 05:00:00`` the day before), and a stored instant is read
back as the day it falls on in that zone. The zone's rules (``zoneinfo``) decide the offset of
each day, never a fixed one. A value without a time is taken as a day whatever the column says.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

DATE_TIME = "glide_date_time"
_SN_TIME = "%Y-%m-%d %H:%M:%S"


def day_of(raw: str, column_type: str, zone: ZoneInfo) -> str | None:
    """The canonical day of a stored value (None when empty)."""
    text = raw.strip()
    if not text:
        return None
    if len(text) <= 10:
        return text[:10]
    try:
        instant = datetime.strptime(text[:19], _SN_TIME).replace(tzinfo=UTC)
    except ValueError:
        return text[:10]
    if column_type != DATE_TIME:
        return text[:10]
    return instant.astimezone(zone).date().isoformat()


def stored_value(day: str | None, column_type: str, zone: ZoneInfo) -> str:
    """What to write for canonical ``day`` ("" clears the column)."""
    if not day:
        return ""
    if column_type != DATE_TIME:
        return day[:10]
    start = datetime.combine(date.fromisoformat(day[:10]), time(0, 0), tzinfo=zone)
    return start.astimezone(UTC).strftime(_SN_TIME)
