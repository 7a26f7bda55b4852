"""A workbench on a synced demo store: the bundled sample imported, synced with both
simulators, one conflict provoked (the ISSO retitles an item here while an engineer retitles
its Jira issue) and one problem (an engineer assigns the issue to someone poam-sync cannot
map), served by uvicorn on 127.0.0.1. The browser tests and the screenshot script use it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from poam_sync import formats
from poam_sync.config import parse_config
from poam_sync.model import PoamItem, with_fields
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from poam_sync.simulators.jira import RunningJira, start_jira_simulator
from poam_sync.simulators.servicenow import start_servicenow_simulator
from poam_sync.store import Store
from poam_sync.sync.engine import Engine
from poam_sync.web import WebSettings, create_app
from poam_sync.web.accounts import add_account
from poam_sync.wiring import build_engine
from tests.sync.conftest import config_dict, sim_env

SYSTEM = "acme"
PASSWORD = "correct horse battery"


@dataclass
class Synced:
    url: str  # the workbench
    store: Store
    engine: Engine
    jira: RunningJira
    conflicted: PoamItem  # the item whose title is in conflict with Jira
    jira_key: str
    title_here: str
    title_jira: str


class _Server:
    def __init__(self, app: object) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def synced_workbench(folder: Path, db_url: str | None = None) -> Iterator[Synced]:
    db_url = db_url or f"sqlite:///{folder / 'poam-sync.db'}"
    with ExitStack() as stack:
        jira = stack.enter_context(start_jira_simulator(mode="cloud"))
        snow = stack.enter_context(start_servicenow_simulator(tls_dir=folder / "tls"))
        snow.sim.grc_state_rules = "off"
        store = Store.open(db_url)
        stack.callback(store.close)
        stub = type("W", (), {"db_url": db_url})()
        raw = config_dict(stub)
        raw["system"] = SYSTEM
        config = parse_config(raw, env=sim_env(jira, snow))
        read = formats.read(SAMPLE_FEDRAMP_XLSX, system=SYSTEM)
        with store.begin() as tx:
            tx.import_items(read.items, system=SYSTEM, actor="isso@example.com", batch_id="b1")
        engine = stack.enter_context(build_engine(config, store))
        engine.run_cycle()

        with store.read() as tx:
            linked = {link.item_uuid: link for link in tx.links("jira")}
        third = [i for i in store.items(SYSTEM) if i.uuid in linked][2]
        key = linked[third.uuid].remote_key or ""
        here, there = f"{third.title} (rescoped by the ISSO)", f"{third.title} - split per host"
        with store.begin() as tx:
            tx.save(
                with_fields(third, {"title": here}),
                source="cli",
                actor="isso@example.com",
                reason="scope clarified",
            )
        jira.sim.human_edit(key, "summary", there, user_email="bob@example.com")
        engine.run_cycle()

        for name, role in (("admin@example.gov", "admin"), ("viewer@example.gov", "viewer")):
            add_account(store, name, role, PASSWORD)  # type: ignore[arg-type]
        app = create_app(store, WebSettings(policies={"title": "manual"}))
        server = _Server(app)
        url = server.start()
        stack.callback(server.stop)
        current = store.item(SYSTEM, third.poam_id)
        yield Synced(url, store, engine, jira, current, key, here, there)
