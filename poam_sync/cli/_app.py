"""The command's Typer apps, global options, and the helpers every command uses."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from poam_sync import __version__
from poam_sync.errors import PoamSyncError, Problem, UsageError
from poam_sync.logs import configure

if TYPE_CHECKING:
    from poam_sync.config import Config
    from poam_sync.model import PoamItem
    from poam_sync.store import Store, StoredValue


def _flags_take_no_value() -> None:
    """Typer 0.29's rich help prints every option's type, flags included (``--help <bool>``,
    ``-v <int>``), though a flag takes no value; its plain help already leaves them out. Show
    flags and counted flags as flags."""
    option = getattr(typer.core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if option is None or shown is None:
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        result: str | None = shown(self, ctx)
        return result

    option.display_type_rich = display_type_rich


_flags_take_no_value()

DEFAULT_DB = "sqlite:///poam-sync.db"
err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)

app = typer.Typer(
    name="poam-sync",
    help="Keep POA&M items in one canonical record, synced both ways with Jira and ServiceNow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
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
users_app = typer.Typer(help="The workbench's accounts (poam-sync serve).", no_args_is_help=True)
app.add_typer(users_app, name="users")

T = TypeVar("T")


class State:
    db: str | None = None
    config: Path | None = None
    verbose: int = 0
    debug: bool = False


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
    verbose: Annotated[
        int,
        typer.Option(
            "-v", "--verbose", count=True, show_default=False, help="More logs (-v, -vv)."
        ),
    ] = 0,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="On an error, also print its causes and the traceback (for a bug report).",
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    state.db = db
    state.config = config
    state.verbose = verbose
    state.debug = debug
    configure(verbose=verbose)


# -- helpers -------------------------------------------------------------------------------


def fail(
    message: str, *, code: int = 1, hint: str | None = None, cause: BaseException | None = None
) -> NoReturn:
    """The error and its hint; with ``-v`` the chain of causes, with ``--debug`` the traceback."""
    err.print(f"[bold red]error:[/] {esc(message)}")
    if hint:
        err.print(f"  {esc(hint)}")
    if cause is not None and (state.verbose or state.debug):
        for link in _causes(cause):
            err.print(f"  [dim]caused by:[/] {esc(link)}")
    if cause is not None and state.debug:
        import traceback

        err.print("".join(traceback.format_exception(cause)), markup=False, highlight=False)
    raise typer.Exit(code)


def _causes(exc: BaseException) -> list[str]:
    """What led to ``exc``: each cause as ``Type: message`` (the library's own words)."""
    chain: list[str] = []
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen and len(chain) < 10:
        seen.add(id(current))
        text = str(current).strip().splitlines()
        chain.append(f"{type(current).__name__}: {text[0] if text else ''}")
        current = current.__cause__ or current.__context__
    return chain


def esc(text: str) -> str:
    return text.replace("[", "\\[")


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body; our errors become a message and an exit code."""
    try:
        return fn()
    except PoamSyncError as exc:
        fail(exc.message, code=exc.exit_code, hint=exc.hint, cause=exc)
    except OSError as exc:
        # A file or folder the user named cannot be read or written (not a folder, no
        # permission, disk full): what and where, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        what = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError | NotADirectoryError):
            what = "a file is in the way where a folder is needed"
        fail(f"{where}{what}", code=2, hint="check the path and its permissions", cause=exc)


def database_url(config: Config | None = None) -> str:
    if state.db:
        return state.db
    env = os.environ.get("POAM_SYNC_DATABASE_URL")
    if env:
        return env
    if config is not None and config.database_url:
        return config.database_url
    return DEFAULT_DB


def store_url() -> str:
    """The database URL for a command that needs no connector: of the config file, only
    ``database_url`` is read (connectors' unset variables do not stop ``items list``)."""
    if state.db or os.environ.get("POAM_SYNC_DATABASE_URL"):
        return database_url()
    from poam_sync.config import config_path, load_database_url

    path = config_path(state.config)
    if state.config is None and not path.exists():
        return DEFAULT_DB
    return load_database_url(path) or DEFAULT_DB


@contextmanager
def open_store(config: Config | None = None, *, read_only: bool = False) -> Iterator[Store]:
    """The store at ``config``'s URL, or without a config at :func:`store_url` (no connector
    settings read). ``read_only`` (the commands that only read) never creates, migrates or
    writes it."""
    from poam_sync.store import Store

    url = store_url() if config is None else database_url(config)
    store = Store.open(url, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def print_json(value: object) -> None:
    """``value`` as indented JSON on stdout (what is no JSON, a date say, as its ``str``)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def print_problems(problems: Sequence[Problem], *, limit: int = 50) -> None:
    for problem in problems[:limit]:
        err.print(f"  [yellow]rejected[/] {esc(str(problem))}")
    if len(problems) > limit:
        err.print(f"  ... and {len(problems) - limit} more (use --json to see all)")


def problem_json(p: Problem) -> dict[str, str | int | None]:
    return {
        "file": p.file,
        "sheet": p.sheet,
        "row": p.row,
        "column": p.column,
        "message": p.message,
        "hint": p.hint,
        "code": p.code,
    }


def resolve_item(store: Store, poam_id: str, system: str | None) -> PoamItem:
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


def full(value: StoredValue) -> str:
    """A value in full (conflicting values often differ only at the end of a long text)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def short(value: StoredValue, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def require_config() -> Config:
    from poam_sync.config import config_path, load_config

    return load_config(config_path(state.config))
