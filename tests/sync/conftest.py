"""End-to-end fixtures: both simulators over real HTTP(S), a store on each database, an engine
wired from a real configuration exactly as the CLI wires it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from poam_sync.config import Config, parse_config
from poam_sync.demo import simulator_env
from poam_sync.model import PoamItem
from poam_sync.simulators.jira import RunningJira, start_jira_simulator
from poam_sync.simulators.servicenow import RunningServiceNow, start_servicenow_simulator
from poam_sync.store import Store
from poam_sync.sync.engine import Engine
from poam_sync.wiring import build_engine

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    jira: RunningJira
    snow: RunningServiceNow
    store: Store
    db_url: str
    config: Config
    engines: list[Any]

    def engine(self, **overrides: Any) -> Engine:
        config = self.config
        if overrides:
            raw = config_dict(self, **overrides)
            config = parse_config(raw, env=self.env)
        ctx = build_engine(config, self.store)
        engine = ctx.__enter__()
        self.engines.append(ctx)
        return engine

    @property
    def env(self) -> dict[str, str]:
        return sim_env(self.jira, self.snow)

    def jira_key(self, item: PoamItem) -> str:
        with self.store.begin() as tx:
            link = tx.link(item.uuid, "jira")
        assert link is not None
        return link.remote_key

    def snow_id(self, item: PoamItem) -> str:
        with self.store.begin() as tx:
            link = tx.link(item.uuid, "servicenow")
        assert link is not None
        return link.remote_id

    def add(self, *items: PoamItem) -> None:
        with self.store.begin() as tx:
            for item in items:
                tx.save(item, source="cli", actor="isso@example.com", reason="test")


sim_env = simulator_env  # the demo and the tests point configs at simulators alike


def config_dict(world: Any, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "database_url": world.db_url,
        "system": "acme",
        "connectors": {
            "jira": {
                "type": "jira",
                "url": "${JIRA_URL}",
                "email": "${JIRA_USER}",
                "token": "${JIRA_TOKEN}",
                "project_key": "POAM",
                "mapping": str(ROOT / "mappings" / "jira.yaml"),
            },
            "servicenow": {
                "type": "servicenow",
                "url": "${SERVICENOW_URL}",
                "user": "${SERVICENOW_USER}",
                "password": "${SERVICENOW_PASSWORD}",
                "ca_bundle": "${SERVICENOW_CA_BUNDLE}",
                "mapping": str(ROOT / "mappings" / "servicenow.yaml"),
                "import_new": True,
            },
        },
        "guards": {"max_change_share": 1.0, "min_items": 1000},
    }
    for key, value in overrides.items():
        raw[key] = value
    return raw


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    with (
        start_jira_simulator(mode="cloud") as jira,
        start_servicenow_simulator(tls_dir=tmp_path / "tls") as snow,
    ):
        # The engine tests move statuses freely; the GRC issue's own state rules (Respond needs
        # an issue manager poam-sync does not sync) are tested in tests/servicenow.
        snow.sim.grc_state_rules = "off"
        store = Store.open(db_url)
        stub = type("W", (), {"db_url": db_url})()
        config = parse_config(config_dict(stub), env=sim_env(jira, snow))
        w = World(jira, snow, store, db_url, config, [])
        try:
            yield w
        finally:
            for ctx in w.engines:
                ctx.__exit__(None, None, None)
            store.close()


def poam(n: int, **over: Any) -> PoamItem:
    values: dict[str, Any] = {
        "poam_id": f"V-{n}",
        "system": "acme",
        "title": f"Weakness number {n}",
        "description": f"Found by the scanner on host-{n}.",
        "status": "open",
        "original_risk": "high",
        "controls": ["SI-2"],
        "detected_on": "2026-10-01",
        "scheduled_completion_date": "2026-12-31",
        "due_date": "2026-12-31",
        "owner": {"email": "alice@example.com", "name": "Alice", "org": "Platform"},
    }
    values.update(over)
    return PoamItem.model_validate(values)


Factory = Callable[..., PoamItem]
