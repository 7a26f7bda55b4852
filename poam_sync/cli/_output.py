"""Rows of text shown as a terminal table, or as plain, TSV, CSV or JSON for a pipe.

A listing command builds its rows as ``{column: text}`` and hands them to :func:`emit` with
the columns to show. ``--format auto`` (the default) draws a table on a terminal and writes
TSV to a pipe: one line per row, no box drawing, so ``grep``, ``cut`` and ``sort`` work. The
table fits the terminal's width without breaking a date or an e-mail over two lines
(``2026-09-`` / ``29`` helps nobody): titles wrap, and on a narrow terminal the least
important columns are left out first.
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
    #: at most this wide in a table (a long value is cut with an ellipsis)
    max_width: int | None = None
    #: wraps over several lines in a table (a title, a reason) rather than being cut
    wrap: bool = False
    #: left out of a table too narrow for all: lowest first; None: always shown
    drop: int | None = None


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
    """A table at the console's width: dates, ids and e-mails are never cut; a wrapping column
    (a title) takes the room left over several lines; when even that is too little, the
    least important columns are left out first (said under the table)."""
    from rich import box

    cells = [[_cell(row.get(c.name, "")) for c in columns] for row in rows]
    natural = [
        min(
            max([len(c.header), c.min_width or 0, *(len(line[i]) for line in cells)]),
            c.max_width or 10**6,
        )
        for i, c in enumerate(columns)
    ]
    shown = list(range(len(columns)))

    def needed() -> int:
        gaps = 2 * (len(shown) - 1) + 1
        return gaps + sum(
            min(natural[i], columns[i].min_width or 20) if columns[i].wrap else natural[i]
            for i in shown
        )

    left_out: list[str] = []
    while needed() > console.width:
        droppable = [i for i in shown if columns[i].drop is not None]
        if not droppable:
            break
        gone = min(droppable, key=lambda i: columns[i].drop or 0)
        shown.remove(gone)
        left_out.append(columns[gone].name)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    fixed = sum(natural[i] for i in shown if not columns[i].wrap) + 2 * (len(shown) - 1) + 1
    wrapping = [i for i in shown if columns[i].wrap]
    room = max(console.width - fixed, 0) // max(len(wrapping), 1)
    for i in shown:
        c = columns[i]
        if c.wrap:
            width = max(min(natural[i], room), min(natural[i], c.min_width or 20))
            table.add_column(c.header, overflow="fold", width=width)
        else:
            table.add_column(c.header, no_wrap=True, overflow="ellipsis", width=natural[i])
    for line in cells:
        table.add_row(*(escape(line[i]) for i in shown))
    console.print(table)
    if left_out:
        console.print(f"[dim](left out at this width: {', '.join(left_out)}; --columns chooses)[/]")
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
