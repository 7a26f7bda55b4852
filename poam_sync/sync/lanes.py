"""Remote writes under way at once: the executor's threads, and each connector's share of them.

Connector calls go to a thread pool as long as some connector allows more than one write at a
time (:attr:`~poam_sync.connectors.base.Connector.max_in_flight`; the HTTP connectors bound
their requests per host again in connectors/_inflight.py). A connector's calls hold one of its
own slots, so a connector that allows one (the in-memory one) is never called from two threads
at once. When no connector allows more than one, everything runs in the calling thread, one
call after another, exactly as before.

Only remote calls run in the pool. What they bring is written to the store by the calling
thread, one item's transaction after another (SQLite has one writer), in the order the work was
handed out.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from poam_sync.connectors.base import Connector

T = TypeVar("T")


class Lanes:
    """The executor's pool of remote-write threads for one cycle (close it when done)."""

    def __init__(self, connectors: Mapping[str, Connector]) -> None:
        limits = {name: max(1, c.max_in_flight) for name, c in connectors.items()}
        self.workers = sum(limits.values()) if any(n > 1 for n in limits.values()) else 1
        self._slots = {name: threading.BoundedSemaphore(n) for name, n in limits.items()}
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="poam-sync-write")
            if self.workers > 1
            else None
        )

    @property
    def window(self) -> int:
        """How much work may be handed out before the oldest is waited for: enough to keep
        every thread busy, few enough that a crash leaves little claimed and not done."""
        return 2 * self.workers

    @contextmanager
    def slot(self, connector: str) -> Iterator[None]:
        """Hold one of ``connector``'s slots for the length of one of its calls."""
        with self._slots[connector]:
            yield

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` in the pool (with the caller's context: its bound log fields), or at
        once in this thread when there is no pool."""
        if self._pool is None:
            done: Future[T] = Future()
            try:
                done.set_result(fn())
            except Exception as exc:  # noqa: BLE001 - handed back as the future's outcome
                done.set_exception(exc)
            return done
        return self._pool.submit(contextvars.copy_context().run, fn)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
