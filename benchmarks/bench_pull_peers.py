"""Pulling N Jira issues, side by side: poam-sync's connector, the raw ``jira`` client's
``enhanced_search_issues`` (the floor: one paged search, nothing mapped), and bugwarrior's Jira
service when it is installed (``pip install bugwarrior``; left out with a note otherwise), in one
run against one simulator, as ratios to the floor.

The simulator runs in its own process with a simulated latency per call. The issues are created
through our connector first (bulk create), then each reader pulls all of them once.

    python benchmarks/bench_pull_peers.py [--issues 5000] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poam_sync.connectors.base import Stamp  # noqa: E402
from poam_sync.connectors.jira.connector import JiraConnector  # noqa: E402
from poam_sync.connectors.jira.mapping import load_jira_mapping  # noqa: E402
from poam_sync.connectors.jira.settings import JiraSettings  # noqa: E402

EMAIL, TOKEN, JQL = "sync@example.com", "sim-token", "project = POAM"


def _calls(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sim/calls") as r:  # local simulator only
        return int(json.load(r)["total"])


def _timed(url: str, run: Callable[[], int]) -> tuple[float, int, int]:
    before = _calls(url)
    start = time.perf_counter()
    count = run()
    return time.perf_counter() - start, _calls(url) - before, count


def ours(url: str) -> Callable[[], int]:
    settings = JiraSettings.model_validate(
        {"url": url, "project_key": "POAM", "email": EMAIL, "token": SecretStr(TOKEN)}
    )
    connector = JiraConnector(settings, load_jira_mapping(ROOT / "mappings" / "jira.yaml"))
    connector.check()

    def run() -> int:
        return sum(1 for _ in connector.pull(None))

    return run


def raw_client(url: str) -> Callable[[], int]:
    from jira import JIRA

    client = JIRA(url, basic_auth=(EMAIL, TOKEN), max_retries=0)

    def run() -> int:
        return len(client.enhanced_search_issues(JQL, maxResults=False))

    return run


def bugwarrior(url: str, home: Path) -> Callable[[], int] | str:
    try:
        from bugwarrior.config.schema import MainSectionConfig
        from bugwarrior.services.jira import JiraConfig, JiraService
    except ImportError:
        return "not installed (pip install bugwarrior); left out"
    taskrc = home / ".taskrc"
    taskrc.write_text("data.location=" + str(home / "tasks") + "\n", encoding="utf-8")
    main = MainSectionConfig(targets=["jira"], taskrc=taskrc)
    config = JiraConfig(
        service="jira", base_uri=url, username=EMAIL, password=TOKEN, query=JQL, target="jira"
    )
    service = JiraService(config, main)

    def run() -> int:
        return sum(1 for _ in service.issues())

    return run


def seed(url: str, n: int) -> None:
    settings = JiraSettings.model_validate(
        {"url": url, "project_key": "POAM", "email": EMAIL, "token": SecretStr(TOKEN)}
    )
    connector = JiraConnector(settings, load_jira_mapping(ROOT / "mappings" / "jira.yaml"))
    connector.check()
    batch = [
        (
            Stamp(
                system="bench", poam_id=f"V-{k:05d}", item_uuid=f"00000000-0000-4000-8000-{k:012d}"
            ),
            {
                "title": f"Weakness {k}",
                "description": "Found by the scanner.",
                "status": "open",
                "owner": "alice@example.com",
                "due_date": "2027-03-03",
                "original_risk": "high",
                "controls": ["SI-2"],
            },
        )
        for k in range(n)
    ]
    failed = [r for r in connector.create_many(batch) if isinstance(r, Exception)]
    assert not failed, failed[:3]
    connector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    code = (
        "from poam_sync.simulators.jira import serve;"
        "serve(host='127.0.0.1', port=0, mode='cloud', state=None, latency_ms=0)"
    )
    sim = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        seed(url, args.issues)
        req = urllib.request.Request(
            f"{url}/_sim/latency",
            data=json.dumps({"ms": args.latency_ms}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(req).close()  # local simulator only
        with tempfile.TemporaryDirectory() as home:
            os.environ["HOME"] = home  # bugwarrior's keyring and data lookups stay here
            readers: dict[str, Callable[[], int] | str] = {
                "raw jira client, enhanced_search_issues (floor)": raw_client(url),
                "poam-sync Jira connector pull": ours(url),
                "bugwarrior Jira service": bugwarrior(url, Path(home)),
            }
            print(f"{args.issues} issues, {args.latency_ms} ms simulated latency per call")
            floor: float | None = None
            for name, reader in readers.items():
                if isinstance(reader, str):
                    print(f"{name}: {reader}")
                    continue
                took, calls, count = _timed(url, reader)
                floor = floor or took
                print(
                    f"{name}: {took:.2f} s, {calls} calls, {count} issues; "
                    f"{took / floor:.1f}x the floor"
                )
    finally:
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()
