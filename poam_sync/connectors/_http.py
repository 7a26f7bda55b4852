"""The retry policy shared by connectors.

Connectors turn a client's rate-limit, server and network errors into
:class:`~poam_sync.errors.RemoteTransientError` (with ``retry_after`` when the remote said how
long to wait). :func:`with_retries` then retries the call with exponential backoff and full
jitter, honours ``Retry-After`` (capped), and after a bounded number of attempts lets the last
transient error through, for the engine to defer the item to a later cycle.

Only calls that are safe to repeat may be wrapped: reads, idempotent writes (PUT of a field
value, a transition to a status the record is not yet in), and creates that first checked by
stamp that they did not already happen.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from poam_sync.errors import RemoteTransientError

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5  # seconds, doubled per attempt
    max_delay: float = 30.0  # longest single wait, also caps Retry-After
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)


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


def with_retries(call: Callable[[], T], policy: RetryPolicy, *, what: str) -> T:
    """Run ``call``, retrying transient remote errors as ``policy`` says."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, RemoteTransientError) else None
        delay = policy.delay(state.attempt_number, retry_after)
        log.info("remote.retry", what=what, attempt=state.attempt_number, wait_s=round(delay, 2))
        return delay

    retrying = Retrying(
        retry=retry_if_exception_type(RemoteTransientError),
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        sleep=policy.sleep,
        reraise=True,
    )
    return retrying(call)
