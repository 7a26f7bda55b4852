"""The sync engine at scale: initial sync, an idle cycle, and the planner alone.

1. Initial sync of N items (default 10,000) to both simulators with 20 ms latency per call;
2. an idle cycle over the N linked items (nothing changed anywhere), then the daemon's steady
   state: idle cycles of the same engine, full (every item planned) and incremental in turn;
3. the pure planner on M items (default 100,000) with two linked connectors.

Each simulator runs in its own process, so wall times and memory are the syncing process's.
Prints wall time, remote calls per item and peak memory (RSS of this process).

    python benchmarks/bench_sync.py [--items 10000] [--latency-ms 20] [--plan-items 100000]
        [--idle-rounds 3] [--setup-latency-ms MS]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poam_sync.config import parse_config  # noqa: E402
from poam_sync.connectors.base import RemoteRecord  # noqa: E402
from poam_sync.logs import configure  # noqa: E402
from poam_sync.model import PoamItem  # noqa: E402
from poam_sync.store import Store  # noqa: E402
from poam_sync.sync.engine import Engine  # noqa: E402
from poam_sync.sync.plan import ConnectorState, LinkInfo, plan  # noqa: E402
from poam_sync.sync.values import to_sync  # noqa: E402
from poam_sync.wiring import build_engine  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def item(n: int) -> PoamItem:
    return PoamItem.model_validate(
        {
            "poam_id": f"V-{n:06d}",
            "system": "bench",
            "uuid": f"00000000-0000-4000-8000-{n:012d}",
            "title": f"Weakness {n}",
            "description": "Found by the scanner.",
            "status": "open",
            "original_risk": ["low", "moderate", "high", "critical"][n % 4],
            "controls": ["SI-2"],
            "due_date": "2027-03-03",
            "scheduled_completion_date": "2027-03-03",
            "owner": {"email": ["alice@example.com", "bob@example.com"][n % 2]},
        }
    )


class Sim:
    def __init__(self, code: str, *, https: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"https?://\S+", line)
        assert match, line
        self.url = match.group(0)
        self.ca: str | None = None
        self.context: ssl.SSLContext | None = None
        if https:
            self.ca = self.proc.stdout.readline().split(": ", 1)[1].strip()
            self.context = ssl.create_default_context(cafile=self.ca)

    def control(self, what: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/_sim/{what}", data=data)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, context=self.context) as r:  # local simulator
            return json.load(r)

    def calls(self) -> int:
        return int(self.control("calls")["total"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def idle_cycles(engine: Engine, n: int, rounds: int, sims: tuple[Sim, Sim]) -> None:
    """The daemon's steady state: idle cycles of one long-lived engine, a full one (every item
    planned, as every cycle did before cycles became incremental) and an incremental one in
    turn, so both see the same machine load; median of ``rounds`` each."""
    if rounds <= 0:
        return
    took: dict[bool, list[float]] = {True: [], False: []}
    calls: dict[bool, list[int]] = {True: [], False: []}
    planned: dict[bool, int] = {}
    for _ in range(rounds):
        for full in (True, False):
            before = sum(sim.calls() for sim in sims)
            start = time.perf_counter()
            report = engine.run_cycle(full=full)
            took[full].append(time.perf_counter() - start)
            calls[full].append(sum(sim.calls() for sim in sims) - before)
            planned[full] = report.planned_items
            assert report.ok and not report.updated_remote and not report.created, report.summary()
    for full, name in ((True, "full (every item, the old cycle)"), (False, "incremental")):
        each = ", ".join(f"{t:.3f}" for t in took[full])
        print(
            f"idle cycle over {n} linked items, {name}: "
            f"median {statistics.median(took[full]):.3f} s of {rounds} ({each}); "
            f"{statistics.median(calls[full]):.0f} calls; planned {planned[full]} items"
        )


def bench_sync(
    n: int, latency_ms: int, idle_rounds: int = 0, setup_latency_ms: int | None = None
) -> None:
    setup_ms = latency_ms if setup_latency_ms is None else setup_latency_ms
    with tempfile.TemporaryDirectory() as tmp:
        jira = Sim(
            "from poam_sync.simulators.jira import serve;"
            "serve(host='127.0.0.1', port=0, mode='cloud', state=None, latency_ms=0)"
        )
        snow = Sim(
            "from pathlib import Path; from poam_sync.simulators.servicenow import serve;"
            f"serve(host='127.0.0.1', port=0, tls_dir=Path({tmp!r}), state=None, latency_ms=0)",
            https=True,
        )
        try:
            for sim in (jira, snow):
                sim.control("latency", {"ms": setup_ms})
            db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            raw: dict[str, Any] = {
                "database_url": db_url,
                "system": "bench",
                "connectors": {
                    "jira": {
                        "type": "jira",
                        "url": jira.url,
                        "email": "sync@example.com",
                        "token": "${JIRA_TOKEN}",
                        "project_key": "POAM",
                        "overlap_minutes": 1,  # JQL's granularity; waited out before the idle cycle
                        "mapping": str(ROOT / "mappings" / "jira.yaml"),
                    },
                    "servicenow": {
                        "type": "servicenow",
                        "url": snow.url,
                        "user": "admin",
                        "password": "${SN_PASSWORD}",
                        "ca_bundle": snow.ca,
                        "mapping": str(ROOT / "mappings" / "servicenow.yaml"),
                    },
                },
            }
            config = parse_config(
                raw, env={"JIRA_TOKEN": "sim-token", "SN_PASSWORD": "sim-password"}
            )
            store = Store.open(db_url)
            with store.begin() as tx:
                tx.import_items(
                    [item(i) for i in range(n)], system="bench", actor="bench", batch_id="b"
                )
            with build_engine(config, store) as engine:
                engine.clock_skew = timedelta(0)  # the simulators share this machine's clock
                for sim in (jira, snow):
                    sim.control("reset", {})
                    sim.control("latency", {"ms": setup_ms})
                start = time.perf_counter()
                report = engine.run_cycle()
                took = time.perf_counter() - start
                jc, sc = jira.calls(), snow.calls()
                print(
                    f"initial sync of {n} items ({setup_ms} ms/call): {took:.1f} s; "
                    f"created {dict(report.created)}; errors {len(report.errors)}; "
                    f"Jira {jc} calls ({jc / n:.3f}/item), "
                    f"ServiceNow {sc} calls ({sc / n:.3f}/item); "
                    f"peak RSS {rss_mib():.0f} MiB"
                )
                # The first cycle after creating reads its own writes back once (echoes). A pull
                # reaches back over the overlap (plus JQL's minute granularity), so records
                # changed in that window are read again by design; the idle cycle is measured
                # once the window has passed, as in a daemon's steady state.
                engine.run_cycle()
                time.sleep(125)
                engine.run_cycle()
                for sim in (jira, snow):
                    sim.control("reset", {})
                    sim.control("latency", {"ms": latency_ms})
                start = time.perf_counter()
                report = engine.run_cycle()
                took = time.perf_counter() - start
                print(
                    f"idle cycle over {n} linked items: {took:.2f} s; Jira {jira.calls()} calls, "
                    f"ServiceNow {snow.calls()} calls; pushed {dict(report.updated_remote)}; "
                    f"planned {report.planned_items} items "
                    f"({'full' if report.full else 'incremental'}); "
                    f"peak RSS {rss_mib():.0f} MiB"
                )
                idle_cycles(engine, n, idle_rounds, (jira, snow))
            store.close()
        finally:
            jira.stop()
            snow.stop()


def bench_plan(m: int) -> None:
    items = {i.uuid: i for i in (item(n) for n in range(m))}
    now = datetime.now(UTC)

    def state(name: str, changed_every: int) -> ConnectorState:
        links = {u: LinkInfo(f"{name}-{k}", f"K-{k}") for k, u in enumerate(items)}
        baselines = {u: to_sync(i) for u, i in items.items()}
        pulled = {}
        for k, i in enumerate(items.values()):
            if k % changed_every == 0:
                fields = dict(to_sync(i), title=f"{i.title} (edited)")
                rid = f"{name}-{k}"
                pulled[rid] = RemoteRecord(rid, f"K-{k}", "2", now, fields, updated_by="bob")
        return ConnectorState(
            name=name,
            synced_fields=frozenset(baselines[next(iter(items))]),
            project=lambda _f, v: v,
            in_scope=lambda _i: True,
            links=links,
            baselines=baselines,
            pulled=pulled,
        )

    states = [state("jira", 10), state("servicenow", 7)]
    start = time.perf_counter()
    result = plan(items, states, {})
    took = time.perf_counter() - start
    print(
        f"planner on {m} items x 2 connectors ({sum(len(s.pulled) for s in states)} changed "
        f"remotely): {took:.2f} s, {sum(len(p.actions) for p in result.items)} actions; "
        f"peak RSS {rss_mib():.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument(
        "--setup-latency-ms",
        type=int,
        default=None,
        help="latency of the initial sync only (default: --latency-ms), to reach 100,000 "
        "linked items sooner when the idle cycles are what is measured",
    )
    parser.add_argument("--plan-items", type=int, default=100_000, help="0: skip the planner")
    parser.add_argument(
        "--idle-rounds",
        type=int,
        default=3,
        help="idle cycles of the long-lived engine, full and incremental in turn (0: none)",
    )
    args = parser.parse_args()
    configure(verbose=0, json=False)
    if args.plan_items:
        bench_plan(args.plan_items)
    bench_sync(args.items, args.latency_ms, args.idle_rounds, args.setup_latency_ms)


if __name__ == "__main__":
    main()
