"""Set-up and operations: init, config check, reports, the demo, the simulators."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from poam_sync.cli._app import (
    app,
    config_app,
    err,
    esc,
    fail,
    guarded,
    open_store,
    out,
    require_config,
    simulate_app,
)
from poam_sync.errors import PoamSyncError, UsageError
from poam_sync.redact import mask_url_credentials as masked

if TYPE_CHECKING:
    from poam_sync.connectors.base import Connector, Uncovered


@simulate_app.command("jira")
def simulate_jira(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8080,
    mode: Annotated[str, typer.Option(help="cloud | datacenter")] = "cloud",
    state_file: Annotated[
        Path | None, typer.Option("--state", help="Keep state in this JSON file.")
    ] = None,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Delay every call.")] = 0,
    search_lag: Annotated[
        float,
        typer.Option(
            "--search-lag",
            min=0,
            help="Seconds before searches see a write (Jira's eventually consistent index).",
        ),
    ] = 0.0,
) -> None:
    """Run the Jira simulator until interrupted."""
    from poam_sync.simulators.jira import serve

    if mode not in {"cloud", "datacenter"}:
        fail(f"--mode must be cloud or datacenter, not {mode!r}", code=2)
    serve(
        host=host,
        port=port,
        mode=mode,
        state=state_file,
        latency_ms=latency_ms,
        search_lag=search_lag,
    )


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


@app.command("report")
def report_cmd(
    kind: Annotated[str, typer.Argument(help="conflicts | status")],
    fmt: Annotated[str, typer.Option("--format", help="html | csv | json")] = "html",
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="File to write, - for stdout (default: poam-sync-report.<format>).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a conflicts or status report for admins."""
    from poam_sync import reports

    def body() -> None:
        if kind not in ("conflicts", "status"):
            raise UsageError(f"unknown report {kind!r}", hint="conflicts or status")
        if fmt not in ("html", "csv", "json"):
            raise UsageError(f"unknown format {fmt!r}", hint="html, csv or json")
        with open_store(read_only=True) as store:
            data = reports.collect(store)
        text = reports.render(data, kind, fmt)  # type: ignore[arg-type]
        if output == "-":
            sys.stdout.write(text)
            return
        target = Path(output or f"poam-sync-report.{fmt}")
        target.write_text(text, encoding="utf-8")
        err.print(f"wrote {kind} report to {esc(str(target))}")

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

    def body() -> None:
        for source, target in targets.items():
            if target.exists() and not overwrite:
                err.print(f"kept {esc(str(target))} (exists; --overwrite replaces it)")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
            err.print(f"wrote {esc(str(target))}")
        err.print(
            "next: set the environment variables named in config/poam-sync.yaml, then "
            "`poam-sync config check`"
        )

    guarded(body)


def _uncovered(connector: Connector) -> Sequence[Uncovered] | PoamSyncError:
    """What the mapping misses, or why the remote would not tell (a least-privilege account
    may not read the choice lists: a warning, not a failed connection)."""
    try:
        return connector.uncovered()
    except PoamSyncError as exc:
        return exc


def _print_uncovered(name: str, gaps: Sequence[Uncovered] | PoamSyncError) -> int:
    """The remote's values no mapping line covers, each with the line that would; the number
    of warnings (a value left out on purpose is shown, not counted)."""
    if isinstance(gaps, PoamSyncError):
        err.print(
            f"  [yellow]{esc(name)}: could not list the remote's values to compare with the "
            f"mapping[/]: {esc(masked(str(gaps)))}"
        )
        return 1
    counted = 0
    for gap in gaps:
        if gap.deliberate:
            err.print(
                f"  [dim]{esc(name)}: {esc(gap.what)} {esc(repr(gap.value))} is left out of the "
                f"mapping on purpose[/] ({esc(gap.hint)})"
            )
            continue
        counted += 1
        err.print(
            f"  [yellow]{esc(name)}: {esc(gap.what)} {esc(repr(gap.value))} is not in the "
            f"mapping[/]: a record with it is reported, not synced; to cover it: {esc(gap.hint)}"
        )
    return counted


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration and mappings, and test each connection."""
    from poam_sync.connectors.registry import connector_type

    def body() -> int:
        config = require_config()
        failures = warnings = 0
        for cfg in config.connectors:
            try:
                kind = connector_type(cfg.type)
                connector = kind.build(cfg.settings, cfg.mapping, cfg.name)
                try:
                    facts = kind.probe(connector)
                    gaps = _uncovered(connector)
                finally:
                    connector.close()
            except PoamSyncError as exc:
                failures += 1
                err.print(f"[red]{cfg.name}[/]: {esc(masked(str(exc)))}")
                continue
            shown = masked(", ".join(f"{k}={v}" for k, v in facts.items()))
            err.print(f"[green]{cfg.name}[/] ({cfg.type}): {esc(shown)}")
            warnings += _print_uncovered(cfg.name, gaps)
        total = len(config.connectors)
        reached = f"{total - failures} of {total} connector(s) reachable"
        if warnings:
            reached += f"; {warnings} remote value(s) the mapping does not cover"
        if failures:
            err.print(f"[red]failed[/]: {esc(masked(str(config.source)))} is valid; {reached}")
        elif warnings:
            where = esc(masked(str(config.source)))
            err.print(f"[yellow]ok, with warnings[/]: {where} is valid; {reached}")
        else:
            err.print(f"[green]ok[/]: {esc(masked(str(config.source)))} is valid; {reached}")
        return 1 if failures else 0

    raise typer.Exit(guarded(body))


@app.command("demo")
def demo_cmd(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="A new or empty folder (or an earlier demo's) for its database and report.",
        ),
    ] = Path("poam-sync-demo"),
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Leave the simulators up afterwards (until Ctrl-C) and print the variables "
            "that reach them.",
        ),
    ] = False,
) -> None:
    """A full two-way story against the bundled simulators (no Jira or ServiceNow needed)."""
    from poam_sync.demo import run_demo

    raise typer.Exit(guarded(lambda: run_demo(directory, err, keep_running=keep_running, out=out)))
