"""`poam-sync users`: accounts for the workbench, the password from standard input or asked
twice on a terminal, hashed with argon2, disabled and never deleted."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.store import Store
from poam_sync.web.accounts import authenticate

runner = CliRunner()
PASSWORD = "correct horse battery"


def test_an_account_is_added_listed_and_disabled(sqlite_url: str) -> None:
    added = runner.invoke(
        app,
        ["--db", sqlite_url, "users", "add", "ann@example.gov", "--role", "resolver"],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.stderr
    assert "account ann@example.gov added (resolver)" in added.stderr
    listed = runner.invoke(app, ["--db", sqlite_url, "users", "list", "--json"])
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["role"], row["disabled"]) == ("ann@example.gov", "resolver", False)
    with Store.open(sqlite_url) as store:
        with store.read() as tx:
            user = tx.user("ann@example.gov")
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert authenticate(store, "ann@example.gov", PASSWORD) is not None
        assert authenticate(store, "ann@example.gov", PASSWORD + "x") is None
    disabled = runner.invoke(app, ["--db", sqlite_url, "users", "disable", "ann@example.gov"])
    assert disabled.exit_code == 0 and "disabled" in disabled.stderr
    with Store.open(sqlite_url) as store:
        assert authenticate(store, "ann@example.gov", PASSWORD) is None
    table = runner.invoke(app, ["--db", sqlite_url, "users", "list"])
    assert "disabled" in table.stdout


def test_mistakes_are_told_without_a_traceback(sqlite_url: str) -> None:
    def add(*args: str, password: str = PASSWORD) -> tuple[int, str]:
        result = runner.invoke(app, ["--db", sqlite_url, "users", "add", *args], input=password)
        assert "Traceback" not in result.stderr
        return result.exit_code, result.stderr

    assert add("ann", "--role", "boss") == (2, add("ann", "--role", "boss")[1])
    assert "a role is one of: viewer, resolver, admin" in add("ann", "--role", "boss")[1]
    code, said = add("ann", "--role", "viewer", password="short")
    assert code == 2 and "at least 12 characters" in said
    code, said = add("ann", "--role", "viewer", password="")
    assert code == 2 and "no password on standard input" in said
    code, said = add("two words", "--role", "viewer")
    assert code == 2 and "is no account name" in said
    assert add("ann", "--role", "viewer")[0] == 0
    code, said = add("ann", "--role", "admin")
    assert code == 2 and "exists already" in said
    result = runner.invoke(app, ["--db", sqlite_url, "users", "disable", "nobody"])
    assert result.exit_code == 2 and "no account named 'nobody'" in result.stderr
