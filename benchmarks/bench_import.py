"""`poam-sync import` end to end: a generated N-row FedRAMP v3.0 workbook read and imported
into a fresh SQLite store, then imported again (which must write nothing).

Prints wall and CPU time per step and the process's peak resident memory, then the cells of
the workbook read three ways: python-calamine alone (the floor: its raw values, none of our
checks), our reader with calamine (the default) and our reader with openpyxl only (the reader
before calamine, ``POAM_SYNC_XLSX_READER=openpyxl``). The goal for 10,000 rows on a 2-core
machine is 1.5 s for the first import (issue 15).

    python benchmarks/bench_import.py [--rows 10000] [--db URL] [--reader calamine|openpyxl]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from python_calamine import CalamineWorkbook  # noqa: E402

from benchmarks.bench_formats import make_items  # noqa: E402
from poam_sync import formats  # noqa: E402
from poam_sync.formats import _xlsx_cells  # noqa: E402
from poam_sync.logs import configure  # noqa: E402
from poam_sync.store import Store  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_once(store: Store, path: Path, batch: str) -> tuple[float, float, float, int, int]:
    start, cpu = time.perf_counter(), time.process_time()
    read = formats.read(path)
    parsed = time.perf_counter()
    with store.begin() as tx:
        outcome = tx.import_items(read.items, system="bench", actor="bench", batch_id=batch)
    done = time.perf_counter()
    used = time.process_time() - cpu
    return parsed - start, done - parsed, used, len(read.items), outcome.changes


def timed(label: str, fn: Callable[[], object]) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    print(f"{label:<44} {wall:6.2f} s ({used:.2f} s CPU)")


def raw_calamine(path: Path) -> None:
    wb = CalamineWorkbook.from_path(str(path))
    try:
        for name in wb.sheet_names:
            wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
    finally:
        wb.close()


def our_cells(path: Path, reader: str) -> None:
    with _xlsx_cells.open_workbook(path, reader) as wb:
        for ws in wb.worksheets:
            for _ in _xlsx_cells.iter_rows(ws, path.name):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--reader", choices=_xlsx_cells.READERS, default="calamine")
    args = parser.parse_args()
    os.environ[_xlsx_cells.READER_ENV] = args.reader
    configure(verbose=0, json=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "poam.xlsx"
        formats.write(make_items(args.rows), path, format="fedramp-xlsx", system_name="bench")
        store = Store.open(args.db or f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            for label, batch in (("first import", "b1"), ("re-import", "b2")):
                read_s, store_s, cpu, n, changes = import_once(store, path, batch)
                print(
                    f"{label} of {n} rows ({args.reader}): {read_s + store_s:.2f} s, "
                    f"{cpu:.2f} s CPU (read {read_s:.2f} s, store {store_s:.2f} s); "
                    f"{changes} change-log rows; peak RSS {rss_mib():.0f} MiB"
                )
        finally:
            store.close()
        timed("cells: python-calamine alone (floor)", lambda: raw_calamine(path))
        timed("cells: our reader, calamine", lambda: our_cells(path, "calamine"))
        timed("cells: our reader, openpyxl only (before)", lambda: our_cells(path, "openpyxl"))


if __name__ == "__main__":
    main()
