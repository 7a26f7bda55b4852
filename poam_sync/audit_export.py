"""The change log as evidence: CSV or JSON Lines, streamed at constant memory, hash fields kept.

Rows are read in one snapshot of the database (a consistent stretch of the chain) and written
as they arrive, so a log of any size takes the same memory. Both formats carry every hashed
column and ``prev_hash`` and ``hash``:

- **JSON Lines** (``jsonl``): one object per row: the row's canonical JSON (docs/store.md; keys
  sorted, ``old_value`` and ``new_value`` as JSON values, exactly the text that was hashed) with
  ``prev_hash`` and ``hash`` added at its end. Take those two out of an object and
  ``hash == sha256(prev_hash + "\\n" + canonical(rest))`` can be recomputed from the file alone.
- **CSV**: a header, then one line per row; ``old_value`` and ``new_value`` are their canonical
  JSON text. A text cell a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return) gets a leading ``'`` (OWASP's CSV-injection advice, as the
  other CSV exports do): drop it again before recomputing a hash. JSON Lines is the exact one.
"""

from __future__ import annotations

import csv
import json
import json.encoder
import sys
from collections.abc import Callable, Iterable
from contextlib import closing
from itertools import takewhile
from pathlib import Path
from typing import Literal, TextIO

from poam_sync.errors import UsageError
from poam_sync.store import LogQuery, Store, StoredLogRow, StoreTx, canonical_row

LogFormat = Literal["csv", "jsonl"]
LOG_FORMATS: tuple[LogFormat, ...] = ("csv", "jsonl")

COLUMNS = (
    "seq",
    "at",
    "item_uuid",
    "system",
    "poam_id",
    "field",
    "old_value",
    "new_value",
    "source",
    "actor",
    "reason",
    "batch_id",
    "prev_hash",
    "hash",
)
_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # C, when available
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TEXT_COLUMNS = frozenset(range(1, 12)) - {6, 7}  # the free text; not seq, values or hashes


def check_format(fmt: str) -> LogFormat:
    for known in LOG_FORMATS:
        if fmt == known:
            return known
    raise UsageError(
        f"unknown log export format {fmt!r}", hint=f"use --format {' or '.join(LOG_FORMATS)}"
    )


def _json_text(text: str) -> str:
    """A stored value's JSON text as it is (as hashed); text that is not JSON (edited in the
    table, so the chain no longer verifies there) as a JSON string, so the line stays JSON."""
    try:
        json.loads(text)
    except ValueError:
        return _encode_str(text)
    return text


def write_jsonl(rows: Iterable[StoredLogRow], out: TextIO) -> int:
    count = 0
    for (
        seq,
        at,
        uuid,
        system,
        poam_id,
        field,
        old,
        new,
        source,
        actor,
        reason,
        batch,
        prev,
        digest,
    ) in rows:
        canonical = canonical_row(
            seq=seq,
            at=at,
            item_uuid=uuid,
            system=system,
            poam_id=poam_id,
            field=field,
            old_json=_json_text(old),
            new_json=_json_text(new),
            source=source,
            actor=actor,
            reason=reason,
            batch_id=batch,
        )
        # the canonical row, then the two hash fields
        out.write(
            f'{canonical[:-1]},"prev_hash":{_encode_str(prev)},"hash":{_encode_str(digest)}}}\n'
        )
        count += 1
    return count


def write_csv(rows: Iterable[StoredLogRow], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        cells: list[object] = list(row)
        for i in _TEXT_COLUMNS:
            cell = cells[i]
            if isinstance(cell, str) and cell.startswith(_FORMULA_START):
                cells[i] = "'" + cell
        writer.writerow(cells)
        count += 1
    return count


def export_log(store: Store, query: LogQuery, output: Path, fmt: LogFormat) -> int:
    """Write the rows ``query`` asks for to ``output`` (``-``: stdout); the row count. A file
    is written beside its place and renamed at the end: never left half-written."""
    with store.read() as tx:
        return write_log(tx, query, output, fmt)


def write_log(
    tx: StoreTx, query: LogQuery, output: Path, fmt: LogFormat, *, up_to: int | None = None
) -> int:
    """:func:`export_log` in an open transaction; ``up_to``: no row after that ``seq``."""
    write = write_csv if fmt == "csv" else write_jsonl
    with closing(tx.stream_log(query)) as stream:
        rows = stream if up_to is None else takewhile(lambda r: r[0] <= up_to, stream)
        if str(output) == "-":
            count = write(rows, sys.stdout)
            sys.stdout.flush()
            return count
        partial = output.with_name(f".{output.name}.partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as out:
                count = write(rows, out)
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
    return count
