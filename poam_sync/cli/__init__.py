"""The ``poam-sync`` command.

Global options come before the command (``poam-sync --db URL import FILE``). ``--json`` output
goes to stdout alone; summaries, progress and logs go to stderr. Exit codes: 0 ok, 1 something did
not go through (a rejected row, a failed item or connector, a chain that does not verify), 2 it
could not run as asked (usage, configuration, an unknown id, no store, the lead held elsewhere).
Errors of ours become one message, never a traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module

from poam_sync.cli._app import app, err

# The command modules register themselves on the Typer apps when imported, in the order
# `poam-sync --help` lists them.
for _module in ("records", "log", "audit", "edit", "sync", "admin", "users", "web"):
    import_module(f"poam_sync.cli.{_module}")

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
