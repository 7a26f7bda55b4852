"""What this process did with the outside world, counted for ``/metrics`` (poam_sync/health.py).

One process-wide, thread-safe set of counters, as a metrics library keeps them: remote calls by
connector, method and status, retries and rate-limit waits by connector, webhooks by source and
outcome, and creates another process had claimed. Connectors count their HTTP answers with
:func:`count_response` (a ``requests`` response hook), the retry ladder counts its waits, the
webhook receivers and the create step count theirs. Counting never raises and never blocks a
call for longer than a dictionary update.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Telemetry:
    """Counters since the process started (Prometheus counters: they only grow)."""

    remote_calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    rate_limit_waits: Counter[str] = field(default_factory=Counter)
    rate_limit_wait_seconds: dict[str, float] = field(default_factory=dict)
    webhooks: Counter[tuple[str, str]] = field(default_factory=Counter)
    claimed_elsewhere: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(self, connector: str, method: str, status: int | str) -> None:
        with self._lock:
            self.remote_calls[(connector, method.upper(), str(status))] += 1

    def retry(self, connector: str, *, waited: float, rate_limited: bool) -> None:
        with self._lock:
            self.retries[connector] += 1
            if rate_limited:
                self.rate_limit_waits[connector] += 1
                seconds = self.rate_limit_wait_seconds
                seconds[connector] = seconds.get(connector, 0.0) + waited

    def webhook(self, source: str, outcome: str) -> None:
        with self._lock:
            self.webhooks[(source, outcome)] += 1

    def claimed(self, connector: str, count: int = 1) -> None:
        with self._lock:
            self.claimed_elsewhere[connector] += count

    def snapshot(self) -> Telemetry:
        """A copy to read without holding the lock."""
        with self._lock:
            return Telemetry(
                Counter(self.remote_calls),
                Counter(self.retries),
                Counter(self.rate_limit_waits),
                dict(self.rate_limit_wait_seconds),
                Counter(self.webhooks),
                Counter(self.claimed_elsewhere),
            )


#: the process's counters
TELEMETRY = Telemetry()


def count_response(connector: str) -> Callable[..., None]:
    """A ``requests`` response hook counting each answer of ``connector``'s session."""

    def hook(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        method = response.request.method if response.request is not None else None
        TELEMETRY.call(connector, method or "?", response.status_code)

    return hook
