"""How soon a status changed in Jira shows in ServiceNow: with webhooks, and by polling alone.

A daemon process (``poam-sync run --http``) syncs N items between the two simulators (run in
this process). Each change moves one Jira issue between To Do and In Progress, as a person
would; the time until the linked ServiceNow record shows the matching state (New / Respond) is
one sample. With webhooks the Jira simulator calls the daemon's ``/webhooks/jira`` (signed;
the full cycle's interval is then 300 s, so only the webhook explains a change); polling alone
waits for the next cycle (``interval_seconds``, at least 5). Prints p50, p95 and
the worst sample per mode, beside the goal (p50 <= 5 s with webhooks) and the polling floor
(half the interval, on average, plus one cycle).

    python benchmarks/webhook_latency.py [--items 20] [--changes 100] [--interval 5]
                                         [--modes webhooks,polling]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poam_sync.demo import simulator_env  # noqa: E402
from poam_sync.model import PoamItem  # noqa: E402
from poam_sync.simulators.jira import RunningJira, start_jira_simulator  # noqa: E402
from poam_sync.simulators.servicenow import (  # noqa: E402
    RunningServiceNow,
    start_servicenow_simulator,
)
from poam_sync.store import Store  # noqa: E402

SECRET = "benchmark-webhook-secret"


def _item(n: int) -> PoamItem:
    return PoamItem.model_validate(
        {
            "poam_id": f"V-{n}",
            "system": "bench",
            "title": f"Weakness {n}",
            "status": "open",
            "original_risk": "moderate",
            "controls": ["SI-2"],
            "due_date": "2027-03-03",
            "owner": {"email": "alice@example.com"},
        }
    )


def _config(db_url: str, interval: int, webhooks: bool) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "database_url": db_url,
        "system": "bench",
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
            },
        },
        "guards": {"max_change_share": 1.0, "min_items": 1000},
        "schedule": {"interval_seconds": interval},
    }
    if webhooks:
        raw["webhooks"] = {"jira": {"secret": "${BENCH_WEBHOOK_SECRET}"}, "debounce_seconds": 0.2}
    return raw


class Daemon:
    def __init__(self, cfg: Path, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "poam_sync",
                "--config",
                str(cfg),
                "run",
                "--http",
                "127.0.0.1:0",
            ],
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        assert self.popen.stderr is not None
        threading.Thread(target=self._read, args=(self.popen.stderr,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith("{") and json.loads(line)["event"] == "daemon.http":
                    return str(json.loads(line)["url"])
            time.sleep(0.05)
        raise SystemExit("".join(self.lines))

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(timeout=60)


def _linked(store: Store, count: int) -> dict[str, tuple[str, str]]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with store.read() as tx:
            jira = {link.item_uuid: link.remote_key for link in tx.links("jira")}
            snow = {link.item_uuid: link.remote_id for link in tx.links("servicenow")}
        both = {u: (jira[u], snow[u]) for u in jira if u in snow}
        if len(both) >= count:
            return both
        time.sleep(0.2)
    raise SystemExit("the initial sync did not finish in time")


def run_mode(mode: str, items: int, changes: int, interval: int) -> list[float]:
    """Fresh simulators, store and daemon for one mode; the latency of each change."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_jira_simulator(mode="cloud") as jira,
        start_servicenow_simulator(tls_dir=Path(tmp) / "tls") as snow,
    ):
        snow.sim.grc_state_rules = "off"  # Respond needs an issue manager we do not sync
        return _measure(mode, items, changes, interval, Path(tmp), jira, snow)


def _measure(
    mode: str,
    items: int,
    changes: int,
    interval: int,
    tmp: Path,
    jira: RunningJira,
    snow: RunningServiceNow,
) -> list[float]:
    db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    store = Store.open(db_url)
    with store.begin() as tx:
        for n in range(1, items + 1):
            tx.save(_item(n), source="cli", actor="bench@example.com", reason="benchmark")
    cfg = Path(tmp) / "poam-sync.yaml"
    cfg.write_text(
        # with webhooks the full cycle is kept out of the way: only the webhook explains a change
        yaml.safe_dump(_config(db_url, interval if mode == "polling" else 300, mode == "webhooks")),
        encoding="utf-8",
    )
    daemon = Daemon(cfg, {**simulator_env(jira, snow), "BENCH_WEBHOOK_SECRET": SECRET})
    try:
        url = daemon.url()
        pairs = list(_linked(store, items).values())
        if mode == "webhooks":
            jira.sim.register_webhook(f"{url}/webhooks/jira", secret=SECRET)
        states = {
            "To Do": snow.sim._state_value("sn_grc_issue", "New"),
            "In Progress": snow.sim._state_value("sn_grc_issue", "Respond"),
        }
        samples = []
        for n in range(changes):
            key, sys_id = pairs[n % len(pairs)]
            now_status = jira.sim.issue(key)["fields"]["status"]["name"]
            target = "To Do" if now_status == "In Progress" else "In Progress"
            if mode == "polling":  # a person's change falls anywhere within the interval
                time.sleep(random.uniform(0, interval))
            started = time.monotonic()
            jira.sim.human_transition(key, target)
            while snow.sim.record("sn_grc_issue", sys_id)["state"] != states[target]:
                if time.monotonic() - started > 4 * interval + 60:
                    raise SystemExit(f"{key} never reached ServiceNow ({mode})")
                time.sleep(0.01)
            samples.append(time.monotonic() - started)
        return samples
    finally:
        daemon.stop()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--modes", default="webhooks,polling")
    args = parser.parse_args()
    print(f"{args.items} items, {args.changes} status changes in Jira per mode")
    for mode in args.modes.split(","):
        samples = sorted(run_mode(mode, args.items, args.changes, args.interval))
        p50 = statistics.median(samples)
        p95 = samples[min(len(samples) - 1, round(0.95 * len(samples)) - 1)]
        peer = (
            "goal: p50 <= 5 s"
            if mode == "webhooks"
            else f"floor: about {args.interval / 2:.1f} s + one cycle on average"
        )
        print(
            f"{mode:>9}: p50 {p50:.2f} s, p95 {p95:.2f} s, worst {samples[-1]:.2f} s "
            f"over {len(samples)} changes (full cycle every "
            f"{args.interval if mode == 'polling' else 300} s; {peer})"
        )


if __name__ == "__main__":
    main()
