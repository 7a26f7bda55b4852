"""The sync daemon: one APScheduler job per cycle on the configured interval.

``max_instances=1`` and ``coalesce`` mean cycles never overlap and missed runs collapse into
one; a misfire grace time lets a late cycle still run. A cycle that raises anything is logged as
one JSON line (the exception's type and message; the traceback too when it is not one of ours)
and the next cycle runs on schedule. SIGTERM / SIGINT ask the engine to stop after the item in
hand (the rest is picked up by the next start: its watermarks did not move) and the process
exits cleanly. Logs are JSON lines when stderr is not a terminal.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from types import FrameType

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler

from poam_sync.config import Config
from poam_sync.errors import PoamSyncError
from poam_sync.store import Store
from poam_sync.wiring import build_engine

log = structlog.get_logger(__name__)


def run_daemon(config: Config, database_url: str) -> None:
    store = Store.open(database_url)
    try:
        with build_engine(config, store) as engine:
            scheduler = BlockingScheduler(timezone=UTC)

            def cycle() -> None:
                try:
                    report = engine.run_cycle()
                except PoamSyncError as exc:
                    log.error(
                        "sync.cycle_failed",
                        error_type=type(exc).__name__,
                        error=str(exc),
                        hint=exc.hint,
                        next_cycle_s=config.schedule.interval_seconds,
                    )
                    return
                except Exception as exc:  # the daemon outlives any one cycle
                    log.exception(
                        "sync.cycle_failed",
                        error_type=type(exc).__name__,
                        error=str(exc),
                        next_cycle_s=config.schedule.interval_seconds,
                    )
                    return
                if not report.ok:
                    log.warning(
                        "sync.cycle_incomplete",
                        errors=len(report.errors),
                        failed_connectors=sorted(report.failed_connectors),
                    )

            scheduler.add_job(
                cycle,
                "interval",
                seconds=config.schedule.interval_seconds,
                id="sync-cycle",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=config.schedule.misfire_grace_seconds,
                next_run_time=datetime.now(UTC),
            )

            def stop(signum: int, _frame: FrameType | None) -> None:
                log.info("daemon.stopping", signal=signal.Signals(signum).name)
                engine.request_stop()
                scheduler.shutdown(wait=False)

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            log.info(
                "daemon.started",
                interval_s=config.schedule.interval_seconds,
                connectors=[c.name for c in config.connectors],
            )
            scheduler.start()  # returns after shutdown; running jobs finish first
            log.info("daemon.stopped")
    finally:
        store.close()
