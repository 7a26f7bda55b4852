"""The daemon's notifications on the real path: a daemon process over both simulators, a local
SMTP server (STARTTLS and AUTH) and a chat receiver; cycle after cycle, each digest arrives
once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from tests.sync.conftest import World, config_dict, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared
from tests.test_daemon_leader import Proc
from tests.test_notify import Chat, Smtp
from tests.test_notify import chat as chat  # the local receivers, shared
from tests.test_notify import smtp as smtp

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _cycles(proc: Proc) -> int:
    return proc.events().count("sync.cycle")


def test_a_daemon_sends_each_digest_once_over_several_cycles(
    world: World, smtp: Smtp, chat: Chat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "mail-password")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", chat.url)
    overdue = poam(1, due_date="2026-01-15", scheduled_completion_date="2026-01-15")
    world.add(overdue, poam(2, owner=None))
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 5, "takeover_seconds": 1}
    raw["notify"] = {
        "admins": ["isso@example.com"],
        "office": ["poam-office@example.com"],
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp.settings.port,
            "username": "poam-sync",
            "password": "${SMTP_PASSWORD}",
            "sender": "poam-sync@example.com",
            "ca_bundle": str(smtp.settings.ca_bundle),
        },
        "chat": [{"kind": "slack", "url": "${SLACK_WEBHOOK_URL}"}],
        "digest": {"hour_utc": 0},  # due at the first cycle, whatever the hour
        "retry_seconds": 0.1,
    }
    cfg = tmp_path / "poam-sync.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    daemon = Proc(world, cfg, "run")
    try:
        deadline = time.monotonic() + 90
        while _cycles(daemon) < 3:
            assert daemon.popen.poll() is None and time.monotonic() < deadline, daemon.text
            time.sleep(0.2)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    rcpts = sorted(tuple(r) for r, _mail in smtp.inbox.mails)
    assert rcpts == [("alice@example.com",), ("poam-office@example.com",)]
    assert len(chat.posts) == 1 and "POA&amp;M review" in chat.posts[0]["text"]
    sent = [json.loads(line) for line in daemon.lines if '"notify.sent"' in line]
    assert len(sent) == 3  # alice, the office by mail, the office on chat
    assert "Traceback" not in daemon.text
