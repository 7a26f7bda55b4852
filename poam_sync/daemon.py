"""The sync daemon: one leader per database, a cycle on the configured interval, a clean stop.

Start: the configuration is checked before anything runs (every file a connector's settings
name must exist: a missing CA bundle is found here, not in every cycle); a problem is one JSON
log line, ``daemon.start_failed``, and a non-zero exit code.

Leading: before it syncs, the daemon takes the database's leader lock
(:mod:`poam_sync.store._lock`). While another process holds it, this one is a *standby*: it
logs ``daemon.standby`` once, with the holder, and tries again every
``schedule.takeover_seconds / 2`` seconds, so it takes over within ``takeover_seconds`` of the
leader's end (a crash or ``kill -9`` included). The engine checks the lock before each item and
each remote write; a leader that lost it (its lock connection dropped) stops writing at once,
logs ``daemon.leadership_lost`` and stands by again.

Cycles: one at a time in the main thread (they never overlap), each starting
``interval_seconds`` after the previous one started, or at once when a cycle took longer. A
cycle that raises anything is one JSON log line (the exception's type and message; the
traceback as a field of that line when it is not one of ours) and the next cycle runs on
schedule.

Stopping: SIGTERM / SIGINT ask the engine to stop after the item in hand; the cycle then ends
(its watermarks do not move, so the rest is picked up by the next start), the lock is released,
``daemon.stopped`` is logged, and the process exits 0. Logs are JSON lines when stderr is not a
terminal.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import structlog
from pydantic import BaseModel, SecretStr, ValidationError
from starlette.routing import BaseRoute, Mount

from poam_sync.audit_checkpoint import CycleCheckpoints
from poam_sync.config import Config
from poam_sync.connectors.registry import connector_type
from poam_sync.errors import ConfigError, LeadershipLost, PoamSyncError
from poam_sync.health import DaemonState, HttpServer
from poam_sync.notify import Notifier, notifying
from poam_sync.store import LeaderLock, Store, leader_lock
from poam_sync.sync.engine import CycleReport, Engine
from poam_sync.web.app import WebSettings
from poam_sync.web.mount import SECRET_ENV as WEB_SECRET_ENV
from poam_sync.web.mount import LazyWorkbench
from poam_sync.webhooks import PullQueue, receiving, wait_between_cycles, webhook_routes
from poam_sync.wiring import build_engine

log = structlog.get_logger(__name__)


def preflight(config: Config) -> None:
    """Configuration problems a daemon must not start with: every file a connector's settings
    name (a CA bundle, a key) must exist. :class:`ConfigError` naming the setting otherwise."""
    for cfg in config.connectors:
        try:
            settings = connector_type(cfg.type).validate_settings(cfg.settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"[connectors.{cfg.name}] {where} <- {first['msg']}") from None
        for name, path in _paths(settings):
            if not path.exists():  # a CA bundle may be a file or a folder of certificates
                raise ConfigError(
                    f"[connectors.{cfg.name}] {name} <- no file at {path}",
                    hint="mount the file there or correct the path in the configuration",
                )
        if not cfg.mapping.is_file():
            raise ConfigError(f"[connectors.{cfg.name}] mapping <- no file at {cfg.mapping}")


def _paths(settings: BaseModel) -> Iterator[tuple[str, Path]]:
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, Path):
            yield name, value


class _Signals:
    """SIGTERM / SIGINT set ``stop`` and ask the engine in hand to stop after its item."""

    def __init__(self, stop: threading.Event, state: DaemonState) -> None:
        self.stop = stop
        self.state = state
        self.engine: Engine | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.state.role = "stopping"
        self.stop.set()
        if self.engine is not None:
            self.engine.request_stop()

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        for s in previous:
            signal.signal(s, self)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def run_daemon(
    config: Config,
    database_url: str,
    *,
    http: tuple[str, int] | None = None,
    state: DaemonState | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run until SIGTERM / SIGINT (or ``stop`` is set); the process's exit code. ``http``:
    serve /healthz, /readyz and /metrics on (host, port) (poam_sync/health.py)."""
    state = state or DaemonState()
    stop = stop or threading.Event()
    signals = _Signals(stop, state)
    if http is None and receiving(config):  # configured, but nothing would receive them
        log.warning("daemon.webhooks_not_served", hint="start with run --http HOST:PORT")
    pulls = PullQueue() if http is not None and receiving(config) else None
    routes: list[BaseRoute] = [*webhook_routes(config, pulls)] if pulls is not None else []
    if http is not None:  # the admin workbench beside them (docs/workbench.md)
        routes = [*routes, Mount("/", app=workbench(config, database_url))]
    server = HttpServer(state, *http, routes=routes) if http is not None else None
    with signals.installed():
        try:
            if server is not None:  # first: a daemon that cannot start still says why there
                log.info("daemon.http", url=server.start())
            preflight(config)
            checkpoints = CycleCheckpoints.from_config(
                config.audit.checkpoints, config.audit.checkpoint_key
            )
            store = Store.open(database_url)
        except PoamSyncError as exc:
            code = start_failed(exc, state)
            if server is not None:
                server.stop()
            return code
        lock = leader_lock(database_url)
        try:
            with (
                build_engine(config, store, fence=lock.check) as engine,
                notifying(config, store) as notifier,
            ):
                signals.engine = engine
                log.info(
                    "daemon.started",
                    interval_s=config.schedule.interval_seconds,
                    takeover_s=config.schedule.takeover_seconds,
                    connectors=[c.name for c in config.connectors],
                    lock=lock.what,
                )
                _loop(config, engine, lock, state, stop, pulls, notifier, checkpoints)
        except PoamSyncError as exc:
            return start_failed(exc, state)
        except Exception as exc:  # a connector's own bug while being built: still one line
            state.role = "degraded"
            state.reasons = [f"{type(exc).__name__}: {exc}"]
            log.exception("daemon.start_failed", error_type=type(exc).__name__, error=str(exc))
            return 1
        finally:
            lock.release()
            lock.close()
            store.close()
            if server is not None:
                server.stop()
            log.info("daemon.stopped", cycles=state.cycles)
    return 0


def workbench(config: Config, database_url: str) -> LazyWorkbench:
    """The workbench the daemon's HTTP server mounts: sessions signed with
    ``POAM_SYNC_WEB_SECRET`` (random per start when unset), policies as the config sets them."""
    secret = os.environ.get(WEB_SECRET_ENV)
    policies = {
        name: f"authority: {rule.owner}" if rule.mode == "authority" else rule.mode
        for name, rule in config.policy.fields.items()
    }
    settings = WebSettings(secret=SecretStr(secret) if secret else None, policies=policies)
    return LazyWorkbench(database_url, settings)


def start_failed(exc: PoamSyncError, state: DaemonState | None = None) -> int:
    """``exc`` stopped the daemon before it could start: one log line; the exit code."""
    if state is not None:
        state.role = "degraded"
        state.reasons = [str(exc)]
    log.error(
        "daemon.start_failed", error_type=type(exc).__name__, error=exc.message, hint=exc.hint
    )
    return exc.exit_code


def _loop(
    config: Config,
    engine: Engine,
    lock: LeaderLock,
    state: DaemonState,
    stop: threading.Event,
    pulls: PullQueue | None = None,
    notifier: Notifier | None = None,
    checkpoints: CycleCheckpoints | None = None,
) -> None:
    interval = config.schedule.interval_seconds
    poll = max(0.5, config.schedule.takeover_seconds / 2)

    def waiting(holder: str | None) -> None:
        state.role = "standby"
        log.info("daemon.standby", holder=holder, lock=lock.what, retry_s=poll)

    def targeted(batch: Mapping[str, Collection[str]]) -> None:
        if lock.held:
            _notify(notifier, lock, _cycle(engine, lock, state, interval, fetch=batch))
            if checkpoints is not None:
                checkpoints.after_cycle(engine.store)

    while not stop.is_set():
        if not lock.held:
            if not lock.acquire(wait=True, poll_seconds=poll, stop=stop, waiting=waiting):
                return  # stopped while standing by
            state.role = "leader"
            # another process may have synced while this one stood by: plan everything again
            engine.invalidate()
            log.info("daemon.leading", lock=lock.what)
        started = time.monotonic()
        _notify(notifier, lock, _cycle(engine, lock, state, interval))
        if checkpoints is not None:  # signed, when the log moved on (poam_sync/audit_checkpoint)
            checkpoints.after_cycle(engine.store)
        state.last_cycle_seconds = time.monotonic() - started
        # webhooks' records are pulled meanwhile (targeted cycles, poam_sync/webhooks.py)
        if wait_between_cycles(
            stop,
            pulls if lock.held else None,
            interval - (time.monotonic() - started),
            config.webhooks.debounce_seconds,
            targeted,
        ):
            return


def _notify(notifier: Notifier | None, lock: LeaderLock, report: CycleReport | None) -> None:
    """Queue the notifications a cycle calls for (only the leader tells; delivery has a
    thread of its own, poam_sync/notify)."""
    if notifier is not None and lock.held:
        notifier.after_cycle(report)


def _read_gauges(engine: Engine, state: DaemonState) -> None:
    """What the store holds now, for /metrics: open conflicts and problems, items by status,
    overdue open items (a few aggregate queries, never a pass over the items in Python)."""
    try:
        with engine.store.read() as tx:
            state.open_conflicts = len(tx.conflicts(state="open"))
            state.open_problems = len(tx.problems())
            by_status: Counter[str] = Counter()
            for (status, _risk), n in tx.status_risk_counts(None).items():
                by_status[status] += n
            state.items_by_status = dict(by_status)
            due = tx.due_by_owner(None, today=datetime.now(UTC).date(), soon_days=0)
            state.overdue_items = sum(o.overdue for o in due)
    except PoamSyncError:
        state.open_conflicts = state.open_problems = state.overdue_items = None
        state.items_by_status = None


def _cycle(
    engine: Engine,
    lock: LeaderLock,
    state: DaemonState,
    interval: int,
    fetch: Mapping[str, Collection[str]] | None = None,
) -> CycleReport | None:
    """One cycle, whatever it raises: logged as one line, and the daemon goes on. ``fetch``:
    a webhook's targeted cycle (only those records are read). Its report (None: it failed)."""
    state.cycles += 1
    try:
        report = engine.run_cycle(fetch=fetch)
    except LeadershipLost as exc:
        state.failed_cycles += 1
        state.role = "standby"
        state.reasons = []
        state.last_error = str(exc)
        lock.release()
        log.error("daemon.leadership_lost", error=exc.message, hint=exc.hint)
        return None
    except PoamSyncError as exc:
        state.failed_cycles += 1
        state.last_error = str(exc)
        state.reasons = [f"the last cycle failed: {exc}"]
        log.error(
            "sync.cycle_failed",
            error_type=type(exc).__name__,
            error=exc.message,
            hint=exc.hint,
            next_cycle_s=interval,
        )
        return None
    except Exception as exc:  # the daemon outlives any one cycle; the traceback is a field
        state.failed_cycles += 1
        state.last_error = f"{type(exc).__name__}: {exc}"
        state.reasons = [f"the last cycle failed: {state.last_error}"]
        log.exception(
            "sync.cycle_failed",
            error_type=type(exc).__name__,
            error=str(exc),
            next_cycle_s=interval,
        )
        return None
    state.items_failed += len(report.errors)
    state.conflicts_found += report.conflicts
    state.changed["created"] += sum(report.created.values())
    state.changed["updated_remote"] += sum(report.updated_remote.values())
    state.changed["updated_local"] += report.updated_local
    state.changed["imported"] += report.imported
    state.changed["adopted"] += report.adopted
    state.claimed_elsewhere.update(report.claimed_elsewhere)
    now = time.time()
    for name in report.pulled:
        if name not in report.failed_connectors and name not in report.guarded:
            state.connector_success[name] = now
    _read_gauges(engine, state)
    if report.ok:
        state.last_success = time.time()
        state.last_error = None
        state.reasons = []
    else:
        state.reasons = [
            f"connector {n}: {why}" for n, why in sorted(report.failed_connectors.items())
        ]
        log.warning(
            "sync.cycle_incomplete",
            errors=len(report.errors),
            failed_connectors=sorted(report.failed_connectors),
        )
    return report
