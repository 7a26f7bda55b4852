"""The per-host limiter of requests in flight (connectors/_inflight.py) and the executor's lanes
(sync/lanes.py)."""

from __future__ import annotations

import threading
import time

from poam_sync.config import parse_config
from poam_sync.connectors._inflight import HostLimiter, backoff_seconds, limiter_for
from poam_sync.connectors.memory import MemoryConnector
from poam_sync.sync.lanes import Lanes
from poam_sync.wiring import build_connector

NOW = 1_800_000_000.0  # a fixed UNIX time for the header arithmetic


def test_a_429_pauses_for_its_retry_after() -> None:
    assert backoff_seconds(429, {"Retry-After": "7"}, now=NOW) == 7.0


def test_a_429_without_retry_after_waits_for_the_reset_jira_or_servicenow_style() -> None:
    # Jira Cloud: an ISO 8601 time to the minute; ServiceNow: a UNIX time in seconds
    jira = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(NOW + 120))
    assert backoff_seconds(429, {"X-RateLimit-Reset": jira}, now=NOW) == 120.0
    assert backoff_seconds(429, {"X-RateLimit-Reset": str(int(NOW) + 30)}, now=NOW) == 30.0


def test_a_bare_429_pauses_a_moment_and_other_answers_not_at_all() -> None:
    assert backoff_seconds(429, {}, now=NOW) == 1.0
    assert backoff_seconds(200, {"Retry-After": "5"}, now=NOW) is None
    assert backoff_seconds(200, {"X-RateLimit-Remaining": "3"}, now=NOW) is None


def test_no_requests_left_pauses_until_the_reset_even_on_a_success() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 10)}
    assert backoff_seconds(200, headers, now=NOW) == 10.0
    # Data Center's retry-after says 0 while tokens are left, more when there are none
    assert backoff_seconds(200, {"X-RateLimit-Remaining": "0", "Retry-After": "2"}, now=NOW) == 2.0


def test_the_limiter_never_lets_more_than_its_bound_through() -> None:
    limiter = HostLimiter("https://example.test:443", 3)
    gate = threading.Barrier(8, timeout=5)

    def request() -> None:
        gate.wait()
        with limiter.slot():
            time.sleep(0.02)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.peak == 3
    assert limiter.in_flight == 0


def test_a_429_holds_every_request_to_the_host_back() -> None:
    limiter = HostLimiter("https://example.test:443", 4)
    limiter.observe(429, {"Retry-After": "0.3"})  # seconds, as the fake clock-free header says
    start = time.monotonic()
    with limiter.slot():
        waited = time.monotonic() - start
    assert waited >= 0.25


def test_one_limiter_per_host_for_the_process_and_the_smaller_bound_holds() -> None:
    a = limiter_for("https://grc.example.test/api", 6)
    b = limiter_for("https://grc.example.test:443/other", 2)
    assert a is b
    assert a.limit == 2
    assert limiter_for("https://other.example.test", 6) is not a
    del a, b  # no session holds it any more: the next user starts afresh
    assert limiter_for("https://grc.example.test", 6).limit == 6


def test_lanes_run_in_the_calling_thread_when_no_connector_allows_more_than_one() -> None:
    connectors = {"a": MemoryConnector(name="a"), "b": MemoryConnector(name="b")}
    with Lanes(connectors) as lanes:
        assert lanes.workers == 1
        assert lanes.submit(threading.get_ident).result() == threading.get_ident()


def test_lanes_keep_a_connector_to_its_own_share() -> None:
    one, many = MemoryConnector(name="one"), MemoryConnector(name="many")
    many.max_in_flight = 3
    seen = {"one": 0, "many": 0}
    peak = {"one": 0, "many": 0}
    lock = threading.Lock()

    def call(name: str) -> None:
        with lanes.slot(name):
            with lock:
                seen[name] += 1
                peak[name] = max(peak[name], seen[name])
            time.sleep(0.01)
            with lock:
                seen[name] -= 1

    with Lanes({"one": one, "many": many}) as lanes:
        assert lanes.workers == 4
        futures = [lanes.submit(lambda n=n: call(n)) for n in ["one", "many"] * 8]
        for f in futures:
            f.result()
    assert peak["one"] == 1  # never two calls at once to a connector that allows one
    assert 1 <= peak["many"] <= 3


def test_the_global_bound_reaches_connectors_whose_entry_does_not_set_one() -> None:
    from tests.test_config import ENV, ROOT, example

    raw = example()
    raw["sync"] = {"max_in_flight": 2}
    raw["connectors"]["servicenow"]["max_in_flight"] = 6  # type: ignore[index]
    config = parse_config(raw, env=ENV, base=ROOT)
    jira = build_connector(config.connector("jira"), max_in_flight=config.sync.max_in_flight)
    snow = build_connector(config.connector("servicenow"), max_in_flight=2)
    try:
        assert (jira.max_in_flight, snow.max_in_flight) == (2, 6)
    finally:
        jira.close()
        snow.close()
