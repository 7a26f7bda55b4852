"""`poam-sync log export` and `log verify` of a 1,000,000-row change log: wall time and peak
memory.

Fills a fresh store with generated items (about 17 change-log rows each, through the store's
own import) until the log holds ``--rows`` rows, then runs, each in a process of its own (peak
RSS from ``wait4``):

- ``log export --format jsonl`` and ``--format csv`` of the whole log;
- ``log verify`` of the whole chain, ``log checkpoint`` (which verifies before it signs) and
  ``log verify --checkpoint`` (the whole chain, then the rows after the checkpointed head);
- the same export of one item's rows: the process's own floor (Python, the CLI, the driver);
- the floors for the work itself, with none of our code (SQLite only): the same rows read with
  the database driver alone and written by ``csv.writer``; and read and chained with
  ``hashlib.sha256`` (a stand-in for the canonical row: the columns joined).

Constant memory shows as the whole-log RSS staying at the one-item RSS.

    python benchmarks/log_export.py [--rows 1000000] [--db URL] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FLOOR = """
import csv, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], "w", newline="") as out:
    writer = csv.writer(out, lineterminator="\\n")
    for row in conn.execute("SELECT * FROM change_log ORDER BY seq"):
        writer.writerow(row)
"""

_VERIFY_FLOOR = """
import hashlib, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
prev = "0" * 64
for row in conn.execute("SELECT * FROM change_log ORDER BY seq"):
    text = prev + "\\n" + "|".join(map(str, row[:12]))
    prev = hashlib.sha256(text.encode()).hexdigest()
"""


def fill(url: str, rows: int) -> int:
    """Import generated items in batches until the log holds at least ``rows`` rows (run in a
    process of its own: the peak RSS of a child includes its parent's before ``exec``)."""
    import structlog

    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_store import generate
    from poam_sync.store import Store

    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    written = 0
    batch = 0
    with Store.open(url) as store:
        while written < rows:
            items = [
                i.model_copy(update={"poam_id": f"B{batch}-{i.poam_id}"})
                for i in generate(10_000, seed=batch)
            ]
            with store.begin() as tx:
                outcome = tx.import_items(
                    items, system="bench", actor="bench", batch_id=f"bench-{batch}"
                )
            written += outcome.changes
            batch += 1
            print(f"  filled {written:,} rows", file=sys.stderr)
    return written


def measure(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    said = child.stderr.read().decode() if child.stderr else ""
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed: {said}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--keep", type=Path, help="write the store and exports here")
    parser.add_argument("--fill", help=argparse.SUPPRESS)  # the child that fills the store
    opts = parser.parse_args()
    if opts.fill:
        print(fill(opts.fill, opts.rows))
        return

    folder = opts.keep or Path(tempfile.mkdtemp(prefix="poam-sync-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "bench.db"
    url = opts.db or f"sqlite:///{db_file}"
    started = time.perf_counter()
    filled = subprocess.run(
        [sys.executable, __file__, "--fill", url, "--rows", str(opts.rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = int(filled.stdout.split()[-1])
    print(f"store: {rows:,} change-log rows in {time.perf_counter() - started:.1f} s")

    cli = [sys.executable, "-m", "poam_sync", "--db", url, "log", "export"]
    results: list[tuple[str, float, float]] = []
    for fmt in ("jsonl", "csv"):
        out = folder / f"log.{fmt}"
        wall, rss = measure([*cli, "--format", fmt, "-o", str(out)])
        size = out.stat().st_size / 2**20
        results.append((f"log export --format {fmt}, {rows:,} rows ({size:,.0f} MiB)", wall, rss))
    log = [sys.executable, "-m", "poam_sync", "--db", url, "log"]
    key, checkpoint = folder / "bench.key", folder / "checkpoint.json"
    for path in (key, Path(f"{key}.pub"), checkpoint):
        path.unlink(missing_ok=True)
    wall, rss = measure([*log, "verify"])
    results.append((f"log verify, {rows:,} rows", wall, rss))
    subprocess.run([*log, "keygen", "-o", str(key)], capture_output=True, check=True)
    wall, rss = measure([*log, "checkpoint", "--key", str(key), "-o", str(checkpoint)])
    results.append(("log checkpoint (verifies the chain, then signs)", wall, rss))
    wall, rss = measure([*log, "verify", "--checkpoint", str(checkpoint), "--key", str(key)])
    results.append(("log verify --checkpoint", wall, rss))
    one = [*cli, "--format", "jsonl", "--item", "B0-V-00001", "-o", str(folder / "one.jsonl")]
    wall, rss = measure(one)
    results.append(("log export of one item's rows (process floor)", wall, rss))
    if url.startswith("sqlite:///") and db_file.exists():
        script = [sys.executable, "-c", _FLOOR, str(db_file), str(folder / "floor.csv")]
        wall, rss = measure(script)
        results.append(("floor: sqlite3 + csv.writer alone, the same rows", wall, rss))
        script = [sys.executable, "-c", _VERIFY_FLOOR, str(db_file)]
        wall, rss = measure(script)
        results.append(("floor: sqlite3 + hashlib chaining alone, the same rows", wall, rss))
    print(f"{'what':<64} {'wall':>8} {'peak RSS':>10}")
    for what, wall, rss in results:
        print(f"{what:<64} {wall:>7.1f}s {rss:>7.0f} MiB")
    if opts.keep is None:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
