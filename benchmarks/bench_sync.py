"""The sync engine at scale: initial sync, an idle cycle, and the planner alone.

1. Initial sync of N items (default 10,000), each with K milestones (default 2; 0 is the
   no-milestone variant), to both simulators with 20 ms latency per call;
2. the first cycle after it, which finds our own creates in its pull window (echoes);
3. an idle cycle over the N linked items (nothing changed anywhere), then the daemon's
   steady state: idle cycles of the same engine, full and incremental in turn;
4. the pure planner on M items (default 100,000) with two linked connectors.

``--mode echo`` runs only 1 and 2, twice: with the pulls leaving out the records still at the
version our creates read back, and without (every record in the window read whole, mapped and
planned, as before), alternately, so both are measured in the same window of a shared machine.

Each simulator runs in its own process, so wall times and memory are the syncing process's.
Prints wall time, remote calls per item per system, the floor those calls set (calls x latency /
requests in flight per host) and peak memory (RSS of this process).

    python benchmarks/bench_sync.py [--items 10000] [--milestones 2] [--latency-ms 20]
        [--in-flight 4] [--plan-items 100000] [--mode all|echo] [--plan-only] [--initial-only]
        [--idle-rounds 3] [--echo-only]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
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


def cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def item(n: int, milestones: int = 0) -> PoamItem:
    return PoamItem.model_validate(
        {
            "milestones": [
                {
                    "id": f"M{k + 1}",
                    "description": f"Milestone {k + 1} of weakness {n}",
                    "due_date": f"2027-0{k % 9 + 1}-15",
                }
                for k in range(milestones)
            ],
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

    def stop(self) -> float:
        """Stop the simulator; the CPU seconds (user + system) its process used."""
        before = cpu_s(resource.RUSAGE_CHILDREN)
        self.proc.terminate()
        self.proc.wait(timeout=20)
        # a child's usage joins RUSAGE_CHILDREN when it is reaped: the difference is this one's
        return cpu_s(resource.RUSAGE_CHILDREN) - before


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


def _seed(db_url: str, n: int, milestones: int) -> None:
    store = Store.open(db_url)
    with store.begin() as tx:
        tx.import_items(
            [item(i, milestones) for i in range(n)], system="bench", actor="bench", batch_id="b"
        )
    store.close()


def bench_sync(
    n: int,
    latency_ms: int,
    *,
    milestones: int = 2,
    in_flight: int | None = None,
    initial_only: bool = False,
    idle: bool = True,
    skip_echoes: bool = True,
    idle_rounds: int = 3,
    setup_latency_ms: int | None = None,
) -> None:
    # the initial sync's latency (default: the same), to reach many linked items sooner when
    # the idle cycles are what is measured
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
            if in_flight is not None:
                raw["sync"] = {"max_in_flight": in_flight}
            config = parse_config(
                raw, env={"JIRA_TOKEN": "sim-token", "SN_PASSWORD": "sim-password"}
            )
            # the items are written by a child process, so that this one's peak RSS is the sync's
            seeding = multiprocessing.get_context("fork").Process(
                target=_seed, args=(db_url, n, milestones)
            )
            seeding.start()
            seeding.join()
            assert seeding.exitcode == 0
            store = Store.open(db_url)
            with build_engine(config, store) as engine:
                engine.clock_skew = timedelta(0)  # the simulators share this machine's clock
                for sim in (jira, snow):
                    sim.control("reset", {})
                    sim.control("latency", {"ms": setup_ms})
                start, cpu = time.perf_counter(), cpu_s()
                report = engine.run_cycle()
                took, cpu = time.perf_counter() - start, cpu_s() - cpu
                jc, sc = jira.calls(), snow.calls()
                limit = in_flight or 4
                floor = max(jc, sc) * setup_ms / 1000 / limit
                print(
                    f"initial sync of {n} items with {milestones} milestones each "
                    f"({setup_ms} ms/call, {limit} in flight per host): {took:.1f} s "
                    f"(floor {floor:.1f} s: {max(jc, sc)} calls x {setup_ms} ms / {limit}); "
                    f"created {dict(report.created)}; errors {len(report.errors)}; "
                    f"Jira {jc} calls ({jc / n:.3f}/item), "
                    f"ServiceNow {sc} calls ({sc / n:.3f}/item); "
                    f"peak RSS {rss_mib():.0f} MiB; CPU of this process {cpu:.1f} s",
                    flush=True,
                )
                if initial_only:
                    store.close()  # the engine's exit closes the connectors, not the store
                    return
                # The first cycle after creating finds its own writes in the pull window: the
                # pulls list versions and leave out records still at the version each create
                # read back (echoes), unless told not to (every record read whole, as before).
                for target in engine.targets.values() if not skip_echoes else ():
                    target.connector.skips_echoes = False
                for sim in (jira, snow):
                    sim.control("reset", {})
                    sim.control("latency", {"ms": latency_ms})
                start, cpu = time.perf_counter(), cpu_s()
                report = engine.run_cycle()
                took, cpu = time.perf_counter() - start, cpu_s() - cpu
                jc, sc = jira.calls(), snow.calls()
                print(
                    f"first cycle after the initial sync of {n} items "
                    f"({'echoes left out' if skip_echoes else 'echoes read whole'}): "
                    f"{took:.2f} s (CPU of this process {cpu:.2f} s); "
                    f"pulled {dict(report.pulled)}; Jira {jc} calls, "
                    f"ServiceNow {sc} calls; pushed {dict(report.updated_remote)}, "
                    f"taken {report.updated_local}; errors {len(report.errors)}; "
                    f"peak RSS {rss_mib():.0f} MiB"
                )
                if idle:
                    # A pull reaches back over the overlap (plus JQL's minute granularity); the
                    # idle cycle is measured once the window has passed, as in a daemon's steady
                    # state.
                    time.sleep(125)
                    engine.run_cycle()
                    for sim in (jira, snow):
                        sim.control("reset", {})
                        sim.control("latency", {"ms": latency_ms})
                    start = time.perf_counter()
                    report = engine.run_cycle()
                    took = time.perf_counter() - start
                    print(
                        f"idle cycle over {n} linked items: {took:.2f} s; "
                        f"Jira {jira.calls()} calls, ServiceNow {snow.calls()} calls; "
                        f"pushed {dict(report.updated_remote)}; "
                        f"planned {report.planned_items} items "
                        f"({'full' if report.full else 'incremental'}); "
                        f"peak RSS {rss_mib():.0f} MiB"
                    )
                    idle_cycles(engine, n, idle_rounds, (jira, snow))
            store.close()
        finally:
            # each simulator's own CPU (the seeding child's is not in these)
            jira_cpu, snow_cpu = jira.stop(), snow.stop()
            print(
                f"CPU of the simulators, whole run: Jira {jira_cpu:.1f} s, "
                f"ServiceNow {snow_cpu:.1f} s; load average {_load()}"
            )


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
    # The inputs alone (the interpreter, 100,000 PoamItems, links, baselines, pulled records)
    # are the floor: the planner's own cost is what the peak adds to them.
    floor = rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    result = plan(items, states, {})
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = rss_mib()
    print(
        f"planner on {m} items x 2 connectors ({sum(len(s.pulled) for s in states)} changed "
        f"remotely): {took:.2f} s ({cpu:.2f} s CPU), "
        f"{sum(len(p.actions) for p in result.items)} actions; peak RSS {peak:.0f} MiB = "
        f"inputs {floor:.0f} MiB (the floor) + planner {peak - floor:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--plan-items", type=int, default=100_000)
    parser.add_argument("--milestones", type=int, default=2, help="per item; 0: none")
    parser.add_argument("--in-flight", type=int, default=None, help="sync.max_in_flight")
    parser.add_argument("--mode", choices=["all", "echo"], default="all")
    parser.add_argument("--rounds", type=int, default=1, help="echo mode: rounds of A/B")
    parser.add_argument(
        "--echo-only", action="store_true", help="echo mode: only the cycle with echoes left out"
    )
    parser.add_argument("--plan-only", action="store_true", help="only the planner alone")
    parser.add_argument(
        "--setup-latency-ms", type=int, default=None, help="the initial sync's latency only"
    )
    parser.add_argument(
        "--idle-rounds",
        type=int,
        default=3,
        help="idle cycles of the long-lived engine, full and incremental in turn (0: none)",
    )
    parser.add_argument(
        "--initial-only", action="store_true", help="the initial sync alone (no planner, no idle)"
    )
    args = parser.parse_args()
    configure(verbose=0, json=False)
    common: dict[str, Any] = {"milestones": args.milestones, "in_flight": args.in_flight}
    common["idle_rounds"] = args.idle_rounds
    common["setup_latency_ms"] = args.setup_latency_ms
    if args.mode == "echo":
        for _ in range(args.rounds):
            for skip in (True,) if args.echo_only else (False, True):
                bench_sync(args.items, args.latency_ms, idle=False, skip_echoes=skip, **common)
        return
    if not args.initial_only:
        bench_plan(args.plan_items)
    if not args.plan_only:
        bench_sync(args.items, args.latency_ms, initial_only=args.initial_only, **common)


if __name__ == "__main__":
    main()
