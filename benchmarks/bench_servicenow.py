"""Create and then pull 5,000 POA&M records through the ServiceNow connector.

The simulator runs over HTTPS in this process with a simulated network latency (default 20 ms
per call). Prints wall times, HTTP calls per record and peak Python memory (tracemalloc)::

    python benchmarks/bench_servicenow.py [--records 5000] [--latency-ms 20] [--milestones 0]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import structlog

from poam_sync.connectors.base import Stamp
from poam_sync.connectors.servicenow import ServiceNowConnector, ServiceNowSettings
from poam_sync.mapping.servicenow import load_servicenow_mapping
from poam_sync.simulators.servicenow import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    start_servicenow_simulator,
)

ROOT = Path(__file__).resolve().parents[1]
OWNERS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]


def fields(i: int, milestones: int) -> dict[str, object]:
    return {
        "title": f"Weakness {i}",
        "description": f"Finding {i} on host-{i % 97}",
        "status": ["open", "investigating", "remediating"][i % 3],
        "owner": OWNERS[i % len(OWNERS)],
        "due_date": f"2027-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "scheduled_completion_date": None,
        "original_risk": ["low", "moderate", "high", "critical"][i % 4],
        "controls": ["SI-2", "RA-5"],
        "milestones": [
            {"id": str(m), "description": f"Step {m}", "due_date": "2027-06-01", "status": "open"}
            for m in range(1, milestones + 1)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--milestones", type=int, default=0, help="milestones per record")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with tempfile.TemporaryDirectory() as tmp:
        run = start_servicenow_simulator(tls_dir=Path(tmp), latency_ms=args.latency_ms)
        try:
            connector = ServiceNowConnector(
                ServiceNowSettings(
                    url=run.url,
                    user=ADMIN_USER,
                    password=ADMIN_PASSWORD,
                    ca_bundle=run.ca_path,
                    page_size=args.page_size,
                ),
                load_servicenow_mapping(ROOT / "mappings" / "servicenow.yaml"),
            )
            connector.check()
            run.sim.control.reset()
            run.sim.control.set_latency(args.latency_ms)
            batch = [
                (Stamp("bench", f"V-{i}", str(uuid.uuid4())), fields(i, args.milestones))
                for i in range(args.records)
            ]
            tracemalloc.start()
            t0 = time.perf_counter()
            results = connector.create_many(batch)
            t_create = time.perf_counter() - t0
            create_calls = run.sim.control.total_calls()
            errors = [r for r in results if isinstance(r, Exception)]

            run.sim.control.reset()
            run.sim.control.set_latency(args.latency_ms)
            t0 = time.perf_counter()
            pulled = sum(1 for _ in connector.pull(None))
            t_pull = time.perf_counter() - t0
            pull_calls = run.sim.control.total_calls()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            connector.close()
        finally:
            run.stop()

    n = args.records
    print(f"records: {n}, latency: {args.latency_ms} ms/call, milestones/record: {args.milestones}")
    print(f"create_many: {t_create:.1f} s wall, {create_calls} calls "
          f"({create_calls / n:.3f} per record), errors: {len(errors)}")  # fmt: skip
    print(f"pull(None):  {t_pull:.1f} s wall, {pull_calls} calls "
          f"({pull_calls / max(pulled, 1):.3f} per record), records pulled: {pulled}")  # fmt: skip
    print(f"peak Python memory (tracemalloc, connector + in-process simulator): "
          f"{peak / 2**20:.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
