"""A running daemon's idle cycle at scale, on the store's side: N linked items (default
100,000), two in-process memory connectors (no network: what a cycle costs beyond its one
search per connector), one long-lived engine.

Once every item has its record on both remotes (made and linked as a create would, then one
full cycle), idle cycles run in turn
full (every item planned, as every cycle did before cycles became incremental) and incremental
(only what changed), so both see the same machine load; then one incremental cycle after a
second process changed one item. Prints the median of each with peak RSS.

    python benchmarks/bench_idle.py [--items 100000] [--rounds 3] [--db URL]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poam_sync.connectors.base import Stamp  # noqa: E402
from poam_sync.connectors.memory import MemoryConnector, MemoryRemote  # noqa: E402
from poam_sync.logs import configure  # noqa: E402
from poam_sync.model import PoamItem, with_fields  # noqa: E402
from poam_sync.store import Store  # noqa: E402
from poam_sync.sync.creates import agreed_baselines, link_row  # noqa: E402
from poam_sync.sync.engine import Engine, Guards, SyncTarget  # noqa: E402
from poam_sync.sync.values import to_sync  # noqa: E402


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


def seed(store: Store, connectors: list[MemoryConnector]) -> None:
    """Each item's record on each remote, linked with the baselines a create agrees on (the
    memory remote's create looks each stamp up by scanning every record: too slow at 100,000;
    the HTTP initial sync is bench_sync.py's)."""
    with store.read() as tx:
        items = {i.uuid: i for i in tx.all_items()}
    for connector in connectors:
        fields = sorted(connector.synced_fields)
        rows = []
        for one in items.values():
            local = to_sync(one)
            values = {k: connector.project(k, local.get(k)) for k in fields}
            rows.append((Stamp(one.system, one.poam_id, one.uuid), values))
        connector.remote.insert_many(rows, actor="sync@example.com")
        records = {r.stamp.item_uuid: r for r in connector.pull(None) if r.stamp is not None}
        with store.begin() as tx:
            tx.add_links([link_row(u, connector.name, r) for u, r in records.items()])
            tx.set_many_baselines(
                connector.name,
                {u: agreed_baselines(connector, items[u], r) for u, r in records.items()},
            )


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(n: int, rounds: int, db_url: str) -> None:
    store = Store.open(db_url)
    try:
        start = time.perf_counter()
        with store.begin() as tx:
            tx.import_items(
                [item(i) for i in range(n)], system="bench", actor="bench", batch_id="b"
            )
        print(f"import of {n} items: {time.perf_counter() - start:.1f} s")
        remotes = {"jira": MemoryRemote(), "servicenow": MemoryRemote()}
        connectors = [MemoryConnector(name=name, remote=r) for name, r in remotes.items()]
        start = time.perf_counter()
        seed(store, connectors)
        print(f"records made and linked as a create would: {time.perf_counter() - start:.1f} s")
        engine = Engine(
            store,
            [SyncTarget(c, system="bench") for c in connectors],
            guards=Guards(max_change_share=1.0, min_items=n + 1),
            reconcile_every=0,
            full_every=0,
        )
        engine.clock_skew = timedelta(0)  # the remotes share this process's clock
        start = time.perf_counter()
        first = engine.run_cycle()
        assert first.ok and not first.created and not first.updated_remote, first.summary()
        print(f"first cycle (full, pulls everything): {time.perf_counter() - start:.1f} s")
        for _ in range(2):  # past the remotes' one-second clock
            time.sleep(1.1)
            engine.run_cycle()
        took: dict[bool, list[float]] = {True: [], False: []}
        planned: dict[bool, int] = {}
        for _ in range(rounds):
            for full in (True, False):
                start = time.perf_counter()
                report = engine.run_cycle(full=full)
                took[full].append(time.perf_counter() - start)
                planned[full] = report.planned_items
                assert report.ok and not report.updated_remote, report.summary()
        for full, name in ((True, "full (every item, the old cycle)"), (False, "incremental")):
            each = ", ".join(f"{t:.3f}" for t in took[full])
            print(
                f"idle cycle over {n} linked items, {name}: median "
                f"{statistics.median(took[full]):.3f} s of {rounds} ({each}); "
                f"planned {planned[full]} items"
            )
        other = Store.open(db_url)  # a second process: `items set` on one item
        try:
            with other.begin() as tx:
                one = tx.get("bench", "V-000007")
                assert one is not None
                tx.save(with_fields(one, {"title": "Changed elsewhere"}), source="cli", actor="b")
        finally:
            other.close()
        start = time.perf_counter()
        report = engine.run_cycle()
        print(
            f"incremental cycle after another process changed 1 item: "
            f"{time.perf_counter() - start:.3f} s; planned {report.planned_items} items, "
            f"pushed {dict(report.updated_remote)}; peak RSS {rss_mib():.0f} MiB"
        )
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default=None, help="a database URL (default: a new SQLite file)")
    args = parser.parse_args()
    configure(verbose=0, json=False)
    with tempfile.TemporaryDirectory() as tmp:
        bench(args.items, args.rounds, args.db or f"sqlite:///{Path(tmp) / 'bench.db'}")


if __name__ == "__main__":
    main()
