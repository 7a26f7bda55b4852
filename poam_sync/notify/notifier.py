"""The notifier: after each cycle, what is new is queued; a thread of its own delivers it.

:meth:`Notifier.after_cycle` runs in the daemon's thread between cycles. It reads the store
once (open conflicts, active problems, and at digest time the items), keeps what was neither
sent (the ``notifications_sent`` table) nor queued yet, and puts the messages on a queue; it
never raises and never waits for a server. The delivery thread sends each message on each
channel that wants it (mail to its recipients, chat for alerts and the office digest) and
retries a failure ``attempts`` times, waiting ``retry_seconds`` and doubling the wait each
time; once a channel took it, each of its events is remembered as sent on that channel
(``<key>@<channel>``), so no restart or second daemon sends it again. A message still failing
after its last attempt is logged (``notify.gave_up``) and left unsent: the next cycle that sees
the event queues it again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import structlog

from poam_sync.config import Config, NotifyConfig
from poam_sync.notify.channels import Channel, channels
from poam_sync.notify.events import (
    Alert,
    alert_message,
    conflict_alerts,
    failing_alert,
    office_digest,
    owner_digests,
    problem_alerts,
)
from poam_sync.notify.messages import Message
from poam_sync.store import Store, StoreTx
from poam_sync.sync.results import CycleReport

log = structlog.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    def __init__(
        self,
        settings: NotifyConfig,
        store: Store,
        connectors: Sequence[str],
        *,
        outlets: Sequence[Channel] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.connectors = list(connectors)
        self.outlets = list(channels(settings) if outlets is None else outlets)
        self.clock = clock
        self._queue: queue.Queue[tuple[Message, Channel] | None] = queue.Queue()
        self._queued: set[str] = set()  # "<key>@<channel>" waiting for delivery
        # delivered by this process: a cycle that read the store just before the delivery was
        # recorded must not send it again
        self._delivered: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: dict[str, tuple[int, str, str]] = {}  # connector -> (cycles, since, why)
        self._digested: str | None = None  # the day whose digests all went

    # -- the daemon's side -----------------------------------------------------------------

    def after_cycle(self, report: CycleReport | None) -> None:
        """Queue what is new after a cycle (``report`` None: the cycle failed as a whole)."""
        try:
            self._after_cycle(report)
        except Exception as exc:
            log.exception("notify.failed", error=f"{type(exc).__name__}: {exc}")

    def _after_cycle(self, report: CycleReport | None) -> None:
        now = self.clock()
        failing = self._track_failures(report, now)
        period = now.date().isoformat()
        digest_due = self._digest_due(now) and self._digested != period
        with self.store.read() as tx:
            alerts = [
                *conflict_alerts(tx.conflicts(state="open")),
                *problem_alerts(tx.problems()),
                *failing,
            ]
            digests = self._digests(tx, now, period) if digest_due else []
            keys = [a.key for a in alerts] + [k for m in digests for k in m.keys]
            sent = tx.sent_keys(f"{k}@{o.name}" for k in keys for o in self.outlets)
        queued = 0
        for outlet in self.outlets:
            fresh = [a for a in alerts if self._claim([a.key], outlet, sent)]
            if fresh:
                queued += self._put(alert_message(fresh, self.settings.admins), outlet)
            for digest in digests:
                if outlet.wants(digest) and self._claim(list(digest.keys), outlet, sent):
                    queued += self._put(digest, outlet)
        if digest_due and not any(
            f"{k}@{o.name}" not in sent
            for m in digests
            for k in m.keys
            for o in self.outlets
            if o.wants(m)
        ):
            self._digested = period  # every digest of the day went: not read again today
        if queued:
            self._started()

    def _claim(self, keys: Sequence[str], outlet: Channel, sent: set[str]) -> bool:
        """True when none of ``keys`` went or waits on ``outlet``; they then wait."""
        wanted = [f"{k}@{outlet.name}" for k in keys]
        with self._lock:
            if any(k in sent or k in self._queued or k in self._delivered for k in wanted):
                return False
            self._queued.update(wanted)
        return True

    def _put(self, message: Message, outlet: Channel) -> int:
        if not outlet.wants(message):
            with self._lock:
                self._queued.difference_update(f"{k}@{outlet.name}" for k in message.keys)
            return 0
        self._queue.put((message, outlet))
        log.info("notify.queued", kind=message.kind, channel=outlet.name, events=len(message.keys))
        return 1

    def _track_failures(self, report: CycleReport | None, now: datetime) -> list[Alert]:
        failed = (
            dict.fromkeys(self.connectors, "the cycle failed")
            if report is None
            else dict(report.failed_connectors)
        )
        alerts = []
        for name in self.connectors:
            if name not in failed:
                self._failing.pop(name, None)
                continue
            cycles, since, _why = self._failing.get(name, (0, now.strftime("%Y-%m-%dT%H:%MZ"), ""))
            self._failing[name] = (cycles + 1, since, failed[name])
            if cycles + 1 >= self.settings.failing_cycles:
                alerts.append(failing_alert(name, cycles + 1, since, failed[name]))
        return alerts

    def _digest_due(self, now: datetime) -> bool:
        d = self.settings.digest
        return now.hour >= d.hour_utc and (d.weekday is None or now.weekday() == d.weekday)

    def _digests(self, tx: StoreTx, now: datetime, period: str) -> list[Message]:
        d = self.settings.digest
        items = tx.all_items()
        out: list[Message] = []
        if self.settings.owners:
            out += owner_digests(items, now.date(), d.due_soon_days, period)
        last = tx.last_sent("digest_office")
        changed = None
        if last is not None:
            touched = {r.item_uuid for r in tx.log() if r.at > last and r.item_uuid}
            changed = (last.strftime("%Y-%m-%d %H:%M UTC"), len(touched))
        out.append(
            office_digest(items, now.date(), d.due_soon_days, period, changed, self.settings.office)
        )
        return out

    # -- the delivery thread -------------------------------------------------------------

    def _started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="notify")
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued was delivered or given up (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queued:
                    return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self._queue.get()
            if job is None:
                return
            message, outlet = job
            self._deliver(message, outlet)

    def _deliver(self, message: Message, outlet: Channel) -> None:
        keys = [f"{k}@{outlet.name}" for k in message.keys]
        bound = log.bind(kind=message.kind, channel=outlet.name)
        wait = self.settings.retry_seconds
        try:
            for attempt in range(1, self.settings.attempts + 1):
                try:
                    outlet.send(message)
                except Exception as exc:  # noqa: BLE001 - a server's failure: retried
                    bound.warning(
                        "notify.delivery_failed",
                        attempt=attempt,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    if attempt == self.settings.attempts or self._stop.wait(wait):
                        bound.error("notify.gave_up", attempts=attempt)
                        return
                    wait *= 2
                    continue
                with self._lock:
                    self._delivered.update(keys)
                with self.store.begin() as tx:
                    for key in keys:
                        tx.mark_sent(key, message.kind)
                bound.info("notify.sent", events=len(keys), to=len(message.to))
                return
        except Exception as exc:  # noqa: BLE001 - the thread outlives any one message
            bound.exception("notify.failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._queued.difference_update(keys)


@contextmanager
def notifying(config: Config, store: Store) -> Iterator[Notifier | None]:
    """The daemon's notifier when ``notify`` names a channel (stopped at the end)."""
    if not config.notify.enabled:
        yield None
        return
    notifier = Notifier(config.notify, store, [c.name for c in config.connectors])
    try:
        yield notifier
    finally:
        notifier.stop()
