"""`poam-sync import` end to end: a generated N-row FedRAMP v3.0 workbook read and imported
into a fresh SQLite store, then imported again (which must write nothing).

Prints wall time per step and the process's peak resident memory. The goal for 10,000 rows on
a 2-core machine is 10 s or less for the first import.

    python benchmarks/bench_import.py [--rows 10000] [--db URL]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_formats import make_items  # noqa: E402
from poam_sync import formats  # noqa: E402
from poam_sync.logs import configure  # noqa: E402
from poam_sync.store import Store  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_once(store: Store, path: Path, batch: str) -> tuple[float, float, int, int]:
    start = time.perf_counter()
    read = formats.read(path)
    parsed = time.perf_counter()
    with store.begin() as tx:
        outcome = tx.import_items(read.items, system="bench", actor="bench", batch_id=batch)
    done = time.perf_counter()
    return parsed - start, done - parsed, len(read.items), outcome.changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    configure(verbose=0, json=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "poam.xlsx"
        formats.write(make_items(args.rows), path, format="fedramp-xlsx", system_name="bench")
        store = Store.open(args.db or f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            for label, batch in (("first import", "b1"), ("re-import", "b2")):
                read_s, store_s, n, changes = import_once(store, path, batch)
                print(
                    f"{label} of {n} rows: {read_s + store_s:.1f} s "
                    f"(read {read_s:.1f} s, store {store_s:.1f} s); {changes} change-log rows; "
                    f"peak RSS {rss_mib():.0f} MiB"
                )
        finally:
            store.close()


if __name__ == "__main__":
    main()
