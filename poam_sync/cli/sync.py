"""The sync: one cycle, the daemon, and the conflicts waiting for a person."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from poam_sync.cli._actor import who
from poam_sync.cli._app import (
    app,
    conflicts_app,
    database_url,
    err,
    esc,
    full,
    guarded,
    open_store,
    out,
    print_json,
    require_config,
    short,
    state,
)
from poam_sync.errors import PoamSyncError, UsageError
from poam_sync.logs import configure

if TYPE_CHECKING:
    from collections.abc import Mapping

    from poam_sync.connectors.base import SyncValue
    from poam_sync.sync.results import CycleReport


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
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="Also list every connector's record ids (keys only) to find linked records "
            "deleted remotely (the daemon does it every `sync.reconcile_every` cycles).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The cycle's result as JSON.")] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="When a daemon (or another sync) leads this database, wait until it is "
            "free instead of exiting with code 2.",
        ),
    ] = False,
) -> None:
    """One sync cycle with every configured connector, then exit (`run` is the daemon)."""
    from poam_sync.cli._progress import cycle_progress
    from poam_sync.store import leader_lock
    from poam_sync.wiring import build_engine

    del once  # one cycle is all `sync` ever runs: the flag only says so

    def body() -> int:
        config = require_config()
        if not config.connectors:
            raise UsageError(
                "no connectors are configured",
                hint="add some to the config, or try `poam-sync demo`",
            )
        for name in connector or []:
            config.connector(name)
        url = database_url(config)
        with open_store(config) as store, leader_lock(url) as lock:
            if not dry_run:  # a dry run writes nothing: it needs no lead
                poll = max(0.5, config.schedule.takeover_seconds / 2)

                def waiting(holder: str | None) -> None:
                    err.print(f"waiting for the lead: {esc(holder or lock.what)} holds it")

                lock.acquire(wait=wait, poll_seconds=poll, waiting=waiting)
            fence = None if dry_run else lock.check
            with (
                build_engine(config, store, fence=fence) as engine,
                cycle_progress(err) as progress,
            ):
                report = engine.run_cycle(
                    dry_run=dry_run,
                    force=force,
                    only=connector or None,
                    reconcile=True if reconcile else None,
                    progress=progress,
                )
        if as_json:
            print_json(cycle_json(report))
        else:
            print_cycle(report)
        return 0 if report.ok else 1

    raise typer.Exit(guarded(body))


def cycle_json(report: CycleReport) -> dict[str, object]:
    data: dict[str, object] = {**report.summary()}
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


def _per(counts: Mapping[str, int]) -> str:
    """``jira 3, servicenow 2`` (``0`` when empty), never a Python dict."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"


def summary_line(report: CycleReport) -> str:
    """The cycle in one line; a dry run says what it *would* do."""
    if report.dry_run:
        return (
            f"dry run {report.cycle_id}: pulled {_per(report.pulled)}; would create "
            f"{_per(report.created)}; would update remote {_per(report.updated_remote)}; "
            f"would update here {report.updated_local}; would import {report.imported}; "
            f"would adopt {report.adopted}; conflicts {report.conflicts}; "
            f"problems {report.problems}; unreadable {len(report.unreadable)}"
        )
    return (
        f"cycle {report.cycle_id}: pulled {_per(report.pulled)}; created "
        f"{_per(report.created)}; updated remote {_per(report.updated_remote)}; updated here "
        f"{report.updated_local}; imported {report.imported}; adopted {report.adopted}; "
        f"conflicts {report.conflicts}; problems {report.problems}; unreadable "
        f"{len(report.unreadable)}; errors {len(report.shown_errors())}"
    )


def print_cycle(report: CycleReport) -> None:
    if report.dry_run and report.plan is not None:
        shown = 0
        for p, a in report.plan.actions():
            if type(a).__name__ == "SetBaseline":
                continue
            shown += 1
            kind = type(a).__name__
            err.print(f"  [bold]{esc(p.poam_id)}[/] {kind} [cyan]{a.connector}[/]: {esc(a.why)}")
        for why in report.plan.skipped:
            err.print(f"  [dim]skip[/] {esc(why)}")
        err.print(f"dry run: {shown} action(s) planned, nothing written")
    err.print(summary_line(report))
    for name, why in report.failed_connectors.items():
        err.print(f"  [red]connector {name} skipped this cycle[/]: {esc(why)}")
    for name, why in report.guarded.items():
        err.print(f"  [red]guard: connector {name} left out of this cycle[/]: {esc(why)}")
    if report.reconciled:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(report.reconciled.items()))
        err.print(f"  reconcile: listed {listed}; {len(report.vanished)} linked record(s) gone")
    for v in report.vanished:
        err.print(f"  [yellow]gone[/] {esc(v.message)}\n    [dim]fix:[/] {esc(v.hint)}")
    for u in report.unreadable:
        err.print(
            f"  [yellow]unreadable[/] {esc(u.poam_id)} {esc(u.field)} in {u.connector} "
            f"{esc(u.remote_key)}: {esc(u.message)}"
            + (f"\n    [dim]fix:[/] {esc(u.hint)}" if u.hint else "")
        )
    for e in report.shown_errors():
        where = f"{e.connector or 'store'}" + (f" {e.remote_key}" if e.remote_key else "")
        err.print(f"  [red]error[/] {esc(e.poam_id)} ({esc(where)}): {esc(e.message)}")


# -- conflicts ----------------------------------------------------------------------------------


@conflicts_app.command("list")
def conflicts_list(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array.")] = False,
) -> None:
    """List open conflicts."""
    from poam_sync.reports import _conflict_dict

    def body() -> None:
        from datetime import UTC, datetime

        with open_store(read_only=True) as store, store.read() as tx:
            rows = tx.conflicts(state="open")
            links = {c.item_uuid: tuple(tx.links_of(c.item_uuid)) for c in rows}
        now = datetime.now(UTC)
        data = [_conflict_dict(c, now, links[c.item_uuid]) for c in rows]
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
                full(d["baseline"]),
                full(d["local"]),
                full(d["remote"]),
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
        with open_store(read_only=True) as store, store.read() as tx:
            row = tx.conflict(conflict_id)
            links = tuple(tx.links_of(row.item_uuid))
        data = _conflict_dict(row, datetime.now(UTC), links) | {
            "state": row.state,
            "resolution_value": row.resolution_value,
            "taken_from": row.taken_from,
            "resolved_by": row.resolved_by,
            "reason": row.reason,
        }
        print_json(data)

    guarded(body)


def _parse_value(text: str) -> SyncValue:
    """A person's value: JSON, or else the text itself (the model validates it on settling)."""
    try:
        value: SyncValue = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value


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
    actor: Annotated[
        str | None,
        typer.Option(help="Who settles it (default: the config's actor, then the OS user)."),
    ] = None,
) -> None:
    """Settle a conflict; the chosen value is pushed on the next cycle."""
    from poam_sync.sync.conflicts import NO_VALUE, settle_conflict

    def body() -> None:
        if (take is None) == (value is None):
            raise UsageError("give exactly one of --take or --value")
        author = who(actor)  # never blank in the change log
        with open_store() as store, store.begin() as tx:
            settled = settle_conflict(
                tx,
                conflict_id,
                take=take,
                value=NO_VALUE if value is None else _parse_value(value),
                reason=reason,
                actor=author,
            )
        err.print(
            f"conflict {conflict_id} settled: {settled.field} = {short(settled.value)}; "
            "the next sync cycle pushes it"
        )

    guarded(body)


# -- reports ----------------------------------------------------------------------------------


@app.command("run")
def run_cmd(
    interval: Annotated[
        int | None,
        typer.Option(
            "--interval",
            min=5,
            help="Seconds between cycles (default: schedule.interval_seconds of the config).",
            show_default=False,
        ),
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="HOST:PORT",
            help="Serve /healthz, /readyz and /metrics there (e.g. 127.0.0.1:8080).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the sync daemon on the configured schedule until SIGTERM / SIGINT.

    Several daemons may run on one database: one leads (syncs), the others stand by and take
    over within schedule.takeover_seconds when it stops or dies."""
    from poam_sync.daemon import run_daemon, start_failed
    from poam_sync.health import parse_listen

    # A daemon reports every cycle (one summary line each), so it logs at info at least.
    configure(verbose=max(1, state.verbose))
    try:
        listen = parse_listen(http) if http is not None else None
        config = require_config()
    except PoamSyncError as exc:  # one JSON line, like everything else the daemon says
        raise typer.Exit(start_failed(exc)) from None
    if interval is not None:
        schedule = config.schedule.model_copy(update={"interval_seconds": interval})
        config = config.model_copy(update={"schedule": schedule})
    raise typer.Exit(run_daemon(config, database_url(config), http=listen))
