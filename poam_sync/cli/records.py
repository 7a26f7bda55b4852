"""Import, export, and looking at the canonical record and its change log."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from poam_sync.cli._app import (
    app,
    err,
    esc,
    full,
    guarded,
    items_app,
    log_app,
    open_store,
    out,
    print_json,
    print_problems,
    problem_json,
    resolve_item,
    short,
)
from poam_sync.cli._output import Column, emit, pick_columns, pick_format
from poam_sync.deadlines import current_due_date, due_state
from poam_sync.errors import InputError, UsageError
from poam_sync.model import PoamItem, RiskLevel, Status

if TYPE_CHECKING:
    from poam_sync.store import ImportOutcome, LinkRow, StoreTx


@app.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="POA&M files to import.", show_default=False)],
    system: Annotated[
        str | None, typer.Option(help="System the items belong to (default: from the file).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="auto | fedramp-xlsx | emass-xlsx | oscal | csv"),
    ] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Write nothing if any row is bad.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Import FedRAMP, eMASS, OSCAL or CSV POA&M files into the canonical record."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from poam_sync import formats

    def read_one(path: Path) -> formats.ReadResult | InputError:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            task = progress.add_task(f"reading {path.name}", total=None)

            def tick(done: int, total: int, task: TaskID = task, p: Progress = progress) -> None:
                p.update(task, completed=done, total=total)

            try:
                return formats.read(path, format=fmt, system=system, progress=tick)
            except InputError as exc:
                return exc

    def body() -> int:
        for path in paths:
            if not path.exists():
                raise UsageError(f"{path}: no such file")
        # Every file is read before anything is written: with --strict, one bad file (or
        # row) anywhere means nothing is written, and the files that are good go in together.
        reads = [(path, read_one(path)) for path in paths]
        bad = any(isinstance(r, InputError) or r.problems for _, r in reads)
        write = not dry_run and not (strict and bad)
        results: list[dict[str, object]] = []  # one per file, for --json
        rejected = 0
        with open_store() as store:

            def import_one(tx: StoreTx, path: Path, read: formats.ReadResult) -> ImportOutcome:
                target = system or read.system or "default"
                items = [
                    i if i.system == target else i.model_copy(update={"system": target})
                    for i in read.items
                ]
                return tx.import_items(
                    items,
                    system=target,
                    actor=os.environ.get("USER") or None,
                    batch_id=batch,
                    dry_run=not write,
                )

            batch = f"import-{uuid.uuid4().hex[:12]}"
            outcomes: dict[Path, ImportOutcome] = {}
            readable = [(p, r) for p, r in reads if not isinstance(r, InputError)]
            if write and strict:
                with store.begin() as tx:  # one transaction: all files or none
                    for good_path, good in readable:
                        outcomes[good_path] = import_one(tx, good_path, good)
            for path, read in reads:
                if isinstance(read, InputError):
                    rejected += 1
                    err.print(
                        f"[red]not imported[/] [bold]{esc(path.name)}[/]: the file cannot be read"
                    )
                    print_problems([read.problem])
                    results.append(
                        {
                            "file": str(path),
                            "format": None,
                            "written": False,
                            "rejected": [problem_json(read.problem)],
                        }
                    )
                    continue
                if path not in outcomes:
                    with store.begin() as tx:  # without --strict each file is its own
                        outcomes[path] = import_one(tx, path, read)
                outcome = outcomes[path]
                target = system or read.system or "default"
                rejected += len(read.problems)
                verb = "imported" if write else "would import"
                if strict and bad and not dry_run:
                    verb = "not imported (--strict)"
                err.print(
                    f"{verb} [bold]{esc(path.name)}[/] ({read.format}, system {target!r}): "
                    f"{len(outcome.created)} created, {len(outcome.updated)} updated, "
                    f"{len(outcome.unchanged)} unchanged, {outcome.changes} field changes; "
                    f"{len(read.problems)} row(s) rejected"
                )
                if outcome.missing:
                    shown = ", ".join(outcome.missing[:10])
                    more = (
                        ""
                        if len(outcome.missing) <= 10
                        else f" and {len(outcome.missing) - 10} more"
                    )
                    err.print(f"  [yellow]missing[/] from this file but kept: {esc(shown)}{more}")
                print_problems(read.problems)
                results.append(
                    {
                        "file": str(path),
                        "format": read.format,
                        "system": target,
                        "written": write,
                        "created": outcome.created,
                        "updated": outcome.updated,
                        "unchanged": outcome.unchanged,
                        "missing": outcome.missing,
                        "changes": outcome.changes,
                        "batch_id": batch if write else None,
                        "rejected": [problem_json(p) for p in read.problems],
                    }
                )
        if as_json:
            print_json(results)
        if rejected:
            err.print(
                "[yellow]some rows or files were rejected[/]: fix them and import again "
                "(the good ones are in; re-importing changes only what changed)"
                if not strict
                else "[yellow]nothing was written[/] (--strict): fix the files and rows above "
                "and import again"
            )
        return 1 if rejected else 0

    raise typer.Exit(guarded(body))


@app.command("export")
def export_cmd(
    fmt: Annotated[
        str, typer.Option("--format", help="fedramp-xlsx | oscal-json | csv", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="File to write, - for stdout.", show_default=False),
    ],
    system: Annotated[str | None, typer.Option(help="Only this system's items.")] = None,
) -> None:
    """Write the canonical record as a FedRAMP workbook, OSCAL POA&M JSON or CSV."""
    from poam_sync import formats

    def body() -> None:
        with open_store(read_only=True) as store:
            items = store.items(system)
        if str(output) != "-":
            formats.write(items, output, format=fmt, system_name=system)
            err.print(f"wrote {len(items)} item(s) to {esc(str(output))} ({fmt})")
            return
        with tempfile.TemporaryDirectory(prefix="poam-sync-export-") as folder:
            written = Path(folder) / "export"
            formats.write(items, written, format=fmt, system_name=system)
            sys.stdout.buffer.write(written.read_bytes())
            sys.stdout.flush()
        err.print(f"wrote {len(items)} item(s) to stdout ({fmt})")

    guarded(body)


# -- items ----------------------------------------------------------------------------------


_ITEM_COLUMNS = (
    Column("poam_id", "POA&M ID"),
    Column("system", "System", drop=1),
    Column("status", "Status"),
    Column("risk", "Risk", drop=3),
    Column("owner", "Owner", drop=4),
    Column("due", "Due"),
    Column("due_state", "Due state", drop=6),
    Column("title", "Title", min_width=20, wrap=True),
)
_DEFAULT_ITEM_COLUMNS = ("poam_id", "status", "risk", "owner", "due", "title")
_RISK_ORDER = {"critical": 4, "high": 3, "moderate": 2, "low": 1, "": 0}


def _item_row(item: PoamItem, links: Mapping[str, LinkRow], today: date) -> dict[str, str]:
    risk = item.adjusted_risk or item.original_risk
    owner = item.owner
    row = {
        "poam_id": item.poam_id,
        "system": item.system,
        "status": item.status.value,
        "risk": risk.value if risk else "",
        "owner": (owner.email or owner.name or owner.org or "") if owner else "",
        "due": str(current_due_date(item) or ""),
        "due_state": due_state(item, today),
        "title": item.title,
        "uuid": item.uuid,
    }
    for connector, link in links.items():
        row[connector] = link.remote_key or link.remote_id
        row[f"{connector}_url"] = link.url or ""
    return row


def _sorter(spec: str, columns: Sequence[str]) -> Callable[[list[dict[str, str]]], None]:
    """Sort rows in place by ``spec`` (``due`` or ``-risk,due``: a minus for descending)."""
    keys: list[tuple[str, bool]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, reverse = (part[1:], True) if part.startswith("-") else (part, False)
        if name not in columns:
            raise UsageError(f"cannot sort by {name!r}", hint=f"sort by: {', '.join(columns)}")
        keys.append((name, reverse))

    def sort(rows: list[dict[str, str]]) -> None:
        for name, reverse in reversed(keys):  # stable sorts, last key first
            if name == "risk":
                rows.sort(key=lambda r: _RISK_ORDER.get(r["risk"], 0), reverse=reverse)
            elif name == "due":  # items with no date last, whichever the direction
                dated = [r for r in rows if r["due"]]
                dated.sort(key=lambda r: r["due"], reverse=reverse)
                rows[:] = dated + [r for r in rows if not r["due"]]
            else:
                rows.sort(key=lambda r: r.get(name, "").casefold(), reverse=reverse)

    return sort


def _split(values: list[str] | None) -> set[str]:
    return {v.strip().casefold() for vs in values or [] for v in vs.split(",") if v.strip()}


@items_app.command("list")
def items_list(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only these statuses (repeat or comma-separate): open, completed..."),
    ] = None,
    risk: Annotated[
        list[str] | None, typer.Option(help="Only these risks: low, moderate, high, critical.")
    ] = None,
    owner: Annotated[
        str | None, typer.Option(help="Only owners whose e-mail or name contains this.")
    ] = None,
    due: Annotated[
        list[str] | None,
        typer.Option(help="Only these due states: overdue, due_soon, ok, closed, unknown."),
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue items.")] = False,
    due_within: Annotated[
        int | None,
        typer.Option(min=0, help="Only open items due within DAYS days (overdue ones included)."),
    ] = None,
    conflicted: Annotated[
        bool, typer.Option("--conflicted", help="Only items with an open conflict.")
    ] = False,
    search: Annotated[
        str | None, typer.Option(help="Only items whose POA&M ID or title contains this.")
    ] = None,
    sort: Annotated[
        str | None, typer.Option(help="Sort by columns, e.g. -risk,due (minus: descending).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Show at most N items.")] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="Columns to show, comma-separated: poam_id, system, status, risk, owner, due, "
            "due_state, title, uuid, and each connector's key and URL (jira, jira_url...)."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (a table on a terminal, TSV in a pipe) | table | plain | tsv | csv | json",
        ),
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of whole items.")] = False,
) -> None:
    """List the canonical POA&M items, with their Jira and ServiceNow keys."""

    def body() -> None:
        output = pick_format(fmt)
        with open_store(read_only=True) as store:
            items = store.items(system)
            with store.read() as tx:
                all_links = tx.all_links()
                in_conflict = {c.item_uuid for c in tx.conflicts()} if conflicted else set()
        by_item: dict[str, dict[str, LinkRow]] = {}
        for link in all_links:
            by_item.setdefault(link.item_uuid, {})[link.connector] = link
        connectors = sorted({link.connector for link in all_links})
        available = [
            *_ITEM_COLUMNS,
            Column("uuid", "UUID", drop=0),
            *(Column(c, c.capitalize(), drop=2) for c in connectors),
            *(Column(f"{c}_url", f"{c.capitalize()} URL", drop=0) for c in connectors),
        ]
        default = (*_DEFAULT_ITEM_COLUMNS[:-1], *connectors, _DEFAULT_ITEM_COLUMNS[-1])
        shown = pick_columns(available, columns, default)
        order = _sorter(sort, [c.name for c in available]) if sort else None
        statuses, risks, dues = _split(status), _split(risk), _split(due)
        _check_choices(statuses, {s.value for s in Status}, "status")
        _check_choices(risks, {r.value for r in RiskLevel}, "risk")
        _check_choices(dues, {"overdue", "due_soon", "ok", "closed", "unknown"}, "due state")
        today = datetime.now(UTC).date()
        if overdue:
            dues.add("overdue")
        wanted_owner = owner.casefold() if owner else None
        wanted_text = search.casefold() if search else None
        picked = [
            i
            for i in items
            if (not statuses or i.status.value in statuses)
            and (not risks or ((i.adjusted_risk or i.original_risk) or "") in risks)
            and (wanted_owner is None or _owner_matches(i, wanted_owner))
            and (not conflicted or i.uuid in in_conflict)
            and (due_within is None or _due_within(i, today, due_within))
            and (
                wanted_text is None
                or wanted_text in i.poam_id.casefold()
                or wanted_text in i.title.casefold()
            )
        ]
        if as_json:
            print_json([i.model_dump(mode="json") for i in picked[:limit]])
            return
        rows = [_item_row(i, by_item.get(i.uuid, {}), today) for i in picked]
        if dues:
            rows = [r for r in rows if r["due_state"] in dues]
        if order is not None:
            order(rows)
        total = len(rows)
        count = emit(rows[:limit], shown, output, console=out)
        more = f" of {total} (--limit {limit})" if count < total else ""
        err.print(f"{count} item(s){more}")

    guarded(body)


def _check_choices(given: set[str], allowed: set[str], what: str) -> None:
    unknown = sorted(given - allowed)
    if unknown:
        raise UsageError(
            f"unknown {what} {', '.join(map(repr, unknown))}",
            hint=f"{what} is one of: {', '.join(sorted(allowed))}",
        )


def _due_within(item: PoamItem, today: date, days: int) -> bool:
    due = current_due_date(item)
    return not item.status.is_closed and due is not None and (due - today).days <= days


def _owner_matches(item: PoamItem, wanted: str) -> bool:
    owner = item.owner
    if owner is None:
        return False
    return any(wanted in (v or "").casefold() for v in (owner.email, owner.name, owner.org))


@items_app.command("show")
def items_show(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    system: Annotated[
        str | None, typer.Option(help="The system, when the id is ambiguous.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The item as JSON.")] = False,
) -> None:
    """Show one item in full, with its linked Jira and ServiceNow records."""

    def body() -> None:
        with open_store(read_only=True) as store:
            item = resolve_item(store, poam_id, system)
            with store.read() as tx:
                linked = tx.links_of(item.uuid)
        data = item.model_dump(mode="json")
        if as_json:
            print_json(
                {
                    **data,
                    "links": [
                        {
                            "connector": link.connector,
                            "remote_id": link.remote_id,
                            "remote_key": link.remote_key,
                            "url": link.url,
                            "state": link.state,
                            "broken_reason": link.broken_reason,
                        }
                        for link in linked
                    ],
                }
            )
            return
        table = Table(show_header=False, box=None)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in data.items():
            if value in (None, "", [], {}):
                continue
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            table.add_row(key, esc(shown))
        for link in linked:
            where = " ".join(p for p in (link.remote_key or link.remote_id, link.url) if p)
            if link.state != "active":
                where += f" (broken: {link.broken_reason or 'unknown'})"
            table.add_row(link.connector, esc(where))
        out.print(table)

    guarded(body)


# -- log --------------------------------------------------------------------------------------


_LOG_COLUMNS = (
    Column("seq", "Seq", drop=1),
    Column("at", "Time (UTC)"),
    Column("system", "System", drop=0),
    Column("poam_id", "POA&M ID"),
    Column("field", "Field"),
    Column("old", "Old", max_width=24, drop=3),
    Column("new", "New", max_width=24, drop=4),
    Column("source", "Source", drop=2),
    Column("actor", "Actor", drop=5),
    Column("reason", "Reason", min_width=16, wrap=True),
    Column("batch_id", "Batch", drop=0),
    Column("hash", "Hash", drop=0),
)
_DEFAULT_LOG_COLUMNS = ("seq", "at", "poam_id", "field", "old", "new", "source", "actor", "reason")
_TERMINAL_LOG_ROWS = 100


def _moment(text: str | None, option: str) -> datetime | None:
    """``--since 2026-11-01`` or ``2026-11-01T12:00`` (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a date or time",
            hint=f"write {option} 2026-11-01 or {option} 2026-11-01T12:00 (UTC)",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@log_app.command("show")
def log_show(
    item: Annotated[str | None, typer.Option("--item", help="Only this POA&M ID.")] = None,
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    field: Annotated[
        list[str] | None, typer.Option("--field", help="Only these fields (repeatable).")
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Only rows from these sources: import, cli, jira, servicenow..."),
    ] = None,
    actor: Annotated[
        list[str] | None, typer.Option(help="Only rows by these actors (repeatable).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only rows at or after this date/time (UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only rows before this date/time.")] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Only the newest N rows (on a terminal the newest {_TERMINAL_LOG_ROWS} "
            "unless --all).",
        ),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Every row, also on a terminal.")] = False,
    columns: Annotated[
        str | None,
        typer.Option(
            help="Columns, comma-separated: seq, at, system, poam_id, field, old, new, source, "
            "actor, reason, batch_id, hash."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (a table on a terminal, TSV in a pipe) | table | plain | tsv | csv | json",
        ),
    ] = "auto",
    as_json: Annotated[
        bool, typer.Option("--json", help="Whole rows as a JSON array (streamed).")
    ] = False,
) -> None:
    """Show the change log, oldest first; read a page at a time, so any size streams."""

    def body() -> None:
        from poam_sync.store import LogQuery

        output = pick_format(fmt)
        shown = pick_columns(_LOG_COLUMNS, columns, _DEFAULT_LOG_COLUMNS)
        table = output == "table" or (output == "auto" and out.is_terminal and not as_json)
        newest = limit
        if newest is None and table and not show_all:
            newest = _TERMINAL_LOG_ROWS
        with open_store(read_only=True) as store:
            item_uuid = resolve_item(store, item, system).uuid if item else None
            query = LogQuery(
                item_uuid=item_uuid,
                system=system if item_uuid is None else None,
                fields=frozenset(field or ()),
                sources=frozenset(source or ()),
                actors=frozenset(actor or ()),
                since=_moment(since, "--since"),
                until=_moment(until, "--until"),
            )
            rows = store.iter_log(query, newest=newest)
            if as_json:
                _stream_json(r.to_json() for r in rows)
                return
            count = emit(
                (
                    {
                        "seq": str(r.seq),
                        "at": r.at.strftime("%Y-%m-%d %H:%M:%S"),
                        "system": r.system,
                        "poam_id": r.poam_id,
                        "field": r.field,
                        "old": full(r.old_value) if output != "table" else short(r.old_value),
                        "new": full(r.new_value) if output != "table" else short(r.new_value),
                        "source": r.source,
                        "actor": r.actor or "",
                        "reason": r.reason or "",
                        "batch_id": r.batch_id or "",
                        "hash": r.hash,
                    }
                    for r in rows
                ),
                shown,
                output,
                console=out,
            )
        if newest is not None and count == newest and limit is None:
            err.print(f"the newest {count} row(s); --all or --limit N for more")
        elif table:
            err.print(f"{count} row(s)")

    guarded(body)


def _stream_json(rows: Iterable[object]) -> None:
    """A JSON array written a row at a time."""
    first = True
    sys.stdout.write("[")
    for row in rows:
        sys.stdout.write("\n" if first else ",\n")
        sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str))
        first = False
    sys.stdout.write("]\n" if first else "\n]\n")


@log_app.command("verify")
def log_verify() -> None:
    """Recompute the change log's hash chain; name the first broken row."""

    def body() -> int:
        with open_store(read_only=True) as store:
            result = store.verify_log()
        if result.ok:
            err.print(f"[green]ok[/]: {result.rows_checked} change-log row(s) verify")
            return 0
        err.print(f"[bold red]broken[/]: {esc(result.message)}")
        return 1

    raise typer.Exit(guarded(body))


# -- simulators -------------------------------------------------------------------------------
