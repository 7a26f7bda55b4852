"""``poam-sync audit bundle``: what an assessor takes away, in one zip (poam_sync/audit_bundle)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poam_sync.cli._app import app, err, esc, guarded, open_store, print_json
from poam_sync.errors import UsageError

audit_app = typer.Typer(help="Evidence for an assessor.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("bundle")
def audit_bundle(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The zip file to write.", show_default=False)
    ],
    system: Annotated[str | None, typer.Option(help="Only this system's items and log.")] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="The latest signed checkpoint: a file, or a folder of them (the newest)."
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="The public key to check the checkpoint with (default: KEYFILE.pub)."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="The checkpoint key file, whose KEYFILE.pub checks the checkpoint."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The result as JSON.")] = False,
) -> None:
    """Write FILE.zip: the POA&M (FedRAMP xlsx, OSCAL JSON), the change log (JSON Lines, with
    its hashes), the latest checkpoint, a verify report, and a manifest of sha256 sums."""

    def body() -> int:
        from poam_sync import audit_checkpoint
        from poam_sync.audit_bundle import build_bundle

        found = None
        verifier = None
        if checkpoint is not None:
            found = audit_checkpoint.latest_checkpoint(checkpoint)
            if found is None:
                raise UsageError(
                    f"no checkpoint at {checkpoint}",
                    hint="write one with: poam-sync log checkpoint --key KEYFILE -o FILE",
                )
            verifier = audit_checkpoint.verifying_key(public_key, key)
        with open_store(read_only=True) as store:
            result = build_bundle(
                store, output, system=system, checkpoint=found, public_key=verifier
            )
        if as_json:
            print_json(
                {
                    "file": str(result.path),
                    "ok": result.ok,
                    "message": result.message,
                    "items": result.items,
                    "log_rows": result.rows,
                    "files": list(result.files),
                }
            )
        state = "[green]ok[/]" if result.ok else "[bold red]broken[/]"
        err.print(
            f"wrote {esc(str(result.path))}: {result.items} item(s), {result.rows} change-log "
            f"row(s), {len(result.files)} file(s); {state}: {esc(result.message)}"
        )
        return 0 if result.ok else 1

    raise typer.Exit(guarded(body))
