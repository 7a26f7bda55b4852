"""``poam-sync demo``: the whole two-way story on the bundled simulators, in about a minute.

It starts the Jira and ServiceNow simulators on 127.0.0.1, imports the bundled sample POA&M
into a fresh SQLite store, runs a cycle (everything is created on both sides), plays an
engineer closing an issue in Jira and a GRC analyst moving a due date in ServiceNow, runs again
(both changes reach the canonical record and the other side), provokes one conflict, runs once
more (the conflict is recorded, nothing is overwritten), and writes the status report. It ends
with how to open the workbench on its store, with an admin account of its own.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import sys
import threading
from contextlib import ExitStack
from datetime import date, timedelta
from importlib.resources import as_file, files
from pathlib import Path

from rich.console import Console

from poam_sync import formats, reports
from poam_sync.config import parse_config
from poam_sync.errors import UsageError
from poam_sync.model import with_fields
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.simulators.jira import RunningJira, start_jira_simulator
from poam_sync.simulators.jira.model import DEFAULT_EMAIL, DEFAULT_TOKEN
from poam_sync.simulators.servicenow import RunningServiceNow, start_servicenow_simulator
from poam_sync.simulators.servicenow.model import ADMIN_PASSWORD, ADMIN_USER
from poam_sync.store import Store
from poam_sync.sync.engine import CycleReport
from poam_sync.web.accounts import add_account
from poam_sync.wiring import build_engine

SYSTEM = "Acme Cloud"
DEMO_ACCOUNT = "admin@example.com"  # the workbench account the demo makes (an admin)


def _say(console: Console, step: int, text: str) -> None:
    console.print(f"\n[bold cyan]{step}.[/] {text}")


def _cycle(console: Console, report: CycleReport) -> None:
    created = ", ".join(f"{n} {k}" for k, n in sorted(report.created.items())) or "nothing"
    pushed = ", ".join(f"{n} {k}" for k, n in sorted(report.updated_remote.items())) or "nothing"
    console.print(
        f"   created: {created}; updated remotely: {pushed}; updated here: "
        f"{report.updated_local}; conflicts: {report.conflicts}; errors: {len(report.errors)}"
    )
    for e in report.errors:
        console.print(f"   [red]error[/] {e.poam_id} ({e.connector}): {e.message}")


def simulator_env(jira: RunningJira, snow: RunningServiceNow) -> dict[str, str]:
    """The variables config/poam-sync.example.yaml reads, pointing at running simulators
    with their default credentials."""
    return {
        "JIRA_URL": jira.url,
        "JIRA_USER": DEFAULT_EMAIL,
        "JIRA_TOKEN": DEFAULT_TOKEN,
        "SERVICENOW_URL": snow.url,
        "SERVICENOW_USER": ADMIN_USER,
        "SERVICENOW_PASSWORD": ADMIN_PASSWORD,
        "SERVICENOW_CA_BUNDLE": str(snow.ca_path),
    }


def _command() -> str:
    """How to call poam-sync from here: by name when it is on PATH, else by its path."""
    if shutil.which("poam-sync"):
        return "poam-sync"
    beside = Path(sys.executable).parent / "poam-sync"
    return os.path.relpath(beside) if beside.exists() else "poam-sync"


MARKER = ".poam-sync-demo"
"""The file that marks a folder as the demo's own: only such a folder is ever cleared."""

# What a demo writes, and so what a later demo may remove: nothing else in its folder is touched.
_DEMO_FILES = ("poam-sync.db", "poam-sync.db-wal", "poam-sync.db-shm", "status-report.html")
_DEMO_DIRS = ("tls",)


def prepare_folder(directory: Path) -> None:
    """Make ``directory`` ready for a demo without ever deleting what the demo did not write.

    A missing or empty folder is taken (and marked); a previous demo's folder (marked) loses only
    the files a demo writes; anything else is refused with a :class:`UsageError`.
    """
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a folder", hint="give --dir a folder")
    if directory.is_dir() and any(directory.iterdir()):
        # A folder holding only what a demo writes is an earlier demo's, marked or not.
        ours = {MARKER, *_DEMO_FILES, *_DEMO_DIRS}
        if not (directory / MARKER).is_file() and any(
            p.name not in ours for p in directory.iterdir()
        ):
            raise UsageError(
                f"{directory} is not empty and is not a previous demo's folder; "
                "the demo never deletes files it did not write",
                hint="give --dir a new or empty folder",
            )
        for name in _DEMO_FILES:
            (directory / name).unlink(missing_ok=True)
        for name in _DEMO_DIRS:
            if (directory / name).is_dir():
                shutil.rmtree(directory / name)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text(
        "This folder belongs to `poam-sync demo`; a later demo clears what it wrote here.\n",
        encoding="utf-8",
    )


def export_block(env: dict[str, str], db_url: str) -> str:
    """Shell lines that point config/poam-sync.example.yaml at the running simulators and the
    demo's store."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    lines.append(f"export POAM_SYNC_DATABASE_URL={shlex.quote(db_url)}")
    return "\n".join(lines)


def wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_signal) if main else None
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def run_demo(
    directory: Path, console: Console, *, keep_running: bool = False, out: Console | None = None
) -> int:
    """The story; with ``keep_running`` the simulators stay up afterwards (until Ctrl-C or
    SIGTERM) and the variables that reach them are printed on ``out`` (default: ``console``)."""
    prepare_folder(directory)
    db_url = f"sqlite:///{directory / 'poam-sync.db'}"
    console.print("[bold]poam-sync demo[/]: one canonical POA&M, Jira and ServiceNow kept in step")

    with ExitStack() as stack:
        jira = stack.enter_context(start_jira_simulator(mode="cloud"))
        snow = stack.enter_context(start_servicenow_simulator(tls_dir=directory / "tls"))
        jira_map = stack.enter_context(as_file(files("poam_sync.connectors.jira") / "mapping.yaml"))
        snow_map = stack.enter_context(
            as_file(files("poam_sync.connectors.servicenow") / "mapping.yaml")
        )
        _say(console, 1, f"Simulators up: Jira (Cloud) at {jira.url}, ServiceNow at {snow.url}")

        env = simulator_env(jira, snow)
        with as_file(files("poam_sync") / "data" / "poam-sync.example.yaml") as example:
            import yaml

            raw = yaml.safe_load(example.read_text(encoding="utf-8"))
        raw["connectors"]["jira"]["mapping"] = str(jira_map)
        raw["connectors"]["servicenow"]["mapping"] = str(snow_map)
        raw["database_url"] = db_url
        raw["system"] = SYSTEM
        config = parse_config(raw, env=env)

        store = Store.open(db_url)
        stack.callback(store.close)
        sample = SAMPLE_FEDRAMP_XLSX
        read = formats.read(sample, system=SYSTEM)
        with store.begin() as tx:
            outcome = tx.import_items(
                read.items, system=SYSTEM, actor="demo", batch_id="demo-import"
            )
        _say(
            console,
            2,
            f"Imported the sample FedRAMP POA&M workbook ({sample.name}): "
            f"{len(outcome.created)} items into {db_url}",
        )

        engine = stack.enter_context(build_engine(config, store))
        _say(console, 3, "Cycle 1: every open item gets a Jira issue and a ServiceNow GRC issue")
        _cycle(console, engine.run_cycle())

        with store.begin() as tx:
            jira_links = {link.item_uuid: link for link in tx.links("jira")}
            snow_links = {link.item_uuid: link for link in tx.links("servicenow")}
        open_items = [
            i for i in store.items(SYSTEM) if i.uuid in jira_links and i.uuid in snow_links
        ]
        if len(open_items) < 3:
            console.print("[red]the sample has too few open items for the demo[/]")
            return 1
        first, second, third = open_items[:3]
        jira_key = jira_links[first.uuid].remote_key or ""
        snow_number = snow_links[second.uuid].remote_key or ""
        new_due = (second.due_date or date.today()) + timedelta(days=30)
        _say(
            console,
            4,
            f"alice@example.com closes {jira_key} ({first.poam_id}) in Jira; "
            f"dave@example.com moves {snow_number} ({second.poam_id}) to {new_due} in ServiceNow",
        )
        jira.sim.human_transition(jira_key, "Done", user_email="alice@example.com")
        snow.sim.human_update(
            "sn_grc_issue", snow_links[second.uuid].remote_id, {"due_date": new_due.isoformat()}
        )

        _say(console, 5, "Cycle 2: both changes reach the canonical record and the other side")
        _cycle(console, engine.run_cycle())
        for item in (store.item(SYSTEM, first.poam_id), store.item(SYSTEM, second.poam_id)):
            console.print(
                f"   {item.poam_id}: status {item.status.value}, due {item.due_date}"
                + (
                    f"; history: {item.milestone_changes[-1].text}"
                    if item.milestone_changes
                    else ""
                )
            )

        title_here = f"{third.title} (rescoped by the ISSO)"
        title_jira = f"{third.title} - split per host"
        third_key = jira_links[third.uuid].remote_key or ""
        _say(
            console,
            6,
            f"A conflict: the POA&M office retitles {third.poam_id} here while an engineer "
            f"retitles {third_key} in Jira",
        )
        with store.begin() as tx:
            current = tx.get_by_uuid(third.uuid)
            assert current is not None
            tx.save(
                with_fields(current, {"title": title_here}),
                source="cli",
                actor="isso@example.com",
                reason="demo: scope clarified",
            )
        jira.sim.human_edit(third_key, "summary", title_jira, user_email="bob@example.com")

        _say(console, 7, "Cycle 3: the conflict is recorded; neither side is overwritten")
        _cycle(console, engine.run_cycle())
        with store.begin() as tx:
            conflicts = tx.conflicts(state="open")
        for c in conflicts:
            console.print(
                f"   conflict #{c.id} {c.poam_id} {c.field}: here {c.local!r} / "
                f"{c.connector} {c.remote!r} (by {c.remote_actor})"
            )

        report_path = directory / "status-report.html"
        report_path.write_text(
            reports.render(reports.collect(store), "status", "html"), encoding="utf-8"
        )
        verify = store.verify_log()
        chain = "verifies" if verify.ok else "is BROKEN"
        _say(console, 8, f"Change log: {verify.rows_checked} rows; its hash chain {chain}")
        console.print(f"\n[bold green]Done.[/] Status report: {report_path}")
        cmd = _command()
        password = secrets.token_urlsafe(12)
        add_account(store, DEMO_ACCOUNT, "admin", password)
        console.print(
            f"Workbench:    {cmd} --db {db_url} serve --http 127.0.0.1:8080\n"
            f"              then open http://127.0.0.1:8080/ and sign in as {DEMO_ACCOUNT}, "
            f"password {password}"
        )
        console.print(
            f"Look around:  {cmd} --db {db_url} items list\n"
            f"              {cmd} --db {db_url} conflicts list\n"
            f"              {cmd} --db {db_url} log show --item {first.poam_id}\n"
            f"Settle it:    {cmd} --db {db_url} conflicts resolve "
            f"{conflicts[0].id if conflicts else 1} --take local --reason 'ISSO scope wins'"
        )
        if keep_running:
            # absolute paths: the block is meant for another shell, maybe in another folder
            env["SERVICENOW_CA_BUNDLE"] = str(Path(env["SERVICENOW_CA_BUNDLE"]).resolve())
            _keep_running(
                console,
                out or console,
                env,
                f"sqlite:///{(directory / 'poam-sync.db').resolve()}",
                cmd,
            )
    return 0


def _keep_running(
    console: Console, out: Console, env: dict[str, str], db_url: str, cmd: str
) -> None:
    console.print(
        "\n[bold]The simulators keep running[/] (Ctrl-C stops them). In another shell, these "
        "variables make config/poam-sync.example.yaml reach them and the demo's store:"
    )
    # plain text on its own stream: copy it, or `eval` it
    out.print(export_block(env, db_url), markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"then:         {cmd} init  (writes config/poam-sync.yaml, the example, and mappings/)\n"
        f"              {cmd} config check\n"
        f"              {cmd} items list"
    )
    wait_for_stop()
    console.print("stopping the simulators")
