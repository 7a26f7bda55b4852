"""Running a simulator over HTTPS (a fresh local CA) in a background thread or the foreground."""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from poam_sync.simulators._base import ServerThread
from poam_sync.simulators.servicenow.app import ServiceNowSimulator
from poam_sync.simulators.servicenow.model import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
)


@dataclass
class RunningServiceNow:
    """A simulator serving HTTPS in a background thread (a context manager)."""

    sim: ServiceNowSimulator
    server: ServerThread
    url: str
    ca_path: Path
    state: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.stop()
        if self.state is not None:
            self.sim.save(self.state)

    def __enter__(self) -> RunningServiceNow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_tls(tls_dir: Path) -> tuple[Path, Path, Path]:
    """A fresh local CA and a server certificate for 127.0.0.1 and localhost: (ca, cert, key)."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="poam-sync simulator CA")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_path = tls_dir / "servicenow-ca.pem"
    cert_path = tls_dir / "servicenow-cert.pem"
    key_path = tls_dir / "servicenow-key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def start_servicenow_simulator(
    *,
    tls_dir: Path,
    latency_ms: int = 0,
    state: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    sim: ServiceNowSimulator | None = None,
) -> RunningServiceNow:
    """Start a simulator on ``host:port`` (0: any free port) over HTTPS; stop it with ``stop()``."""
    sim = sim or ServiceNowSimulator()
    if state is not None and state.exists():
        sim.load(state)
    sim.control.set_latency(latency_ms)
    ca_path, cert_path, key_path = write_tls(tls_dir)
    server = ServerThread(
        sim.app, host=host, port=port, ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)
    )
    url = server.start()
    return RunningServiceNow(sim=sim, server=server, url=url, ca_path=ca_path, state=state)


@contextmanager
def running(tls_dir: Path, **kw: Any) -> Iterator[RunningServiceNow]:
    run = start_servicenow_simulator(tls_dir=tls_dir, **kw)
    try:
        yield run
    finally:
        run.stop()


def serve(*, host: str, port: int, tls_dir: Path, state: Path | None, latency_ms: int) -> None:
    """Run the simulator until interrupted; prints its base URL and CA path when ready."""
    run = start_servicenow_simulator(
        tls_dir=tls_dir, latency_ms=latency_ms, state=state, host=host, port=port
    )
    print(f"ServiceNow simulator ready at {run.url}", flush=True)
    print(f"CA certificate: {run.ca_path}", flush=True)
    print(
        f"basic auth {ADMIN_USER} / {ADMIN_PASSWORD} (every user: its user_name / "
        f"{ADMIN_PASSWORD}); OAuth client {OAUTH_CLIENT_ID} / {OAUTH_CLIENT_SECRET} (the client "
        "credentials grant is off, as on an instance, until enabled)",
        flush=True,
    )
    ca = shlex.quote(str(run.ca_path.resolve()))
    print(
        f"export SERVICENOW_URL={run.url} SERVICENOW_USER={ADMIN_USER} "
        f"SERVICENOW_PASSWORD={ADMIN_PASSWORD} SERVICENOW_CA_BUNDLE={ca}",
        flush=True,
    )

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    # stop (and save the state) on SIGTERM as on Ctrl-C; signals reach the main thread only
    previous = signal.signal(signal.SIGTERM, interrupt) if main else None
    try:
        while run.server.thread.is_alive():
            run.server.thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        run.stop()
