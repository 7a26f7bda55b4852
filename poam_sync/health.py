"""The daemon's HTTP endpoints: is it alive, is it ready (and in which role), its metrics.

``poam-sync run --http HOST:PORT`` serves, from a background thread (Starlette under uvicorn):

- ``GET /healthz``: 200 ``{"alive": true}`` while the process runs;
- ``GET /readyz``: JSON ``{"ready", "role", "reasons", ...}``; 200 while the daemon leads or stands
  by and its last cycle ended well, 503 while starting, stopping or ``degraded`` (the last
  cycle failed or left a connector out: ``reasons`` says why);
- ``GET /metrics``: Prometheus text exposition format 0.0.4 (prometheus.io, "Exposition
  formats": ``# HELP`` / ``# TYPE`` lines, then ``name{labels} value``; content type
  ``text/plain; version=0.0.4``), every name prefixed ``poam_sync_``.

Other routes are mounted beside them when the daemon passes them (``routes``): the webhook
receivers of :mod:`poam_sync.webhooks`.

What they show is :class:`DaemonState`, which the daemon's main thread updates after each cycle;
the endpoints only read it, so a slow scrape never touches the database or a cycle.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from poam_sync.errors import ConfigError
from poam_sync.telemetry import TELEMETRY, Telemetry

log = structlog.get_logger(__name__)


@dataclass
class DaemonState:
    """What the daemon is doing, for its logs and its HTTP endpoints."""

    role: str = "starting"  # starting | standby | leader | stopping | degraded
    reasons: list[str] = field(default_factory=list)
    cycles: int = 0
    failed_cycles: int = 0
    items_failed: int = 0
    conflicts_found: int = 0
    open_conflicts: int | None = None
    open_problems: int | None = None
    items_by_status: dict[str, int] | None = None
    overdue_items: int | None = None
    claimed_elsewhere: Counter[str] = field(default_factory=Counter)  # connector -> creates
    connector_success: dict[str, float] = field(default_factory=dict)  # connector -> time()
    changed: Counter[str] = field(default_factory=Counter)  # kind of change -> items
    last_success: float | None = None  # time.time() of the last cycle that ended well
    last_cycle_seconds: float | None = None
    last_error: str | None = None

    @property
    def shown_role(self) -> str:
        return "degraded" if self.role == "leader" and self.reasons else self.role

    @property
    def ready(self) -> bool:
        return self.shown_role in ("leader", "standby")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); :class:`ConfigError` otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"--http {text!r} is not HOST:PORT", hint="for example --http 127.0.0.1:8080"
        )
    return host, int(port)


def _metric(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP poam_sync_{name} {help_text}")
    lines.append(f"# TYPE poam_sync_{name} {kind}")


def _label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _remote_metrics(lines: list[str], t: Telemetry) -> None:
    _metric(lines, "remote_calls_total", "counter", "HTTP answers from the remotes.")
    for (name, method, status), n in sorted(t.remote_calls.items()):
        lines.append(
            f'poam_sync_remote_calls_total{{connector="{_label(name)}",method="{method}",'
            f'status="{status}"}} {n}'
        )
    _metric(lines, "remote_retries_total", "counter", "Remote calls tried again.")
    for name, n in sorted(t.retries.items()):
        lines.append(f'poam_sync_remote_retries_total{{connector="{_label(name)}"}} {n}')
    _metric(lines, "rate_limit_waits_total", "counter", "Waits a remote asked for (Retry-After).")
    for name, n in sorted(t.rate_limit_waits.items()):
        lines.append(f'poam_sync_rate_limit_waits_total{{connector="{_label(name)}"}} {n}')
    _metric(lines, "rate_limit_wait_seconds_total", "counter", "Seconds spent in those waits.")
    for name, secs in sorted(t.rate_limit_wait_seconds.items()):
        lines.append(
            f'poam_sync_rate_limit_wait_seconds_total{{connector="{_label(name)}"}} {secs:.3f}'
        )
    _metric(lines, "webhooks_total", "counter", "Webhook calls received, by outcome.")
    for (source, outcome), n in sorted(t.webhooks.items()):
        lines.append(
            f'poam_sync_webhooks_total{{source="{_label(source)}",outcome="{_label(outcome)}"}} {n}'
        )


def metrics_text(state: DaemonState) -> str:
    """The metrics in Prometheus text format (every line ends with a line feed)."""
    lines: list[str] = []
    _metric(lines, "cycles_total", "counter", "Sync cycles this process ran.")
    lines.append(f"poam_sync_cycles_total {state.cycles}")
    _metric(lines, "cycle_failures_total", "counter", "Cycles that raised or lost the lead.")
    lines.append(f"poam_sync_cycle_failures_total {state.failed_cycles}")
    _metric(lines, "items_total", "counter", "Items changed by this process's cycles, by kind.")
    for kind in ("created", "updated_remote", "updated_local", "imported", "adopted"):
        lines.append(f'poam_sync_items_total{{kind="{kind}"}} {state.changed[kind]}')
    _metric(lines, "item_failures_total", "counter", "Items whose sync failed (retried).")
    lines.append(f"poam_sync_item_failures_total {state.items_failed}")
    _metric(lines, "conflicts_total", "counter", "Conflicts the cycles found.")
    lines.append(f"poam_sync_conflicts_total {state.conflicts_found}")
    if state.open_conflicts is not None:
        _metric(lines, "open_conflicts", "gauge", "Conflicts waiting for a person.")
        lines.append(f"poam_sync_open_conflicts {state.open_conflicts}")
    if state.open_problems is not None:
        _metric(lines, "open_problems", "gauge", "Problems waiting for a fix (unmapped, ...).")
        lines.append(f"poam_sync_open_problems {state.open_problems}")
    if state.items_by_status is not None:
        _metric(lines, "items", "gauge", "Canonical items by status.")
        for status, n in sorted(state.items_by_status.items()):
            lines.append(f'poam_sync_items{{status="{_label(status)}"}} {n}')
    if state.overdue_items is not None:
        _metric(lines, "overdue_items", "gauge", "Open items past their due date.")
        lines.append(f"poam_sync_overdue_items {state.overdue_items}")
    _metric(lines, "claimed_elsewhere_total", "counter", "Creates left to another process.")
    for name, n in sorted(state.claimed_elsewhere.items()):
        lines.append(f'poam_sync_claimed_elsewhere_total{{connector="{_label(name)}"}} {n}')
    _metric(
        lines,
        "connector_last_success_timestamp_seconds",
        "gauge",
        "When each connector last synced without failing.",
    )
    for name, at in sorted(state.connector_success.items()):
        lines.append(
            f'poam_sync_connector_last_success_timestamp_seconds{{connector="{_label(name)}"}} '
            f"{at:.3f}"
        )
    _remote_metrics(lines, TELEMETRY.snapshot())
    _metric(lines, "leader", "gauge", "1 while this process leads its database.")
    lines.append(f"poam_sync_leader {1 if state.role == 'leader' else 0}")
    if state.last_success is not None:
        _metric(lines, "last_success_timestamp_seconds", "gauge", "When a cycle last ended well.")
        lines.append(f"poam_sync_last_success_timestamp_seconds {state.last_success:.3f}")
    if state.last_cycle_seconds is not None:
        _metric(lines, "last_cycle_duration_seconds", "gauge", "How long the last cycle took.")
        lines.append(f"poam_sync_last_cycle_duration_seconds {state.last_cycle_seconds:.3f}")
    return "\n".join(lines) + "\n"


def health_app(state: DaemonState, routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The endpoints above, and ``routes`` beside them."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"alive": True})

    async def readyz(_request: Request) -> Response:
        body: dict[str, object] = {
            "ready": state.ready,
            "role": state.shown_role,
            "reasons": list(state.reasons),
            "cycles": state.cycles,
            "last_success": (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.last_success))
                if state.last_success is not None
                else None
            ),
            "last_error": state.last_error,
        }
        return JSONResponse(body, status_code=200 if state.ready else 503)

    async def metrics(_request: Request) -> Response:
        return PlainTextResponse(
            metrics_text(state), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    own = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    return Starlette(routes=[*own, *routes])


class HttpServer:
    """The endpoints under uvicorn in a daemon thread (it never handles signals)."""

    def __init__(
        self, state: DaemonState, host: str, port: int, routes: Sequence[BaseRoute] = ()
    ) -> None:
        config = uvicorn.Config(
            health_app(state, routes),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="http")
        self.host = host
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(
                    f"cannot serve HTTP on {self.host}:{self.server.config.port}",
                    hint="is the port in use? choose another with --http HOST:PORT",
                )
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
