"""The ``poam-sync`` command.

Global options come before the command (``poam-sync --db URL import FILE``). ``--json`` output
goes to stdout alone; summaries, progress and logs go to stderr. Exit codes: 0 ok, 1 some input
rejected or some item failed, 2 usage or configuration error. Errors of ours become one message,
never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from poam_sync import __version__
from poam_sync.errors import PoamSyncError, Problem, UsageError
from poam_sync.logs import configure

if TYPE_CHECKING:
    from poam_sync.config import Config
    from poam_sync.model import PoamItem
    from poam_sync.store import Store

DEFAULT_DB = "sqlite:///poam-sync.db"
err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)

app = typer.Typer(
    name="poam-sync",
    help="Keep POA&M items in one canonical record, synced both ways with Jira and ServiceNow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
items_app = typer.Typer(help="Look at the canonical record.", no_args_is_help=True)
log_app = typer.Typer(help="The audit-grade change log.", no_args_is_help=True)
simulate_app = typer.Typer(help="Run a bundled Jira or ServiceNow simulator.", no_args_is_help=True)
app.add_typer(items_app, name="items")
app.add_typer(log_app, name="log")
app.add_typer(simulate_app, name="simulate")
conflicts_app = typer.Typer(help="Conflicts waiting for a person.", no_args_is_help=True)
config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(config_app, name="config")

T = TypeVar("T")


class State:
    db: str | None = None
    config: Path | None = None
    verbose: int = 0


state = State()


def _version(value: bool) -> None:
    if value:
        out.print(f"poam-sync {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (default: POAM_SYNC_DATABASE_URL, the config file, then "
            f"{DEFAULT_DB}).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration file (default: POAM_SYNC_CONFIG, then config/poam-sync.yaml).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More logs.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    state.db = db
    state.config = config
    state.verbose = verbose
    configure(verbose=verbose)


# -- helpers -------------------------------------------------------------------------------


def fail(message: str, *, code: int = 1, hint: str | None = None) -> NoReturn:
    err.print(f"[bold red]error:[/] {_esc(message)}")
    if hint:
        err.print(f"  {_esc(hint)}")
    raise typer.Exit(code)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body; our errors become a message and an exit code."""
    try:
        return fn()
    except PoamSyncError as exc:
        fail(exc.message, code=exc.exit_code, hint=exc.hint)


def _config_or_none() -> Config | None:
    from poam_sync.config import config_path, load_config

    path = config_path(state.config)
    if state.config is None and not path.exists():
        return None
    return load_config(path)


def database_url(config: Config | None = None) -> str:
    if state.db:
        return state.db
    env = os.environ.get("POAM_SYNC_DATABASE_URL")
    if env:
        return env
    if config is not None and config.database_url:
        return config.database_url
    return DEFAULT_DB


@contextmanager
def open_store(config: Config | None = None) -> Iterator[Store]:
    from poam_sync.store import Store

    store = Store.open(database_url(config))
    try:
        yield store
    finally:
        store.close()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def print_problems(problems: Sequence[Problem], *, limit: int = 50) -> None:
    for problem in problems[:limit]:
        err.print(f"  [yellow]rejected[/] {_esc(str(problem))}")
    if len(problems) > limit:
        err.print(f"  ... and {len(problems) - limit} more (use --json to see all)")


def _problem_json(p: Problem) -> dict[str, Any]:
    return {
        "file": p.file,
        "sheet": p.sheet,
        "row": p.row,
        "column": p.column,
        "message": p.message,
        "hint": p.hint,
        "code": p.code,
    }


def _resolve_item(store: Store, poam_id: str, system: str | None) -> PoamItem:
    if system is not None:
        return store.item(system, poam_id)
    found = store.find(poam_id)
    if not found:
        raise UsageError(f"no POA&M item {poam_id!r}", hint="`poam-sync items list` shows them")
    if len(found) > 1:
        systems = ", ".join(sorted(i.system for i in found))
        raise UsageError(
            f"POA&M ID {poam_id!r} exists in several systems ({systems})",
            hint="add --system NAME",
        )
    return found[0]


# -- import / export -----------------------------------------------------------------------


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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from poam_sync import formats

    def body() -> int:
        results: list[dict[str, Any]] = []
        rejected = 0
        with open_store(_config_or_none()) as store:
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

                    def tick(done: int, total: int, task: Any = task, p: Any = progress) -> None:
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
                    f"{verb} [bold]{_esc(path.name)}[/] ({read.format}, system {target!r}): "
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
                    err.print(f"  [yellow]missing[/] from this file but kept: {_esc(shown)}{more}")
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
                        "rejected": [_problem_json(p) for p in read.problems],
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
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    system: Annotated[str | None, typer.Option(help="Only this system's items.")] = None,
) -> None:
    """Write the canonical record as a FedRAMP workbook, OSCAL POA&M JSON or CSV."""
    from poam_sync import formats

    def body() -> None:
        with open_store(_config_or_none()) as store:
            items = store.items(system)
        formats.write(items, output, format=fmt, system_name=system)
        err.print(f"wrote {len(items)} item(s) to {_esc(str(output))} ({fmt})")

    guarded(body)


# -- items ----------------------------------------------------------------------------------


@items_app.command("list")
def items_list(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of items.")] = False,
) -> None:
    """List the canonical POA&M items."""

    def body() -> None:
        with open_store(_config_or_none()) as store:
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
        with open_store(_config_or_none()) as store:
            item = _resolve_item(store, poam_id, system)
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
        with open_store(_config_or_none()) as store:
            item_uuid = _resolve_item(store, item, system).uuid if item else None
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
                _short(r.old_value),
                _short(r.new_value),
                r.source,
                r.actor or "",
                r.reason or "",
            )
        out.print(table)

    guarded(body)


def _full(value: Any) -> str:
    """A value in full (conflicting values often differ only at the end of a long text)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


@log_app.command("verify")
def log_verify() -> None:
    """Recompute the change log's hash chain; name the first broken row."""

    def body() -> int:
        with open_store(_config_or_none()) as store:
            result = store.verify_log()
        if result.ok:
            err.print(f"[green]ok[/]: {result.rows_checked} change-log row(s) verify")
            return 0
        err.print(f"[bold red]broken[/]: {_esc(result.message)}")
        return 1

    raise typer.Exit(guarded(body))


# -- simulators -------------------------------------------------------------------------------


@simulate_app.command("jira")
def simulate_jira(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8080,
    mode: Annotated[str, typer.Option(help="cloud | datacenter")] = "cloud",
    state_file: Annotated[
        Path | None, typer.Option("--state", help="Keep state in this JSON file.")
    ] = None,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Delay every call.")] = 0,
) -> None:
    """Run the Jira simulator until interrupted."""
    from poam_sync.simulators.jira import serve

    if mode not in {"cloud", "datacenter"}:
        fail(f"--mode must be cloud or datacenter, not {mode!r}", code=2)
    serve(host=host, port=port, mode=mode, state=state_file, latency_ms=latency_ms)


@simulate_app.command("servicenow")
def simulate_servicenow(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8443,
    tls_dir: Annotated[Path, typer.Option("--tls-dir", help="Where to write the CA.")] = Path(
        "simulator-tls"
    ),
    state_file: Annotated[
        Path | None, typer.Option("--state", help="Keep state in this JSON file.")
    ] = None,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Delay every call.")] = 0,
) -> None:
    """Run the ServiceNow simulator (HTTPS, local CA) until interrupted."""
    from poam_sync.simulators.servicenow import serve

    serve(host=host, port=port, tls_dir=tls_dir, state=state_file, latency_ms=latency_ms)


# -- sync ----------------------------------------------------------------------------------------


def _require_config() -> Config:
    from poam_sync.config import config_path, load_config

    return load_config(config_path(state.config))


@app.command("sync")
def sync_cmd(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="One cycle, then exit: what `sync` always does, so this changes nothing "
            "(kept for scripts). The daemon, cycling on the schedule, is `poam-sync run`.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the plan with each action's why; write nothing."),
    ] = False,
    connector: Annotated[
        list[str] | None, typer.Option("--connector", help="Only this connector (repeatable).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Proceed although a guard tripped.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The cycle's result as JSON.")] = False,
) -> None:
    """Run one sync cycle between the canonical record and every configured connector, then
    exit (`poam-sync run` is the daemon)."""
    from poam_sync.wiring import build_engine

    del once  # one cycle is all `sync` ever runs: the flag only says so

    def body() -> int:
        config = _require_config()
        if not config.connectors:
            raise UsageError(
                "no connectors are configured",
                hint="add some to the config, or try `poam-sync demo`",
            )
        for name in connector or []:
            config.connector(name)
        with open_store(config) as store, build_engine(config, store) as engine:
            report = engine.run_cycle(dry_run=dry_run, force=force, only=connector or None)
        if as_json:
            print_json(cycle_json(report))
        else:
            print_cycle(report)
        return 0 if report.ok else 1

    raise typer.Exit(guarded(body))


def cycle_json(report: Any) -> dict[str, Any]:
    data: dict[str, Any] = report.summary()
    if report.plan is not None and report.dry_run:
        data["actions"] = [
            {
                "poam_id": p.poam_id,
                "action": type(a).__name__,
                "connector": a.connector,
                "field": getattr(a, "field", None),
                "why": a.why,
            }
            for p, a in report.plan.actions()
        ]
        data["skipped"] = list(report.plan.skipped)
    return data


def print_cycle(report: Any) -> None:
    if report.dry_run and report.plan is not None:
        shown = 0
        for p, a in report.plan.actions():
            if type(a).__name__ == "SetBaseline":
                continue
            shown += 1
            kind = type(a).__name__
            err.print(f"  [bold]{_esc(p.poam_id)}[/] {kind} [cyan]{a.connector}[/]: {_esc(a.why)}")
        for why in report.plan.skipped:
            err.print(f"  [dim]skip[/] {_esc(why)}")
        err.print(f"dry run: {shown} action(s) planned, nothing written")
    created = ", ".join(f"{k} {v}" for k, v in sorted(report.created.items())) or "0"
    pushed = ", ".join(f"{k} {v}" for k, v in sorted(report.updated_remote.items())) or "0"
    err.print(
        f"cycle {report.cycle_id}: pulled {dict(report.pulled)}; created {created}; "
        f"updated remote {pushed}; updated here {report.updated_local}; imported "
        f"{report.imported}; adopted {report.adopted}; conflicts {report.conflicts}; "
        f"problems {report.problems}; errors {len(report.errors)}"
    )
    for name, why in report.failed_connectors.items():
        err.print(f"  [red]connector {name} skipped this cycle[/]: {_esc(why)}")
    for e in report.errors:
        err.print(
            f"  [red]error[/] {_esc(e.poam_id)} ({e.connector or 'store'}): {_esc(e.message)}"
        )


# -- conflicts ----------------------------------------------------------------------------------


@conflicts_app.command("list")
def conflicts_list(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array.")] = False,
) -> None:
    """List open conflicts."""
    from poam_sync.reports import _conflict_dict

    def body() -> None:
        from datetime import UTC, datetime

        with open_store(_config_or_none()) as store, store.read() as tx:
            rows = tx.conflicts(state="open")
        now = datetime.now(UTC)
        data = [_conflict_dict(c, now) for c in rows]
        if as_json:
            print_json(data)
            return
        table = Table()
        for col in (
            "ID",
            "POA&M ID",
            "Connector",
            "Field",
            "Last agreed",
            "Here",
            "Remote",
            "By",
            "Age",
        ):
            table.add_column(col, overflow="fold")
        for d in data:
            table.add_row(
                str(d["id"]),
                d["poam_id"],
                d["connector"],
                d["field"],
                _full(d["baseline"]),
                _full(d["local"]),
                _full(d["remote"]),
                d["remote_actor"] or "",
                d["age"],
            )
        out.print(table)
        err.print(f"{len(data)} open conflict(s)")

    guarded(body)


@conflicts_app.command("show")
def conflicts_show(conflict_id: Annotated[int, typer.Argument(help="Conflict id.")]) -> None:
    """Show one conflict with its three values."""
    from datetime import UTC, datetime

    from poam_sync.reports import _conflict_dict

    def body() -> None:
        with open_store(_config_or_none()) as store, store.read() as tx:
            row = tx.conflict(conflict_id)
        data = _conflict_dict(row, datetime.now(UTC)) | {
            "state": row.state,
            "resolution_value": row.resolution_value,
            "taken_from": row.taken_from,
            "resolved_by": row.resolved_by,
            "reason": row.reason,
        }
        print_json(data)

    guarded(body)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: Annotated[int, typer.Argument(help="Conflict id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the change log).")],
    take: Annotated[
        str | None,
        typer.Option("--take", help="local, or the connector's name (jira, servicenow...)"),
    ] = None,
    value: Annotated[
        str | None, typer.Option("--value", help="A value of your own (JSON or text).")
    ] = None,
) -> None:
    """Settle a conflict; the chosen value is pushed on the next cycle."""
    from poam_sync.sync.conflicts import NO_VALUE, settle_conflict

    def body() -> None:
        if (take is None) == (value is None):
            raise UsageError("give exactly one of --take or --value")
        actor = os.environ.get("USER") or "cli"
        with open_store(_config_or_none()) as store, store.begin() as tx:
            settled = settle_conflict(
                tx,
                conflict_id,
                take=take,
                value=NO_VALUE if value is None else _parse_value(value),
                reason=reason,
                actor=actor,
            )
        err.print(
            f"conflict {conflict_id} settled: {settled.field} = {_short(settled.value)}; "
            "the next sync cycle pushes it"
        )

    guarded(body)


# -- reports ----------------------------------------------------------------------------------


@app.command("report")
def report_cmd(
    kind: Annotated[str, typer.Argument(help="conflicts | status")],
    fmt: Annotated[str, typer.Option("--format", help="html | csv | json")] = "html",
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")] = Path(
        "poam-sync-report.html"
    ),
) -> None:
    """Write a conflicts or status report for admins."""
    from poam_sync import reports

    def body() -> None:
        if kind not in ("conflicts", "status"):
            raise UsageError(f"unknown report {kind!r}", hint="conflicts or status")
        if fmt not in ("html", "csv", "json"):
            raise UsageError(f"unknown format {fmt!r}", hint="html, csv or json")
        with open_store(_config_or_none()) as store:
            data = reports.collect(store)
        output.write_text(reports.render(data, kind, fmt), encoding="utf-8")  # type: ignore[arg-type]
        err.print(f"wrote {kind} report to {_esc(str(output))}")

    guarded(body)


# -- configuration ----------------------------------------------------------------------------


@app.command("init")
def init_cmd(
    directory: Annotated[Path, typer.Argument(help="Folder for config/ and mappings/.")] = Path(),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
) -> None:
    """Write a starter configuration and mapping files."""
    from importlib.resources import files
    from importlib.resources.abc import Traversable

    from poam_sync.connectors.registry import connector_types

    targets: dict[Traversable, Path] = {
        files("poam_sync") / "data" / "poam-sync.example.yaml": directory
        / "config"
        / "poam-sync.yaml",
    }
    for kind in connector_types().values():
        if kind.mapping_template is not None:
            targets[kind.mapping_template] = directory / "mappings" / f"{kind.name}.yaml"
    for source, target in targets.items():
        if target.exists() and not overwrite:
            err.print(f"kept {_esc(str(target))} (exists; --overwrite replaces it)")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        err.print(f"wrote {_esc(str(target))}")
    err.print(
        "next: set the environment variables named in config/poam-sync.yaml, then "
        "`poam-sync config check`"
    )


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration and mappings, and test each connection."""
    from poam_sync.connectors.registry import connector_type

    def body() -> int:
        config = _require_config()
        err.print(f"[green]ok[/]: {config.source} is valid ({len(config.connectors)} connector(s))")
        failures = 0
        for cfg in config.connectors:
            try:
                kind = connector_type(cfg.type)
                connector = kind.build(cfg.settings, cfg.mapping, cfg.name)
                try:
                    facts = kind.probe(connector)
                finally:
                    connector.close()
            except PoamSyncError as exc:
                failures += 1
                err.print(f"[red]{cfg.name}[/]: {_esc(str(exc))}")
                continue
            shown = ", ".join(f"{k}={v}" for k, v in facts.items())
            err.print(f"[green]{cfg.name}[/] ({cfg.type}): {_esc(shown)}")
        return 1 if failures else 0

    raise typer.Exit(guarded(body))


@app.command("run")
def run_cmd() -> None:
    """Run the sync daemon on the configured schedule until SIGTERM / SIGINT."""
    from poam_sync.daemon import run_daemon

    # A daemon reports every cycle (one summary line each), so it logs at info at least.
    configure(verbose=max(1, state.verbose))

    def body() -> None:
        config = _require_config()
        run_daemon(config, database_url(config))

    guarded(body)


@app.command("demo")
def demo_cmd(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its database and report.")
    ] = Path("poam-sync-demo"),
) -> None:
    """A full two-way story against the bundled simulators (no Jira or ServiceNow needed)."""
    from poam_sync.demo import run_demo

    raise typer.Exit(guarded(lambda: run_demo(directory, err)))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
