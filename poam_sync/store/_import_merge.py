"""What a file re-imported over a known item may change: a three-way decision per field.

A POA&M file is one more side, like a connector. Each import *source* (a file lineage: the same
format, system and file name, or ``import --source NAME``) keeps, per item and field, the value
the file held at its last import (its baseline, in the store's ``baselines`` table under
``import:<source>``). On the next import of that source, per field:

- the file's value equals its baseline: the file did not change it, so the canonical value stays
  (whatever Jira, ServiceNow or an edit did meanwhile);
- the file changed it and the canonical value did not move (or moved to the same value): the
  file's value is taken;
- both changed it, differently: the canonical value stays and the field is a **conflict** with
  source ``import``, settled like any other;
- no baseline yet (the first import of the source over an existing item): the file's value is
  taken, as before the baselines existed.

Fields no file format carries are never touched by a file: ``notes`` (no format has a column for
the item's comments thread) and ``due_date`` (the files' one date column is the scheduled
completion date, which a FedRAMP item must keep; the due date is where the work is now). A due
date that simply followed the scheduled completion date keeps following it.

Pure: JSON values in, decisions out. ``ItemsTx.import_items`` applies them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from poam_sync.model import TRACKED_FIELDS, JsonValue

NOT_FROM_FILES = frozenset({"notes", "due_date"})
"""Fields an import never sets on a known item (no file format carries them)."""

CARRIED = tuple(f for f in TRACKED_FIELDS if f not in NOT_FROM_FILES)
"""The fields a file's baseline records."""

_PREFIX = "import:"
_KEY_LIMIT = 100  # the baselines table's connector column


def source_key(source: str) -> str:
    """The ``baselines.connector`` value of an import source (hashed when it is too long)."""
    key = _PREFIX + source
    if len(key) <= _KEY_LIMIT:
        return key
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return f"{key[: _KEY_LIMIT - 17]}~{digest}"


def lineage(format: str, system: str, file_name: str) -> str:
    """The default source of a file: its format, system and file name."""
    return f"{format}/{system}/{file_name}"


@dataclass(frozen=True, slots=True)
class Clash:
    """A field the file and another side both changed: the canonical value was kept."""

    field: str
    baseline: JsonValue
    canonical: JsonValue
    file: JsonValue


@dataclass(frozen=True, slots=True)
class Merged:
    """The item's values after the import, and the clashes (the canonical value kept)."""

    values: dict[str, JsonValue]
    clashes: tuple[Clash, ...] = field(default=())
    kept: tuple[str, ...] = field(default=())  # fields the file changed nothing in, kept as is


def merge(
    stored: Mapping[str, JsonValue],
    incoming: Mapping[str, JsonValue],
    baseline: Mapping[str, JsonValue] | None,
) -> Merged:
    """``stored`` (the canonical item's JSON) with what ``incoming`` (the file's item) may
    change, given the source's ``baseline`` (None: the source was never imported for it)."""
    values = dict(incoming)
    clashes: list[Clash] = []
    kept: list[str] = []
    for name in NOT_FROM_FILES:
        values[name] = stored.get(name)
    # A due date that followed the scheduled completion date keeps following it.
    scd = "scheduled_completion_date"
    if stored.get("due_date") == stored.get(scd) and stored.get(scd) != incoming.get(scd):
        values["due_date"] = incoming.get(scd)
    if baseline is None:
        return Merged(values)
    for name in CARRIED:
        if name not in baseline:
            continue
        base, mine, theirs = baseline[name], stored.get(name), incoming.get(name)
        if theirs == base and mine != base:
            values[name] = mine  # the file did not change it: the canonical value stays
            kept.append(name)
        elif theirs != base and mine != base and mine != theirs:
            values[name] = mine
            clashes.append(Clash(name, base, mine, theirs))
    if scd in {c.field for c in clashes} | set(kept):
        values["due_date"] = stored.get("due_date")
    return Merged(values, tuple(clashes), tuple(kept))


def baseline_of(incoming: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """What the source's baseline records after an import: the file's own values."""
    return {name: incoming.get(name) for name in CARRIED}
