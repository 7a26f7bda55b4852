"""A record's version as a pull compares it, and the listings that leave our own writes out.

A record's version is its ``sys_mod_count`` ("The number of times the record has been
modified", the common fields of ServiceNow's Table API record schema): an edit in the same
second as ours (``sys_updated_on`` has seconds) is still a new version. With milestones synced,
the version also carries a *tag* of the record's child records, ``<count>+<tag>``: a child
record's edit does not move its parent's ``sys_mod_count``, so the parent's count alone cannot
tell that nothing under it moved. The tag is the number of children and a digest of each
child's ``sys_id`` and ``sys_mod_count``, as a read of the children (:meth:`.Milestones.rows`) or
the answers to their inserts (a Table API insert answers with the record it stored, as the
parent's own create does) show them.

A pull with versions (:func:`moved`, :func:`moved_parents`) lists the window with a few columns
a row, raw values only (``sysparm_display_value=false``), and reads whole only the records whose
version moved:

- a record whose count is the one held (or below it: a lagging read) is an echo;
- the parent of children changed in the window is an echo when the children the window lists
  are exactly the ones its tag holds, each at the count held: the window lists every child
  changed since the last pull, so a child a person edited or added after our read is listed
  with a count (or a sys_id) the tag does not hold. A parent some of whose children are not in
  the window, or whose version has no tag (an older link, a push), is read whole, as before.
  A deleted child is in no listing (as before: an incremental pull never shows a deletion).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from poam_sync.connectors.servicenow.client import TableClient

__all__ = [
    "LISTING_PAGE",
    "children_tag",
    "is_held",
    "moved",
    "moved_parents",
    "split",
    "version_of",
]

#: rows per page of a pull's version listing (two or three columns a row), the Table API's
#: ``sysparm_limit`` default: "Limit to be applied on pagination. The default is 10000" (its
#: parameter table as quoted on the ServiceNow community forum, "Pagination in API response",
#: 2015)
LISTING_PAGE = 10_000
_SEPARATOR = "+"


def children_tag(children: Iterable[tuple[str, str]]) -> str:
    """The tag of a parent's child records, from their ``(sys_id, sys_mod_count)``: their
    number and a digest of the pairs (any order), short enough for a link's version."""
    pairs = sorted(f"{sys_id}:{count}" for sys_id, count in children)
    digest = hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:20]
    return f"{len(pairs)}.{digest}"


def version_of(count: str, tag: str | None) -> str:
    """A record's version: its ``sys_mod_count``, with its children's tag when known."""
    return count if tag is None else f"{count}{_SEPARATOR}{tag}"


def split(version: str) -> tuple[str, str | None]:
    """``(sys_mod_count, children's tag or None)`` of a version :func:`version_of` made."""
    count, sep, tag = version.partition(_SEPARATOR)
    return count, (tag if sep else None)


def is_held(count: str, held: str) -> bool:
    """Whether a record listed at update count ``count`` is what version ``held`` holds: the
    same count, or a lower one (a read that lags cannot be newer)."""
    held_count = split(held)[0]
    if count == held_count:
        return True
    return count.isdigit() and held_count.isdigit() and int(count) < int(held_count)


def moved(client: TableClient, table: str, query: str, known: Mapping[str, str]) -> list[str]:
    """The sys_ids ``query`` finds in ``table`` whose ``sys_mod_count`` is not held in
    ``known`` (sys_id -> version), listed ``sysparm_fields=sys_id,sys_mod_count``."""
    out: list[str] = []
    columns = ["sys_id", "sys_mod_count"]
    for rows in client.pages(table, columns, query, size=LISTING_PAGE, display=False):
        for row in rows:
            sys_id, count = row["sys_id"][0], row["sys_mod_count"][0]
            held = known.get(sys_id)
            if held is not None and is_held(count, held):
                continue  # an echo of what we hold
            out.append(sys_id)
    return out


def moved_parents(
    client: TableClient,
    table: str,
    parent_field: str,
    query: str,
    known: Mapping[str, str] | None,
) -> set[str]:
    """The parents of the child records of ``table`` that ``query`` finds (changed since a
    watermark), less those whose listed children are exactly the ones their version in
    ``known`` tags (see the module)."""
    children: dict[str, dict[str, str]] = {}  # parent -> {child sys_id: sys_mod_count}
    fields = [parent_field, "sys_id", "sys_mod_count"] if known else [parent_field]
    for rows in client.pages(table, fields, query, size=LISTING_PAGE, display=False):
        for row in rows:
            listed = children.setdefault(row[parent_field][0], {})
            if known:
                listed[row["sys_id"][0]] = row["sys_mod_count"][0]
    if not known:
        return set(children)
    out: set[str] = set()
    for parent, listed in children.items():
        held = known.get(parent)
        tag = split(held)[1] if held is not None else None
        if tag is None or tag != children_tag(listed.items()):
            out.add(parent)
    return out
