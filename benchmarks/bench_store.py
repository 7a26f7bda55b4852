"""Import 10,000 generated POA&M items into a fresh store, then import them again.

Prints wall times, change-log rows written and peak memory. The re-import must write 0 rows.

    python benchmarks/bench_store.py [--items 10000] [--db URL]

Without ``--db`` a fresh SQLite file in a temporary directory is used.
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from poam_sync.model import (  # after the path set-up above
    Milestone,
    Person,
    PoamItem,
    Provenance,
    RiskLevel,
    Status,
)
from poam_sync.store import Store

CONTROLS = ["AC-2", "AC-2(1)", "AU-6", "CM-6", "IA-5(1)", "RA-5", "SC-7", "SI-2", "SI-4"]


def generate(n: int, seed: int = 7) -> list[PoamItem]:
    rng = random.Random(seed)
    start = date(2025, 1, 1)
    out = []
    for i in range(1, n + 1):
        detected = start + timedelta(days=rng.randrange(365))
        risk = rng.choice(list(RiskLevel))
        due = detected + timedelta(days={"low": 180, "moderate": 90}.get(risk.value, 30))
        out.append(
            PoamItem(
                poam_id=f"V-{i:05d}",
                title=f"Weakness {i}: outdated package on host {i % 300}",
                description="Scanner finding. " * rng.randrange(1, 6),
                controls=tuple(rng.sample(CONTROLS, rng.randrange(1, 4))),
                detector_source="Nessus",
                source_identifier=str(100000 + rng.randrange(90000)),
                asset_identifiers=tuple(f"host-{rng.randrange(300)}" for _ in range(2)),
                cves=(f"CVE-2025-{rng.randrange(10000, 99999)}",),
                owner=Person(name=f"Owner {i % 40}", email=f"owner{i % 40}@example.gov"),
                status=rng.choice([Status.OPEN, Status.REMEDIATING, Status.COMPLETED]),
                original_risk=risk,
                detected_on=detected,
                scheduled_completion_date=due,
                due_date=due,
                milestones=(
                    Milestone(id="1", description="Patch in staging", due_date=due - timedelta(7)),
                    Milestone(id="2", description="Patch in production", due_date=due),
                ),
                remediation_plan="Apply the vendor patch.",
                provenance=Provenance(format="fedramp-xlsx", file="bench.xlsx", row=i + 5),
            )
        )
    return out


def timed_import(store: Store, items: list[PoamItem], batch: str) -> tuple[float, float, int]:
    """Wall time, CPU time of this process, change-log rows written."""
    started, cpu = time.perf_counter(), time.process_time()
    with store.begin() as tx:
        outcome = tx.import_items(items, system="bench", actor="bench", batch_id=batch)
    return time.perf_counter() - started, time.process_time() - cpu, outcome.changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--db", help="database URL (default: fresh SQLite file)")
    args = parser.parse_args()
    # the store's one summary line per import is not part of the figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        items = generate(args.items)
        print(f"generated {len(items)} items in {time.perf_counter() - started:.2f} s")

        store = Store.open(url)
        try:
            first, cpu, rows = timed_import(store, items, "first")
            print(f"first import: {first:.2f} s ({cpu:.2f} s CPU), {rows} change-log rows")
            again, cpu, rows_again = timed_import(store, generate(args.items), "again")
            print(f"re-import:    {again:.2f} s ({cpu:.2f} s CPU), {rows_again} change-log rows")
            started = time.perf_counter()
            result = store.verify_log()
            verify = time.perf_counter() - started
            print(f"verify:       {verify:.2f} s, {result.rows_checked} rows, ok={result.ok}")
            # Python allocations of one more re-import, measured apart (tracemalloc slows it)
            tracemalloc.start()
            timed_import(store, items, "traced")
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS of the process: {rss_mb:.0f} MB; peak Python heap of a re-import: "
        f"{peak / 2**20:.0f} MB"
    )
    if rows_again:
        sys.exit("re-import wrote change-log rows: it must write none")


if __name__ == "__main__":
    main()
