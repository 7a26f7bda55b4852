"""Import, export, and looking at the canonical record and its change log."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from poam_sync.cli._app import (
    app,
    err,
    esc,
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
from poam_sync.errors import UsageError


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

    def body() -> int:
        results: list[dict[str, object]] = []  # one per file, for --json
        rejected = 0
        with open_store() as store:
            for path in paths:
                if not path.exists():
                    raise UsageError(f"{path}: no such file")
                with Progress(
                    TextColumn("[progress.description]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=err,
                    transient=True,
                    disable=not err.is_terminal,
                ) as progress:
                    task = progress.add_task(f"reading {path.name}", total=None)

                    def tick(
                        done: int, total: int, task: TaskID = task, p: Progress = progress
                    ) -> None:
                        p.update(task, completed=done, total=total)

                    read = formats.read(path, format=fmt, system=system, progress=tick)
                target = system or read.system or "default"
                items = [
                    i if i.system == target else i.model_copy(update={"system": target})
                    for i in read.items
                ]
                rejected += len(read.problems)
                write = not dry_run and not (strict and read.problems)
                batch = f"import-{uuid.uuid4().hex[:12]}"
                with store.begin() as tx:
                    outcome = tx.import_items(
                        items,
                        system=target,
                        actor=os.environ.get("USER") or None,
                        batch_id=batch,
                        dry_run=not write,
                    )
                verb = "imported" if write else "would import"
                if strict and read.problems and not dry_run:
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
                "[yellow]some rows were rejected[/]: fix them in the file and import it again "
                "(the good rows are in; re-importing changes only what changed)"
                if not strict
                else "[yellow]nothing was written[/]: fix the rows above and import again"
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


@items_app.command("list")
def items_list(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of items.")] = False,
) -> None:
    """List the canonical POA&M items."""

    def body() -> None:
        with open_store(read_only=True) as store:
            items = store.items(system)
        if as_json:
            print_json([i.model_dump(mode="json") for i in items])
            return
        table = Table(show_lines=False)
        for col in ("POA&M ID", "System", "Status", "Risk", "Owner", "Due", "Title"):
            table.add_column(col, overflow="fold")
        for i in items:
            owner = (i.owner.email or i.owner.name) if i.owner else None
            table.add_row(
                i.poam_id,
                i.system,
                i.status.value,
                (i.adjusted_risk or i.original_risk or "").__str__(),
                owner or "",
                str(i.due_date or i.scheduled_completion_date or ""),
                i.title[:80],
            )
        out.print(table)
        err.print(f"{len(items)} item(s)")

    guarded(body)


@items_app.command("show")
def items_show(
    poam_id: Annotated[str, typer.Argument(help="The POA&M ID.", show_default=False)],
    system: Annotated[
        str | None, typer.Option(help="The system, when the id is ambiguous.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The item as JSON.")] = False,
) -> None:
    """Show one item in full."""

    def body() -> None:
        with open_store(read_only=True) as store:
            item = resolve_item(store, poam_id, system)
        data = item.model_dump(mode="json")
        if as_json:
            print_json(data)
            return
        table = Table(show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in data.items():
            if value in (None, "", [], {}):
                continue
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            table.add_row(key, shown)
        out.print(table)

    guarded(body)


# -- log --------------------------------------------------------------------------------------


@log_app.command("show")
def log_show(
    item: Annotated[str | None, typer.Option("--item", help="Only this POA&M ID.")] = None,
    system: Annotated[str | None, typer.Option(help="The item's system, if ambiguous.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the newest N rows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of rows.")] = False,
) -> None:
    """Show the change log (oldest first)."""

    def body() -> None:
        with open_store(read_only=True) as store:
            item_uuid = resolve_item(store, item, system).uuid if item else None
            rows = store.log(item_uuid=item_uuid, limit=limit)
        if as_json:
            print_json([r.to_json() for r in rows])
            return
        table = Table()
        for col in (
            "Seq",
            "Time (UTC)",
            "POA&M ID",
            "Field",
            "Old",
            "New",
            "Source",
            "Actor",
            "Reason",
        ):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(
                str(r.seq),
                r.at.strftime("%Y-%m-%d %H:%M:%S"),
                r.poam_id,
                r.field,
                short(r.old_value),
                short(r.new_value),
                r.source,
                r.actor or "",
                r.reason or "",
            )
        out.print(table)

    guarded(body)


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
