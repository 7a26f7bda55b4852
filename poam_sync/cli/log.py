"""The change log's commands: ``log show``, ``export``, ``verify``, ``keygen``, ``checkpoint``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from poam_sync.cli._app import (
    err,
    esc,
    full,
    guarded,
    log_app,
    open_store,
    out,
    print_json,
    resolve_item,
    short,
)
from poam_sync.cli._output import Column, emit, pick_columns, pick_format
from poam_sync.errors import UsageError

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


@log_app.command("export")
def log_export(
    fmt: Annotated[str, typer.Option("--format", help="csv | jsonl", show_default=False)],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="File to write, - for stdout.", show_default=False),
    ],
    item: Annotated[str | None, typer.Option("--item", help="Only this POA&M ID.")] = None,
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only rows at or after this date/time (UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only rows before this date/time.")] = None,
) -> None:
    """Write the change log as evidence (CSV or JSON Lines, with the hash fields), streamed:
    any size takes the same memory."""

    def body() -> None:
        from poam_sync.audit_export import check_format, export_log
        from poam_sync.store import LogQuery

        kind = check_format(fmt)
        with open_store(read_only=True) as store:
            item_uuid = resolve_item(store, item, system).uuid if item else None
            query = LogQuery(
                item_uuid=item_uuid,
                system=system if item_uuid is None else None,
                since=_moment(since, "--since"),
                until=_moment(until, "--until"),
            )
            count = export_log(store, query, output, kind)
        where = "stdout" if str(output) == "-" else esc(str(output))
        err.print(f"wrote {count} change-log row(s) to {where} ({kind})")

    guarded(body)


_KEY_HELP = (
    "The private key file (default: $POAM_SYNC_CHECKPOINT_KEY_FILE, or the PEM text in "
    "$POAM_SYNC_CHECKPOINT_KEY)."
)


@log_app.command("verify")
def log_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Also prove that the log still holds this signed checkpoint's head "
            "(a checkpoint file, or a folder of them: the newest).",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="The public key to check the checkpoint with (default: KEYFILE.pub)."),
    ] = None,
    key: Annotated[Path | None, typer.Option(help=_KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The result as JSON.")] = False,
) -> None:
    """Recompute the change log's hash chain; name the first broken row. With --checkpoint,
    also catch rows cut off the end (or a whole forged chain) since the checkpoint."""

    def body() -> int:
        from poam_sync import audit_checkpoint

        if checkpoint is None:
            with open_store(read_only=True) as store:
                result = store.verify_log()
            ok, message = result.ok, result.message
            if ok:
                message = f"{result.rows_checked} change-log row(s) verify"
            report: dict[str, object] = {**result.to_json(), "ok": ok, "message": message}
        else:
            found = audit_checkpoint.latest_checkpoint(checkpoint)
            if found is None:
                raise UsageError(
                    f"no checkpoint at {checkpoint}",
                    hint="write one with: poam-sync log checkpoint --key KEYFILE -o FILE",
                )
            signed = audit_checkpoint.read_checkpoint(found)
            verifier = audit_checkpoint.verifying_key(public_key, key)
            with open_store(read_only=True) as store:
                checked = audit_checkpoint.check(store, signed, verifier)
            ok, message = checked.ok, checked.message
            report = {
                "ok": ok,
                "message": message,
                "rows_checked": checked.rows_checked,
                "rows_since_checkpoint": checked.rows_since,
                "checkpoint_file": str(found),
                "checkpoint": signed.checkpoint.model_dump(mode="json"),
            }
        if as_json:
            print_json(report)
        if ok:
            err.print(f"[green]ok[/]: {esc(message)}")
            return 0
        err.print(f"[bold red]broken[/]: {esc(message)}")
        return 1

    raise typer.Exit(guarded(body))


@log_app.command("keygen")
def log_keygen(
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="The private key file to write (and KEYFILE.pub beside it)."
        ),
    ],
) -> None:
    """Make an Ed25519 key pair to sign checkpoints with (KEYFILE mode 0600, KEYFILE.pub)."""

    def body() -> None:
        from poam_sync import audit_checkpoint

        public, kid = audit_checkpoint.generate_key(output)
        err.print(
            f"wrote the private key {esc(str(output))} (mode 0600) and the public key "
            f"{esc(str(public))}; key id {kid}. Keep the private key where the database's "
            "administrators cannot read it; hand the public key to whoever verifies."
        )

    guarded(body)


@log_app.command("checkpoint")
def log_checkpoint(
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="The checkpoint file to write (replaced), or a folder to add one to.",
        ),
    ],
    key: Annotated[Path | None, typer.Option(help=_KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The checkpoint as JSON.")] = False,
) -> None:
    """Sign where the change log stands (last row, its hash, the row count, the time).

    The log is verified first (from the previous checkpoint at --output, if any): a log that
    does not verify is never signed.
    """

    def body() -> None:
        from poam_sync import audit_checkpoint

        signing = audit_checkpoint.load_private_key(key)
        previous = audit_checkpoint.latest_checkpoint(output)
        with open_store(read_only=True) as store:
            signed = audit_checkpoint.make_checkpoint(store, signing, previous=previous)
        written = audit_checkpoint.write_checkpoint(signed, output)
        cp = signed.checkpoint
        if as_json:
            print_json({"file": str(written), **signed.model_dump(mode="json")})
        err.print(
            f"wrote {esc(str(written))}: row {cp.seq} ({cp.rows} row(s)), hash {cp.hash[:16]}..., "
            f"signed by key {cp.key_id}"
        )

    guarded(body)
