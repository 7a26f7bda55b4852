"""Rows of text shown as a terminal table, or as plain, TSV, CSV or JSON for a pipe.

A listing command builds its rows as ``{column: text}`` and hands them to :func:`emit` with
the columns to show. ``--format auto`` (the default) draws a table on a terminal and writes
TSV to a pipe: one line per row, no box drawing, so ``grep``, ``cut`` and ``sort`` work. The
table keeps one line per row at any width: long texts end in an ellipsis instead of wrapping
(``2026-09-`` / ``29`` over two lines helps nobody); the full values are one
``--format plain`` or ``--json`` away.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from poam_sync.errors import UsageError

Format = Literal["auto", "table", "plain", "tsv", "csv", "json"]
FORMATS: tuple[str, ...] = ("auto", "table", "plain", "tsv", "csv", "json")


@dataclass(frozen=True, slots=True)
class Column:
    """One column a listing can show."""

    name: str  # what ``--columns`` and the JSON keys call it
    header: str  # the table's heading
    #: at least this wide in a table (dates and ids are never cut); None: as the table decides
    min_width: int | None = None
    #: at most this wide in a table (an e-mail needs no more than 28 characters to be known)
    max_width: int | None = None


def pick_format(value: str) -> Format:
    if value not in FORMATS:
        raise UsageError(
            f"unknown output format {value!r}", hint=f"use one of: {', '.join(FORMATS)}"
        )
    return value  # type: ignore[return-value]  # checked just above


def pick_columns(
    available: Sequence[Column], wanted: str | None, default: Sequence[str]
) -> list[Column]:
    """The columns named in ``wanted`` (comma-separated, in that order), else ``default``."""
    by_name = {c.name: c for c in available}
    names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted else list(default)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            hint=f"columns: {', '.join(by_name)}",
        )
    if not names:
        raise UsageError("--columns names no column", hint=f"columns: {', '.join(by_name)}")
    return [by_name[n] for n in names]


def emit(
    rows: Iterable[Mapping[str, str]],
    columns: Sequence[Column],
    fmt: Format,
    *,
    console: Console,
    stream: TextIO | None = None,
) -> int:
    """Write ``rows`` (only ``columns``) in ``fmt``; the number of rows written.

    TSV, CSV and JSON stream: a row is written as soon as it comes, so a listing of a large
    store starts at once and holds one row at a time."""
    stream = stream if stream is not None else sys.stdout
    if fmt == "auto":
        fmt = "table" if console.is_terminal else "tsv"
    if fmt == "table":
        return _table(rows, columns, console)
    if fmt == "plain":
        return _plain(rows, columns, stream)
    if fmt == "json":
        return _json(rows, columns, stream)
    return _delimited(rows, columns, stream, fmt)


def _table(rows: Iterable[Mapping[str, str]], columns: Sequence[Column], console: Console) -> int:
    """One line per row at the console's width: each column as wide as its widest value (up
    to its ``max_width``), and the widest column (a title) shortened to what is left."""
    from rich import box

    cells = [[_cell(row.get(c.name, "")) for c in columns] for row in rows]
    widths = [
        min(
            max([len(c.header), c.min_width or 0, *(len(line[i]) for line in cells)]),
            c.max_width or 10**6,
        )
        for i, c in enumerate(columns)
    ]
    room = console.width - 2 * (len(columns) - 1) - 1  # two spaces between columns
    floors = [c.min_width or min(len(c.header), 8) for c in columns]
    while sum(widths) > room:  # one character at a time off the column with most to spare
        spare, widest = max((w - f, i) for i, (w, f) in enumerate(zip(widths, floors, strict=True)))
        if spare <= 0:
            break  # nothing left to shorten: the terminal cuts the line
        widths[widest] -= 1
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for c, width in zip(columns, widths, strict=True):
        table.add_column(c.header, no_wrap=True, overflow="ellipsis", width=width)
    for line in cells:
        table.add_row(*(escape(v) for v in line))
    console.print(table)
    return len(cells)


def _cell(text: str) -> str:
    return " ".join(text.split())  # one line per row: newlines and tabs folded


def _plain(rows: Iterable[Mapping[str, str]], columns: Sequence[Column], stream: TextIO) -> int:
    """Columns aligned with spaces, nothing cut: for reading in full and for ``less -S``."""
    table = [[c.header for c in columns]]
    table += [[" ".join(row.get(c.name, "").split()) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        stream.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        stream.write("\n")
    return len(table) - 1


def _delimited(
    rows: Iterable[Mapping[str, str]], columns: Sequence[Column], stream: TextIO, fmt: str
) -> int:
    """TSV (tabs and newlines inside values become spaces, as TSV allows neither) or CSV
    (RFC 4180 quoting)."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([c.name for c in columns])
        for row in rows:
            writer.writerow([row.get(c.name, "") for c in columns])
            count += 1
        return count
    stream.write("\t".join(c.name for c in columns) + "\n")
    for row in rows:
        stream.write("\t".join(" ".join(row.get(c.name, "").split()) for c in columns) + "\n")
        count += 1
    return count


def _json(rows: Iterable[Mapping[str, str]], columns: Sequence[Column], stream: TextIO) -> int:
    """A JSON array of objects, one per line, written as the rows come."""
    count = 0
    stream.write("[")
    for row in rows:
        stream.write(",\n" if count else "\n")
        stream.write(json.dumps({c.name: row.get(c.name, "") for c in columns}, ensure_ascii=False))
        count += 1
    stream.write("\n]\n" if count else "]\n")
    return count
