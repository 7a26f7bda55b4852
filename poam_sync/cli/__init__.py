"""The ``poam-sync`` command.

Global options come before the command (``poam-sync --db URL import FILE``). ``--json`` output
goes to stdout alone; summaries, progress and logs go to stderr. Exit codes: 0 ok, 1 some input
rejected or some item failed, 2 usage or configuration error. Errors of ours become one message,
never a traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module

from poam_sync.cli._app import app, err

# The command modules register themselves on the Typer apps when imported, in the order
# `poam-sync --help` lists them.
for _module in ("records", "log", "audit", "edit", "sync", "admin"):
    import_module(f"poam_sync.cli.{_module}")

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
