"""The shared retry policy: which failures are worth retrying, one ladder, the circuit breaker.

The failures are real ones, made by ``requests`` against this machine: a port nothing listens
on, a name in ``.invalid`` (RFC 2606; answered by a patched resolver, so no test depends on
the network's DNS), a CA bundle that does not exist, a TLS server whose CA we do not trust.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from structlog.testing import capture_logs

from poam_sync.connectors._http import (
    CircuitBreaker,
    RetryPolicy,
    once,
    unreachable,
    with_retries,
)
from poam_sync.errors import RemoteRejected, RemoteTransientError, RemoteUnreachable

# -- helpers shared with the connector tests -----------------------------------------------------


def dead_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, read, closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def count_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request handed to a transport adapter (each one try to connect), by URL.

    Also makes names under ``.invalid`` fail in the resolver, as RFC 6761 says they must,
    without asking this machine's DNS.
    """
    sent: list[str] = []
    real_send = requests.adapters.HTTPAdapter.send
    real_getaddrinfo = socket.getaddrinfo

    def send(self: requests.adapters.HTTPAdapter, request: Any, *a: Any, **kw: Any) -> Any:
        sent.append(str(request.url))
        return real_send(self, request, *a, **kw)

    def getaddrinfo(host: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(host, str | bytes) and str(host).rstrip(".").endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *a, **kw)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return sent


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return count_sends(monkeypatch)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 (its URL) and a CA bundle of *another* CA."""
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    other = tmp_path_factory.mktemp("ca") / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    yield f"https://127.0.0.1:{server.server_address[1]}", other
    server.shutdown()
    server.server_close()


def failure_of(url: str, verify: bool | str = True) -> BaseException:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=
    try:
        session.get(url, verify=verify, timeout=5)
    except (requests.RequestException, OSError) as exc:
        return exc
    finally:
        session.close()
    raise AssertionError(f"{url} answered")


def classify(exc: BaseException, url: str, ca: Path | None = None) -> RemoteUnreachable | None:
    return unreachable(exc, system="Jira", url=url, connector="jira", ca_bundle=ca)


# -- the classifier ------------------------------------------------------------------------------


def test_a_refused_connection_is_unreachable_and_names_the_url(sends: list[str]) -> None:
    url = f"http://127.0.0.1:{dead_port()}"
    found = classify(failure_of(url + "/rest/api/2/serverInfo"), url)
    assert isinstance(found, RemoteUnreachable)
    assert str(found).startswith(f"cannot reach Jira at {url}: connection refused")
    assert f"is Jira running at {url}? check url in config/poam-sync.yaml" in str(found)
    assert len(sends) == 1


def test_a_name_that_does_not_resolve_is_unreachable(sends: list[str]) -> None:
    url = "https://jira.example.invalid"
    found = classify(failure_of(url + "/"), url)
    assert isinstance(found, RemoteUnreachable)
    assert "https://jira.example.invalid:443: name not resolved (jira.example.invalid" in str(found)
    assert "check url in config/poam-sync.yaml, connector 'jira'" in str(found)


def test_a_certificate_from_an_untrusted_ca_is_unreachable(tls_server: tuple[str, Path]) -> None:
    url, other_ca = tls_server
    found = classify(failure_of(url + "/", verify=str(other_ca)), url, other_ca)
    assert isinstance(found, RemoteUnreachable)
    assert f"{url}: certificate verify failed: unable to get local issuer" in str(found)
    assert "check ca_bundle in config/poam-sync.yaml" in str(found)


def test_a_missing_ca_bundle_is_unreachable_before_any_connection(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{dead_port()}"
    missing = tmp_path / "no-such-ca.pem"
    found = classify(failure_of(url + "/", verify=str(missing)), url, missing)
    assert isinstance(found, RemoteUnreachable)
    assert f"CA bundle {missing} not found" in str(found)
    assert "check ca_bundle" in str(found)


def test_a_ca_bundle_that_is_no_pem_file_is_a_tls_failure(tls_server: tuple[str, Path]) -> None:
    url, other_ca = tls_server
    garbage = other_ca.with_name("garbage.pem")
    garbage.write_text("not a certificate\n")
    found = classify(failure_of(url + "/", verify=str(garbage)), url, garbage)
    assert isinstance(found, RemoteUnreachable) and "TLS failure" in str(found)


def test_timeouts_and_resets_stay_transient() -> None:
    timeout = requests.ConnectTimeout("connect timed out")
    reset = requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
    assert classify(timeout, "https://jira.example.com") is None
    assert classify(reset, "https://jira.example.com") is None


# -- one ladder --------------------------------------------------------------------------------

NO_SLEEP = RetryPolicy(attempts=5, sleep=lambda s: None)


def failing(errors: list[Exception]) -> tuple[Callable[[], str], list[int]]:
    """A call raising ``errors`` one after the other, then answering "ok"; and its tries."""
    tries: list[int] = []

    def call() -> str:
        tries.append(1)
        if errors:
            raise errors.pop(0)
        return "ok"

    return call, tries


def test_a_503_is_retried() -> None:
    call, tries = failing([RemoteTransientError("503", status=503)] * 2)
    assert with_retries(call, NO_SLEEP, what="read") == "ok"
    assert len(tries) == 3


def test_unreachable_is_not_retried() -> None:
    call, tries = failing([RemoteUnreachable("cannot reach Jira at https://j:443")])
    with pytest.raises(RemoteUnreachable):
        with_retries(call, NO_SLEEP, what="read")
    assert len(tries) == 1


def test_a_retry_after_within_the_cap_is_waited_out_in_full() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_delay=1, max_retry_after=60, sleep=waits.append)
    call, _ = failing([RemoteTransientError("429", status=429, retry_after=45)])
    assert with_retries(call, policy, what="read") == "ok"
    assert waits == [45.0]


def test_a_retry_after_over_the_cap_raises_at_once_for_a_later_cycle() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_retry_after=60, sleep=waits.append)
    call, tries = failing([RemoteTransientError("429", status=429, retry_after=3600)] * 5)
    with pytest.raises(RemoteTransientError, match="over max_retry_after_seconds") as info:
        with_retries(call, policy, what="read")
    assert len(tries) == 1 and waits == []
    assert info.value.retry_after == 3600 and info.value.status == 429


def test_a_ladder_inside_a_ladder_runs_its_call_once() -> None:
    inner, inner_tries = failing([RemoteTransientError("503")] * 3)

    def outer() -> str:
        return with_retries(inner, NO_SLEEP, what="inner")

    assert with_retries(outer, NO_SLEEP, what="outer") == "ok"
    assert len(inner_tries) == 4  # one per outer attempt, not 5 x 5


# -- the circuit breaker ---------------------------------------------------------------------


def dead(message: str = "cannot reach ServiceNow at https://sn:443: connection refused") -> Any:
    tries: list[int] = []

    def call() -> None:
        tries.append(1)
        raise RemoteUnreachable(message, connector="servicenow")

    return call, tries


def test_the_breaker_opens_after_three_failures_and_logs_once() -> None:
    breaker = CircuitBreaker("servicenow")
    call, tries = dead()
    with capture_logs() as logs:
        for _ in range(10):
            with pytest.raises(RemoteUnreachable, match="https://sn:443: connection refused"):
                with_retries(call, NO_SLEEP, what="read", breaker=breaker)
    assert len(tries) == 3
    opened = [e for e in logs if e["event"] == "remote.skipped_for_this_cycle"]
    assert len(opened) == 1 and "https://sn:443" in opened[0]["error"]


def test_exhausted_transient_failures_open_it_too() -> None:
    breaker = CircuitBreaker("jira")
    call, tries = failing([RemoteTransientError("503", status=503)] * 100)
    for _ in range(5):
        with pytest.raises(RemoteTransientError):
            with_retries(
                call, RetryPolicy(attempts=2, sleep=lambda s: None), breaker=breaker, what="r"
            )
    assert len(tries) == 3 * 2


def test_an_answer_from_the_remote_closes_the_count() -> None:
    breaker = CircuitBreaker("jira")
    errors: list[Exception] = [RemoteUnreachable("x"), RemoteUnreachable("x")]
    errors += [RemoteRejected("400"), RemoteUnreachable("x"), RemoteUnreachable("x")]
    call, tries = failing(errors)
    for _ in range(5):
        with pytest.raises((RemoteUnreachable, RemoteRejected)):
            once(call, breaker=breaker)
    assert once(call, breaker=breaker) == "ok"  # never three in a row: never opened
    assert len(tries) == 6


def test_a_retry_after_over_the_cap_opens_it_at_once() -> None:
    breaker = CircuitBreaker("jira")
    call, tries = failing([RemoteTransientError("429", status=429, retry_after=3600)] * 9)
    for _ in range(3):
        with pytest.raises(RemoteTransientError):
            with_retries(call, NO_SLEEP, what="read", breaker=breaker)
    assert len(tries) == 1


def test_reset_tries_the_remote_again() -> None:
    breaker = CircuitBreaker("jira")
    call, tries = dead()
    for _ in range(4):
        with pytest.raises(RemoteUnreachable):
            once(call, breaker=breaker)
    breaker.reset()
    with pytest.raises(RemoteUnreachable):
        once(call, breaker=breaker)
    assert len(tries) == 4
