"""Outbound calls a simulator makes on its own (webhooks): queued, sent by one background thread.

Both vendors send webhooks asynchronously, after the write that caused them has been committed:
Jira Data Center 10 "processes webhooks through a dedicated thread pool, rather than tying them
to the user request" (confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html);
a ServiceNow business rule that calls ``RESTMessageV2.executeAsync()`` hands the call to the ECC
queue. So a write never waits for a receiver, and a receiver that is down loses the call
(Jira's own retries are not modelled: the full cycle is what catches up).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import requests


@dataclass
class Delivery:
    """One call made: where, its status (None when the receiver could not be reached)."""

    url: str
    status: int | None
    body: bytes
    headers: dict[str, str]


@dataclass
class Outbound:
    """A queue of POSTs and the daemon thread that sends them (started on the first call)."""

    timeout: float = 10.0
    deliveries: list[Delivery] = field(default_factory=list)
    _queue: queue.Queue[tuple[str, bytes, dict[str, str]] | None] = field(
        default_factory=queue.Queue
    )
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _marks: list[threading.Event] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        self._started()
        self._queue.put((url, body, headers))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every call queued so far was made (tests); False on a timeout."""
        self._started()
        done = threading.Event()
        with self._lock:
            self._marks.append(done)
        self._queue.put(None)
        return done.wait(timeout)

    def _started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="webhooks")
                self._thread.start()

    def _run(self) -> None:
        session = requests.Session()
        session.trust_env = False  # the receiver is named by the registration alone
        while True:
            job = self._queue.get()
            if job is None:
                with self._lock:
                    marks, self._marks = self._marks, []
                for mark in marks:
                    mark.set()
                continue
            url, body, headers = job
            try:
                status: int | None = session.post(
                    url, data=body, headers=headers, timeout=self.timeout
                ).status_code
            except requests.RequestException:
                status = None
            self.deliveries.append(Delivery(url, status, body, headers))
