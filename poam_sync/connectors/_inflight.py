"""Requests in flight per remote host: a bound shared by the whole process, and backing off
together when the host says so.

Every connector session mounts a :class:`LimitedAdapter` built on the process's one
:class:`HostLimiter` for its origin (``scheme://host:port``, :func:`limiter_for`), so two
connectors, or a connector and the webhook replies of the same process, talking to one Jira site
share one bound. Where two configuration entries ask different bounds for one host, the smaller
one holds.

The limiter also pauses every request to the host, not only the one that was refused:

- on ``429 Too Many Requests``, for ``Retry-After`` seconds (Jira Cloud and ServiceNow both send
  it with a 429; Jira Cloud: "429 responses may be accompanied by Retry-After and
  X-RateLimit-Reset headers", developer.atlassian.com/cloud/jira/platform/rate-limiting;
  ServiceNow: "a Retry-After header indicates how many seconds to wait before retrying",
  docs "Inbound REST API rate limiting"); without it, until ``X-RateLimit-Reset``;
- when an answer says ``X-RateLimit-Remaining: 0`` (Jira Data Center sends it with every
  answer, "X-RateLimit-Remaining: the remaining number of tokens", confluence.atlassian.com
  rate-limiting HTTP headers), until ``X-RateLimit-Reset`` or ``Retry-After``.

``X-RateLimit-Reset`` is an ISO 8601 timestamp on Jira Cloud ("yyyy-MM-ddTHH:mmZ") and a UNIX
timestamp in seconds on ServiceNow; both are read. A pause is capped at
:data:`MAX_PAUSE_SECONDS` (the retry ladder, connectors/_http.py, decides about longer waits).
The request that got the 429 is retried by that ladder as before; the pause only keeps the other
requests of the process from piling onto a host that asked for quiet.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import requests
import structlog
from requests.adapters import HTTPAdapter

from poam_sync.connectors._http import origin, parse_retry_after

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "MAX_PAUSE_SECONDS",
    "HostLimiter",
    "LimitedAdapter",
    "backoff_seconds",
    "limiter_for",
]

log = structlog.get_logger(__name__)

#: requests in flight per host when the configuration does not say
DEFAULT_IN_FLIGHT = 4
#: the longest pause the limiter imposes on a host's requests after one answer
MAX_PAUSE_SECONDS = 60.0
#: the pause after a 429 that names no time at all
_BARE_429_PAUSE = 1.0


class HostLimiter:
    """At most ``limit`` requests in flight to one host, and a common pause after a 429."""

    def __init__(
        self,
        host: str,
        limit: int = DEFAULT_IN_FLIGHT,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.limit = max(1, limit)
        self.clock = clock
        self.in_flight = 0
        self.peak = 0  # the most requests in flight at once (benchmarks, tests)
        self.paused_until = 0.0
        self._cond = threading.Condition()

    def narrow(self, limit: int) -> None:
        """Another user of the host asks for at most ``limit``: the smaller bound holds."""
        with self._cond:
            self.limit = max(1, min(self.limit, limit))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the host's slots for the length of one request."""
        with self._cond:
            while True:
                wait = self.paused_until - self.clock()
                if wait > 0:
                    self._cond.wait(wait)
                elif self.in_flight >= self.limit:
                    self._cond.wait()
                else:
                    break
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify()

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Pause every request to the host if this answer asks for it."""
        pause = backoff_seconds(status, headers)
        if pause is None or pause <= 0:
            return
        pause = min(pause, MAX_PAUSE_SECONDS)
        with self._cond:
            until = self.clock() + pause
            if until > self.paused_until:
                self.paused_until = until
                log.info(
                    "remote.host_paused", host=self.host, status=status, wait_s=round(pause, 2)
                )
            self._cond.notify_all()


def backoff_seconds(
    status: int, headers: Mapping[str, str], *, now: float | None = None
) -> float | None:
    """How long the host asks everyone to wait after this answer; None when it does not."""
    remaining = (headers.get("X-RateLimit-Remaining") or "").strip()
    exhausted = remaining.isdigit() and int(remaining) == 0
    if status != 429 and not exhausted:
        return None
    wait = parse_retry_after(headers.get("Retry-After"), now=now)
    if wait is None or (exhausted and wait == 0):
        reset = _reset_in(headers.get("X-RateLimit-Reset"), now=now)
        wait = reset if reset is not None else wait
    if wait is None:
        return _BARE_429_PAUSE if status == 429 else None
    return wait


def _reset_in(value: str | None, *, now: float | None) -> float | None:
    """``X-RateLimit-Reset`` as seconds from now: a UNIX time (ServiceNow) or ISO 8601 (Jira
    Cloud, ``2026-12-06T22:10Z``)."""
    if not value:
        return None
    value = value.strip()
    current = time.time() if now is None else now
    try:
        when = float(value) if value.replace(".", "", 1).isdigit() else None
        if when is None:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            when = parsed.timestamp()
    except ValueError:
        return None
    return max(0.0, when - current)


#: the limiters in use, by host; one lives as long as a session's adapter holds it
_limiters: weakref.WeakValueDictionary[str, HostLimiter] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def limiter_for(url: str, limit: int = DEFAULT_IN_FLIGHT) -> HostLimiter:
    """The process's limiter for the host of ``url`` (made on first use; narrowed to
    ``limit`` when a user of it allowed more). Once no session holds it, it is gone: the next
    user starts afresh."""
    host = origin(url)
    with _registry_lock:
        found = _limiters.get(host)
        if found is None:
            found = _limiters[host] = HostLimiter(host, limit)
            return found
    found.narrow(limit)
    return found


class LimitedAdapter(HTTPAdapter):
    """A ``requests`` adapter whose every request holds a slot of its host's limiter.

    ``max_retries=0`` (our retry ladder is the only one); ``timeout`` is sent with every request
    that names none (pysnc passes none)."""

    def __init__(self, limiter: HostLimiter, *, timeout: float | None = None) -> None:
        super().__init__(max_retries=0, pool_maxsize=max(10, limiter.limit))
        self.limiter = limiter
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        with self.limiter.slot():
            response = super().send(
                request,
                stream=stream,
                timeout=self.timeout if timeout is None else timeout,
                verify=verify,
                cert=cert,
                proxies=proxies,
            )
        self.limiter.observe(response.status_code, response.headers)
        return response
