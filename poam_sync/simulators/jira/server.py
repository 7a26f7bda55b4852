"""Running a simulator: over HTTP in a background thread (tests, demo) or in the foreground."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from poam_sync.simulators._base import ServerThread
from poam_sync.simulators.jira.app import JiraSimulator
from poam_sync.simulators.jira.model import DEFAULT_EMAIL, DEFAULT_PAT, DEFAULT_TOKEN


class RunningJira:
    """A simulator served over HTTP in a background thread (``with`` or ``.stop()``)."""

    def __init__(self, sim: JiraSimulator, server: ServerThread, state: Path | None) -> None:
        self.sim = sim
        self.server = server
        self.state = state
        self.url = server.url

    def stop(self) -> None:
        self.server.stop()
        if self.state is not None:
            save_state(self.sim, self.state)

    def __enter__(self) -> RunningJira:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def save_state(sim: JiraSimulator, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(sim.dump_state(), indent=1), encoding="utf-8")
    tmp.replace(path)


def _load(state: Path | None, mode: str, search_lag: float) -> JiraSimulator:
    data = None
    if state is not None and state.exists():
        data = json.loads(state.read_text(encoding="utf-8"))
    return JiraSimulator(mode=mode, state=data, search_lag=search_lag)


def start_jira_simulator(
    *,
    mode: str = "cloud",
    latency_ms: int = 0,
    state: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    search_lag: float = 0.0,
    email_visibility: str = "show",
) -> RunningJira:
    """Start a simulator on ``host:port`` (0: any free port); ``.url`` is its base URL.

    ``search_lag``: seconds before searches see a write (see :mod:`.state`);
    ``email_visibility``: Data Center's show / hide / mask (see :mod:`.users`)."""
    sim = _load(state, mode, search_lag)
    sim.set_email_visibility(email_visibility)
    sim.control.set_latency(latency_ms)
    server = ServerThread(sim.app, host=host, port=port)
    server.start()
    return RunningJira(sim, server, state)


def serve(
    *,
    host: str,
    port: int,
    mode: str,
    state: Path | None,
    latency_ms: int,
    search_lag: float = 0.0,
) -> None:
    """Serve until interrupted; prints the base URL (first line) and the credentials when ready
    and saves ``state`` on exit."""
    running = start_jira_simulator(
        mode=mode, latency_ms=latency_ms, state=state, host=host, port=port, search_lag=search_lag
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    print(running.url, flush=True)
    pat = f"; PAT {DEFAULT_PAT}" if mode == "datacenter" else ""
    print(f"basic auth {DEFAULT_EMAIL} / {DEFAULT_TOKEN}{pat}", flush=True)
    print(
        f"export JIRA_URL={running.url} JIRA_USER={DEFAULT_EMAIL} JIRA_TOKEN={DEFAULT_TOKEN}",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        running.stop()
