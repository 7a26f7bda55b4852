"""`poam-sync serve` runs the workbench on its own: it says where, warns while no account can
sign in, and answers with the sign-in page; its own mistakes are one message, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.test_cli import ROOT, run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_with_the_sign_in_page(tmp_path: Path) -> None:
    port = _free_port()
    db = f"sqlite:///{tmp_path / 'store.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "poam_sync", "--db", db, "serve", "--http", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        session = requests.Session()
        session.trust_env = False
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = session.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.2)
        assert answer.status_code == 200 and "Sign in" in answer.text
        assert "default-src 'none'" in answer.headers["content-security-policy"]
    finally:
        proc.terminate()
        _, said = proc.communicate(timeout=30)
    assert f"workbench at http://127.0.0.1:{port}/" in said
    assert "no account can sign in yet" in said


def test_serve_mistakes_are_told(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    bad = run("--db", db, "serve", "--http", "nowhere", cwd=tmp_path)
    assert bad.returncode == 2 and "is not HOST:PORT" in bad.stderr
    half = run("--db", db, "serve", "--tls-cert", str(tmp_path / "c.pem"), cwd=tmp_path)
    assert half.returncode == 2 and "--tls-cert and --tls-key go together" in half.stderr
    proxy = run("--db", db, "serve", "--trust-user-header", "X-Remote-User", cwd=tmp_path)
    assert proxy.returncode == 2 and "needs the proxy's address" in proxy.stderr
    assert "Traceback" not in bad.stderr + half.stderr + proxy.stderr
