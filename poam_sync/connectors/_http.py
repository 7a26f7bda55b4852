"""The retry policy shared by connectors: what is worth retrying, how long, and when to stop.

Connectors turn a client's rate-limit, server and network errors into
:class:`~poam_sync.errors.RemoteTransientError` (with ``retry_after`` when the remote said how
long to wait). :func:`with_retries` then retries the call with exponential backoff and full
jitter, honours ``Retry-After`` up to :attr:`RetryPolicy.max_retry_after` (a longer one is not
slept through: the error goes up at once, for the engine to defer the work to a later cycle),
and after a bounded number of attempts lets the last transient error through.

Some failures are not transient at all: a refused connection, a host name that does not
resolve, a certificate that does not verify, a CA bundle that cannot be read. :func:`unreachable`
recognises them in the ``requests``/``urllib3`` cause chain and names them as
:class:`~poam_sync.errors.RemoteUnreachable`, which is never retried.

A :class:`CircuitBreaker` per connector (reset at each cycle's ``prepare()``) counts failed
calls in a row; after :attr:`CircuitBreaker.threshold` of them every further call of the cycle
fails at once with the same error, without touching the network.

There is one retry ladder only: a ``with_retries`` inside another (a read inside a retried
update) runs its call once and leaves retrying to the outer one, and the clients' own retries
(``jira``'s ``ResilientSession``, urllib3's ``Retry``) are turned off by the connectors.

Only calls that are safe to repeat may be wrapped: reads, idempotent writes (PUT of a field
value, a transition to a status the record is not yet in), and creates that first checked by
stamp that they did not already happen.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from poam_sync.errors import RemoteError, RemoteTransientError, RemoteUnreachable
from poam_sync.telemetry import TELEMETRY

__all__ = [
    "CircuitBreaker",
    "RetryPolicy",
    "describe",
    "origin",
    "parse_retry_after",
    "unreachable",
    "with_retries",
]

T = TypeVar("T")
log = structlog.get_logger(__name__)

_in_ladder: ContextVar[bool] = ContextVar("poam_sync_in_retry_ladder", default=False)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5  # seconds, doubled per attempt
    max_delay: float = 30.0  # longest backoff wait
    max_retry_after: float = 60.0  # longest Retry-After waited out; a longer one gives up
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(retry_after, 0.0)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)

    def too_long(self, retry_after: float | None) -> bool:
        """The remote asked for a longer wait than we sleep through within a cycle."""
        return retry_after is not None and retry_after > self.max_retry_after


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: an integer, or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# -- what failed: the cause chain of a requests / urllib3 error -------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps, outermost first.

    ``requests`` wraps urllib3's errors as the first argument (``ConnectionError(MaxRetryError,
    request=...)``, requests/adapters.py ``HTTPAdapter.send``); ``MaxRetryError.reason`` holds
    the error of the last try (``NewConnectionError``, ``NameResolutionError``, urllib3's
    ``SSLError``); those chain the socket/ssl error as ``__cause__`` (urllib3/connection.py
    ``_new_conn``).
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += list(current.args)
        todo += [n for n in nested if isinstance(n, BaseException)]


def describe(exc: BaseException) -> str:
    """The innermost error's text: ``[Errno 111] Connection refused``, not a pool repr."""
    *_, last = _causes(exc)
    return str(last) or type(last).__name__


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` (the port spelled out, also when it is the default)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


# requests' words when the CA bundle path does not exist (requests/adapters.py cert_verify),
# raised as a bare OSError before any connection is made
_NO_CA_BUNDLE = "Could not find a suitable TLS CA certificate bundle"


def unreachable(
    exc: BaseException,
    *,
    system: str,
    url: str,
    connector: str,
    ca_bundle: Path | None = None,
    ca_setting: str = "ca_bundle",
) -> RemoteUnreachable | None:
    """``exc`` as :class:`RemoteUnreachable` when retrying cannot help, else None.

    Connection refused, a name that does not resolve, a TLS failure (a certificate that does
    not verify, a CA bundle that is no PEM), a CA bundle that is missing or unreadable. Timeouts,
    resets and half-read answers are not recognised here: they stay transient.
    """
    found = _why_unreachable(exc, url=url, ca_bundle=ca_bundle)
    if found is None:
        return None
    reason, fix = found
    where = origin(url)
    setting = f"config/poam-sync.yaml, connector {connector!r}"
    hints = {
        "ca": f"check {ca_setting} in {setting}",
        "cert": f"check {ca_setting} in {setting}: it must hold the CA that signed "
        f"{urlsplit(url).hostname}'s certificate",
        "tls": f"check {ca_setting} in {setting} (a PEM file of CA certificates) and that "
        f"{where} speaks HTTPS",
        "name": f"check url in {setting}",
        "refused": f"is {system} running at {where}? check url in {setting}",
    }
    return RemoteUnreachable(
        f"cannot reach {system} at {where}: {reason}", hint=hints[fix], connector=connector
    )


def _why_unreachable(
    exc: BaseException, *, url: str, ca_bundle: Path | None
) -> tuple[str, str] | None:
    """(the cause in words, which hint) when ``exc`` says the remote cannot be reached."""
    if ca_bundle is not None and url.startswith("https:") and not os.access(ca_bundle, os.R_OK):
        return f"CA bundle {ca_bundle} not found or unreadable", "ca"
    for cause in _causes(exc):
        if isinstance(cause, OSError) and _NO_CA_BUNDLE in str(cause):
            return f"CA bundle not found ({cause})", "ca"
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason or str(cause)
            return f"certificate verify failed: {why}", "cert"
        if isinstance(cause, ssl.SSLError) and not isinstance(
            cause,
            ssl.SSLEOFError | ssl.SSLZeroReturnError,  # a cut connection: transient
        ):
            return f"TLS failure: {cause.reason or cause}", "tls"
        if isinstance(cause, socket.gaierror):
            return f"name not resolved ({urlsplit(url).hostname}: {cause.strerror})", "name"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused", "refused"
    return None


# -- the ladder and the breaker ---------------------------------------------------------------


class CircuitBreaker:
    """Stops calling a remote that failed ``threshold`` calls in a row, for the rest of a cycle.

    A call fails for the breaker when it ends (retries exhausted) in
    :class:`RemoteUnreachable` or :class:`RemoteTransientError`; a ``Retry-After`` longer than
    the policy's cap opens it at once (the remote asked us to stay away). Any answer from the
    remote, even a refusal, closes the count again. Open, it raises a copy of the error that
    opened it, logged once. The connector's ``prepare()`` resets it for each cycle.
    """

    def __init__(self, connector: str, *, threshold: int = 3) -> None:
        self.connector = connector
        self.threshold = threshold
        self.failures = 0
        self.opened_by: RemoteError | None = None

    def reset(self) -> None:
        self.failures = 0
        self.opened_by = None

    def check(self) -> None:
        """Raise at once if open."""
        if self.opened_by is not None:
            raise _again(self.opened_by)

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, exc: RemoteError, *, stay_away: bool = False) -> None:
        if not isinstance(exc, RemoteUnreachable | RemoteTransientError):
            self.failures = 0  # the remote answered: it is there
            return
        self.failures += 1
        if self.opened_by is None and (stay_away or self.failures >= self.threshold):
            self.opened_by = exc
            log.warning(
                "remote.skipped_for_this_cycle",
                connector=self.connector,
                failures=self.failures,
                error=str(exc),
            )


def _again(exc: RemoteError) -> RemoteError:
    """A fresh copy of the error that opened a breaker (no traceback piling up)."""
    return exc.retold(f"{exc.message} (not tried again in this cycle)")


def with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    breaker: CircuitBreaker | None = None,
) -> T:
    """Run ``call``, retrying transient remote errors as ``policy`` says.

    Inside another ``with_retries`` the call runs once: the outer ladder retries it (nested
    ladders multiplied: 5 x 5 connects for one unreachable site).
    """
    if breaker is not None:
        breaker.check()
    if _in_ladder.get():
        return call()

    def worth_retrying(exc: BaseException) -> bool:
        return isinstance(exc, RemoteTransientError) and not policy.too_long(exc.retry_after)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, RemoteTransientError) else None
        delay = policy.delay(state.attempt_number, retry_after)
        name = getattr(exc, "connector", None) or (breaker.connector if breaker else None)
        TELEMETRY.retry(name or what, waited=delay, rate_limited=retry_after is not None)
        log.info("remote.retry", what=what, attempt=state.attempt_number, wait_s=round(delay, 2))
        return delay

    retrying = Retrying(
        retry=retry_if_exception(worth_retrying),
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        sleep=policy.sleep,
        reraise=True,
    )
    token = _in_ladder.set(True)
    try:
        result = retrying(call)
    except RemoteTransientError as exc:
        if not policy.too_long(exc.retry_after):
            if breaker is not None:
                breaker.failed(exc)
            raise
        deferred = exc.retold(
            f"{exc.message}; its Retry-After of {exc.retry_after:.0f} s is over "
            f"max_retry_after_seconds ({policy.max_retry_after:.0f} s): left for a later cycle"
        )
        if breaker is not None:
            breaker.failed(deferred, stay_away=True)
        raise deferred from exc
    except RemoteError as exc:
        if breaker is not None:
            breaker.failed(exc)
        raise
    finally:
        _in_ladder.reset(token)
    if breaker is not None:
        breaker.succeeded()
    return result


def once(call: Callable[[], T], *, breaker: CircuitBreaker | None = None) -> T:
    """Run ``call`` a single time (a write that is not safe to repeat), under the breaker."""
    return with_retries(call, _ONCE, what="", breaker=breaker)


_ONCE = RetryPolicy(attempts=1)
