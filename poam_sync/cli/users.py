"""``poam-sync users``: the workbench's local accounts (add, list, disable)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from poam_sync.cli._app import err, guarded, open_store, out, print_json, users_app
from poam_sync.errors import UsageError


def _read_password() -> str:
    """From standard input when it is no terminal (its first line), else asked twice."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UsageError(
                "no password on standard input",
                hint="pipe it in, e.g. `pass show workbench/alice | poam-sync users add ...`, "
                "or run the command on a terminal to be asked",
            )
        return password
    typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return typed


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The account's name (an e-mail address works well).")],
    role: Annotated[
        str, typer.Option("--role", help="viewer (reads), resolver (settles conflicts) or admin.")
    ],
) -> None:
    """Add an account; the password is read from standard input when it is no terminal."""
    from poam_sync.web.accounts import add_account, role_of

    def body() -> None:
        chosen = role_of(role)
        with open_store() as store:
            password = _read_password()
            user = add_account(store, name, chosen, password)
        err.print(f"account {user.name} added ({user.role})")

    guarded(body)


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array.")] = False,
) -> None:
    """List the accounts and their roles."""

    def body() -> None:
        with open_store(read_only=True) as store, store.read() as tx:
            rows = tx.users()
        data = [
            {
                "name": u.name,
                "role": u.role,
                "disabled": u.disabled,
                "created_at": u.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for u in rows
        ]
        if as_json:
            print_json(data)
            return
        table = Table()
        for col in ("Name", "Role", "State", "Created"):
            table.add_column(col, overflow="fold")
        for d in data:
            table.add_row(
                str(d["name"]),
                str(d["role"]),
                "disabled" if d["disabled"] else "active",
                str(d["created_at"]),
            )
        out.print(table)
        err.print(f"{len(data)} account(s)")

    guarded(body)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="The account to disable.")],
) -> None:
    """Disable an account: it can no longer sign in (its name stays in the change log)."""

    def body() -> None:
        with open_store() as store, store.begin() as tx:
            tx.disable_user(name)
        err.print(f"account {name} disabled")

    guarded(body)
