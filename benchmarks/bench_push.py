"""A mass change pushed: every item's scheduled date moved, then the cycle after it.

1. N items (default 10,000; K milestones each, default 2) synced to both simulators (the set-up,
   at ``--setup-latency-ms``, default 0), and the cycle after it (echoes, left out);
2. every item's scheduled completion date moved here (an import would do it), then one cycle
   at ``--latency-ms`` per call (default 20): it pushes N records to each system;
3. the cycle after it: what it reads whole of the records we just pushed to.

Prints, per cycle, wall time, CPU of this process, calls per system (the Batch API requests and
the PATCHes among them) and the records each pull read whole, with the floor the calls set
(calls x latency / requests in flight per host) beside them. ``--batch 1`` hands ServiceNow one
update per record (as before batched pushes) with everything else the same; run it and the
default alternately to compare under the same load. The figures of the code before batched
pushes come from running this file against that code.

``--only servicenow`` (or ``jira``) syncs with that system alone, so its own figures show.

    python benchmarks/bench_push.py [--items 10000] [--milestones 2] [--latency-ms 20]
        [--setup-latency-ms 0] [--in-flight 4] [--batch N] [--only jira|servicenow]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_sync import Sim, _seed, cpu_s, rss_mib  # noqa: E402
from poam_sync.config import parse_config  # noqa: E402
from poam_sync.logs import configure  # noqa: E402
from poam_sync.model import with_fields  # noqa: E402
from poam_sync.store import Store  # noqa: E402
from poam_sync.sync.engine import Engine  # noqa: E402
from poam_sync.wiring import build_engine  # noqa: E402


def _config(
    db_url: str, jira: Sim, snow: Sim, in_flight: int | None, only: str | None
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "database_url": db_url,
        "system": "bench",
        # a mass change is what is measured: the guard that stops one is told to let it through
        "guards": {"max_change_share": 1.0},
        "connectors": {
            "jira": {
                "type": "jira",
                "url": jira.url,
                "email": "sync@example.com",
                "token": "${JIRA_TOKEN}",
                "project_key": "POAM",
                "overlap_minutes": 1,
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
    if only is not None:
        raw["connectors"] = {only: raw["connectors"][only]}
    return raw


def _move_every_date(store: Store, day: str) -> int:
    moved = 0
    with store.begin() as tx:
        for one in tx.items():
            tx.save(
                with_fields(one, {"scheduled_completion_date": day}),
                source="import",
                actor="bench",
                reason="mass change",
                batch_id="mass",
            )
            moved += 1
    return moved


def _measured(
    engine: Engine, sims: tuple[Sim, Sim], latency_ms: int, limit: int, what: str
) -> None:
    for sim in sims:
        sim.control("reset", {})
        sim.control("latency", {"ms": latency_ms})
    start, cpu = time.perf_counter(), cpu_s()
    report = engine.run_cycle()
    took, cpu = time.perf_counter() - start, cpu_s() - cpu
    by = [sim.control("calls")["by_endpoint"] for sim in sims]
    jc, sc = (sum(b.values()) for b in by)
    batches = by[1].get("POST /api/now/v1/batch", 0)
    patches = sum(v for k, v in by[1].items() if k.startswith("PATCH"))
    floor = max(jc, sc) * latency_ms / 1000 / limit
    print(
        f"{what}: {took:.1f} s (floor {floor:.1f} s: {max(jc, sc)} calls x {latency_ms} ms / "
        f"{limit}); CPU of this process {cpu:.1f} s; pushed {dict(report.updated_remote)}; "
        f"read whole {dict(report.pulled)}; errors {len(report.errors)}; "
        f"Jira {jc} calls; ServiceNow {sc} calls ({batches} Batch API requests, "
        f"{patches} single PATCHes); peak RSS {rss_mib():.0f} MiB",
        flush=True,
    )


def bench_push(
    n: int,
    latency_ms: int,
    *,
    milestones: int,
    setup_latency_ms: int,
    in_flight: int | None,
    batch: int | None,
    only: str | None = None,
) -> None:
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
        sims = (jira, snow)
        try:
            db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            config = parse_config(
                _config(db_url, jira, snow, in_flight, only),
                env={"JIRA_TOKEN": "sim-token", "SN_PASSWORD": "sim-password"},
            )
            seeding = multiprocessing.get_context("fork").Process(
                target=_seed, args=(db_url, n, milestones)
            )
            seeding.start()
            seeding.join()
            assert seeding.exitcode == 0
            store = Store.open(db_url)
            with build_engine(config, store) as engine:
                engine.clock_skew = timedelta(0)  # the simulators share this machine's clock
                if batch is not None and "servicenow" in engine.targets:
                    engine.targets["servicenow"].connector.update_batch = batch
                for sim in sims:
                    sim.control("latency", {"ms": setup_latency_ms})
                first = engine.run_cycle()
                assert first.ok, first.summary()
                print(f"set-up: created {dict(first.created)}", flush=True)
                engine.run_cycle()  # our creates, echoes
                moved = _move_every_date(store, "2027-09-30")
                limit = in_flight or 4
                _measured(engine, sims, latency_ms, limit, f"push of {moved} moved dates")
                _measured(engine, sims, latency_ms, limit, "the cycle after it")
            store.close()
        finally:
            for sim in sims:
                sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--milestones", type=int, default=2, help="per item; 0: none")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--setup-latency-ms", type=int, default=0)
    parser.add_argument("--in-flight", type=int, default=None, help="sync.max_in_flight")
    parser.add_argument(
        "--batch", type=int, default=None, help="ServiceNow pushes per update_many (1: none)"
    )
    parser.add_argument(
        "--only", choices=["jira", "servicenow"], default=None, help="sync with this one alone"
    )
    args = parser.parse_args()
    configure(verbose=0, json=False)
    bench_push(
        args.items,
        args.latency_ms,
        milestones=args.milestones,
        setup_latency_ms=args.setup_latency_ms,
        in_flight=args.in_flight,
        batch=args.batch,
        only=args.only,
    )


if __name__ == "__main__":
    main()
