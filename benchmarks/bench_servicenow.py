"""Create and then pull 5,000 POA&M records through the ServiceNow connector.

The simulator runs over HTTPS in a child process (so that its CPU time does not count as the
connector's) with a simulated network latency (default 20 ms per call). Prints wall times,
HTTP calls per record and the connector process's peak resident memory::

    python benchmarks/bench_servicenow.py [--records 5000] [--latency-ms 20] [--milestones 0]
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import structlog

from poam_sync.connectors.base import Stamp
from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.connectors.servicenow.mapping import load_servicenow_mapping
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.simulators.servicenow import ADMIN_PASSWORD, ADMIN_USER

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
        code = (
            "from pathlib import Path; from poam_sync.simulators.servicenow import serve; "
            f"serve(host='127.0.0.1', port=0, tls_dir=Path({tmp!r}), state=None, latency_ms=0)"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        try:
            assert child.stdout is not None
            url = re.search(r"https://\S+", child.stdout.readline())
            ca = child.stdout.readline().split(": ", 1)[1].strip()
            assert url, "the simulator did not print its URL"
            base = url.group(0)
            control = requests.Session()
            control.trust_env = False
            control.verify = ca

            def sim(path: str, body: dict[str, int] | None = None) -> dict[str, object]:
                if body is None:
                    return dict(control.get(f"{base}/_sim/{path}").json())
                return dict(control.post(f"{base}/_sim/{path}", json=body).json())

            connector = ServiceNowConnector(
                ServiceNowSettings(
                    url=base,
                    user=ADMIN_USER,
                    password=ADMIN_PASSWORD,
                    ca_bundle=Path(ca),
                    page_size=args.page_size,
                ),
                load_servicenow_mapping(ROOT / "mappings" / "servicenow.yaml"),
            )
            connector.check()
            batch = [
                (Stamp("bench", f"V-{i}", str(uuid.uuid4())), fields(i, args.milestones))
                for i in range(args.records)
            ]
            sim("reset", {})
            sim("latency", {"ms": args.latency_ms})
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0, c0 = time.perf_counter(), time.process_time()
            results = connector.create_many(batch)
            t_create, c_create = time.perf_counter() - t0, time.process_time() - c0
            create_calls = int(sim("calls")["total"])  # type: ignore[call-overload]
            errors = [r for r in results if isinstance(r, Exception)]

            sim("reset", {})
            sim("latency", {"ms": args.latency_ms})
            t0, c0 = time.perf_counter(), time.process_time()
            pulled = sum(1 for _ in connector.pull(None))
            t_pull, c_pull = time.perf_counter() - t0, time.process_time() - c0
            pull_calls = int(sim("calls")["total"])  # type: ignore[call-overload]
            rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            connector.close()
        finally:
            child.terminate()
            child.wait(timeout=30)

    n = args.records
    print(f"records: {n}, latency: {args.latency_ms} ms/call, milestones/record: {args.milestones}")
    print(f"create_many: {t_create:.1f} s wall ({c_create:.1f} s connector CPU), "
          f"{create_calls} calls ({create_calls / n:.3f} per record), "
          f"errors: {len(errors)}")  # fmt: skip
    print(f"pull(None):  {t_pull:.1f} s wall ({c_pull:.1f} s connector CPU), "
          f"{pull_calls} calls ({pull_calls / max(pulled, 1):.3f} per record), "
          f"records pulled: {pulled}")  # fmt: skip
    print(f"peak RSS of the connector process: {rss_peak / 1024:.0f} MiB "
          f"(before the run: {rss_before / 1024:.0f} MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
