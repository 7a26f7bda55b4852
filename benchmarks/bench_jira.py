"""Create and then pull N issues through the Jira connector against the simulator.

The simulator runs in its own process (so the memory figure is the connector's), with a
simulated latency per call. Prints wall time, calls per issue and peak memory; then the version
listing of a pull that knows every issue (the cycle after an initial sync), its pages in series
and in key ranges at once (connectors/jira/listing.py), alternately, with wall and CPU time.

    python benchmarks/bench_jira.py [--issues 5000] [--latency-ms 20] [--mode cloud] [--trace]
        [--listing-rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poam_sync.connectors.base import Stamp  # noqa: E402
from poam_sync.connectors.jira.connector import JiraConnector  # noqa: E402
from poam_sync.connectors.jira.listing import list_versions  # noqa: E402
from poam_sync.connectors.jira.mapping import load_jira_mapping  # noqa: E402
from poam_sync.connectors.jira.settings import JiraSettings  # noqa: E402


def _calls(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sim/calls") as r:  # local simulator only
        return int(json.load(r)["total"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--mode", choices=["cloud", "datacenter"], default="cloud")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also measure peak Python allocations with tracemalloc (slows the run down)",
    )
    parser.add_argument(
        "--listing-rounds", type=int, default=2, help="rounds of the listing, series and ranges"
    )
    args = parser.parse_args()

    code = (
        "from poam_sync.simulators.jira import serve;"
        f"serve(host='127.0.0.1', port=0, mode='{args.mode}', state=None,"
        f" latency_ms={args.latency_ms})"
    )
    sim = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        auth: dict[str, object] = (
            {"email": "sync@example.com", "token": SecretStr("sim-token")}
            if args.mode == "cloud"
            else {"pat": SecretStr("sim-pat")}
        )
        settings = JiraSettings.model_validate({"url": url, "project_key": "POAM", **auth})
        connector = JiraConnector(settings, load_jira_mapping(ROOT / "mappings" / "jira.yaml"))
        connector.check()
        batch = [
            (
                Stamp(
                    system="bench",
                    poam_id=f"V-{n:05d}",
                    item_uuid=f"00000000-0000-4000-8000-{n:012d}",
                ),
                {
                    "title": f"Weakness {n}",
                    "description": "Found by the scanner.",
                    "status": "open",
                    "owner": "alice@example.com",
                    "due_date": "2027-03-03",
                    "original_risk": "high",
                    "controls": ["SI-2", "RA-5"],
                },
            )
            for n in range(args.issues)
        ]
        if args.trace:
            tracemalloc.start()
        before = _calls(url)
        t0 = time.perf_counter()
        results = connector.create_many(batch)
        t1 = time.perf_counter()
        created_calls = _calls(url) - before
        failures = sum(isinstance(r, Exception) for r in results)
        before = _calls(url)
        t2 = time.perf_counter()
        pulled = sum(1 for _ in connector.pull(None))
        t3 = time.perf_counter()
        pull_calls = _calls(url) - before
        _, peak = tracemalloc.get_traced_memory()  # 0 without --trace
        tracemalloc.stop()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        n = args.issues
        print(f"mode {args.mode}, {n} issues, {args.latency_ms} ms simulated latency per call")
        print(
            f"create: {t1 - t0:.1f} s wall, {created_calls} calls "
            f"({created_calls / n:.3f} per issue), {failures} failed"
        )
        print(
            f"pull:   {t3 - t2:.1f} s wall, {pull_calls} calls "
            f"({pull_calls / n:.3f} per issue), {pulled} records"
        )
        traced = f", peak traced Python allocations {peak / 2**20:.1f} MiB" if args.trace else ""
        print(f"memory: max RSS {rss_mb:.0f} MiB (connector process){traced}")
        keys = [r.record.key for r in results if not isinstance(r, Exception)]
        for _ in range(args.listing_rounds):
            for shards in (1, connector.max_in_flight):
                before = _calls(url)
                t4, c4 = time.perf_counter(), time.process_time()
                listed = sum(
                    1
                    for _ in list_versions(
                        connector.client,
                        'project = "POAM" AND issuetype = "Task"',
                        cloud=args.mode == "cloud",
                        project="POAM",
                        keys=lambda: keys,
                        shards=shards,
                    )
                )
                t5, c5 = time.perf_counter(), time.process_time()
                how = "in series" if shards == 1 else f"{shards} at once"
                print(
                    f"version listing, pages {how}: {t5 - t4:.2f} s wall, {c5 - c4:.2f} s CPU, "
                    f"{_calls(url) - before} calls, {listed} issues (floor: "
                    f"{(_calls(url) - before) * args.latency_ms / 1000 / shards:.2f} s of latency)"
                )
        connector.close()
    finally:
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()
