"""Generate a 10,000-row FedRAMP v3.0 workbook with our exporter, then read it back.

Prints write and read times per format, the peak Python memory (tracemalloc, measured in a
separate run) of reading the workbook, and the process's peak resident size.
Run: ``python benchmarks/bench_formats.py [ROWS]``.
Not part of the test suite; figures depend on the machine.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's poam_sync

from poam_sync import formats
from poam_sync.formats._xlsx_cells import READER_ENV
from poam_sync.model import Milestone, Person, PoamItem, RiskLevel, Status

T = TypeVar("T")
RISKS = [RiskLevel.LOW, RiskLevel.MODERATE, RiskLevel.HIGH, RiskLevel.CRITICAL]
OWNERS = ["alice@example.com", "bob@example.com", "carol@example.com"]


def make_items(n: int) -> list[PoamItem]:
    start = date(2025, 1, 1)
    items = []
    for i in range(n):
        detected = start + timedelta(days=i % 365)
        items.append(
            PoamItem(
                poam_id=f"V-{i + 1:05d}",
                title=f"Finding {i + 1}: outdated package on host {i % 97}",
                description="The host runs a package version with a published vulnerability. " * 3,
                controls=["RA-5", "SI-2"],
                detector_source="Nessus",
                source_identifier=str(100000 + i),
                asset_identifiers=[f"host-{i % 97}.example.internal (443/TCP)"],
                cves=[f"CVE-2025-{10000 + i}"],
                owner=Person(email=OWNERS[i % 3]),
                status=Status.COMPLETED if i % 10 == 0 else Status.OPEN,
                original_risk=RISKS[i % 4],
                detected_on=detected,
                scheduled_completion_date=detected + timedelta(days=90),
                due_date=detected + timedelta(days=90),
                status_date=detected + timedelta(days=3),
                completed_on=detected + timedelta(days=3) if i % 10 == 0 else None,
                remediation_plan="Apply the vendor update in the monthly patch window.",
                milestones=[
                    Milestone(id="1", description="Patch staged", due_date=detected),
                ],
            )
        )
    return items


def measure(label: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    result = fn()
    print(f"{label:<30} {time.perf_counter() - t0:7.2f} s")
    return result


def peak_memory(label: str, fn: Callable[[], object]) -> None:
    """Peak Python allocations of ``fn`` (a second run: tracemalloc slows code down)."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<30} {peak / 2**20:7.1f} MiB peak traced memory")


def main() -> int:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(30)  # warnings and above only
    )
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    items = measure(f"build {rows} items", lambda: make_items(rows))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-fedramp-v3.xlsx"
        measure("write fedramp-xlsx", lambda: formats.write(items, path, format="fedramp-xlsx"))
        print(f"{'file size':<28} {path.stat().st_size / 2**20:7.2f} MiB")
        result = measure("read fedramp-xlsx", lambda: formats.read(path))
        assert len(result.items) == rows and not result.problems, result.problems[:3]
        peak_memory("read fedramp-xlsx", lambda: formats.read(path))
        # the reader before python-calamine, for comparison (formats/_xlsx_cells.py)
        os.environ[READER_ENV] = "openpyxl"
        try:
            measure("read fedramp-xlsx (openpyxl)", lambda: formats.read(path))
            peak_memory("read fedramp-xlsx (openpyxl)", lambda: formats.read(path))
        finally:
            del os.environ[READER_ENV]
        csv_path = Path(tmp) / "bench.csv"
        measure("write csv", lambda: formats.write(items, csv_path, format="csv"))
        measure("read csv", lambda: formats.read(csv_path))
        json_path = Path(tmp) / "bench.json"
        measure("write oscal-json", lambda: formats.write(items, json_path, format="oscal-json"))
        measure("read oscal-json", lambda: formats.read(json_path))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'process peak RSS':<28} {peak_rss:7.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
