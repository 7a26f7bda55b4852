"""The daemon signs a change-log checkpoint after every cycle that changed something, into the
folder named by `audit.checkpoints`; a key it cannot use stops it at its start."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import structlog

from poam_sync import audit_checkpoint
from poam_sync.config import parse_config
from poam_sync.daemon import run_daemon
from tests.sync.conftest import World, config_dict, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_a_cycle_that_changed_the_log_leaves_a_checkpoint_that_verifies(
    world: World, tmp_path: Path
) -> None:
    world.add(poam(1), poam(2))
    key = tmp_path / "signing.key"
    audit_checkpoint.generate_key(key)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    raw = config_dict(world)
    raw["schedule"] = {"interval_seconds": 5}
    raw["audit"] = {"checkpoints": str(folder), "checkpoint_key": str(key)}
    config = parse_config(raw, env=world.env)
    stop = threading.Event()

    def stop_once_written() -> None:
        deadline = time.monotonic() + 90
        while not list(folder.glob("checkpoint-*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()

    watcher = threading.Thread(target=stop_once_written)
    watcher.start()
    with structlog.testing.capture_logs() as logs:
        code = run_daemon(config, world.db_url, stop=stop)
    watcher.join()

    assert code == 0
    (written,) = folder.glob("checkpoint-*.json")
    signed = audit_checkpoint.read_checkpoint(written)
    assert signed.checkpoint.seq == world.store.log()[-1].seq  # the links the cycle wrote too
    public = audit_checkpoint.load_public_key(Path(f"{key}.pub"))
    assert audit_checkpoint.check(world.store, signed, public).ok
    (event,) = [e for e in logs if e["event"] == "audit.checkpoint_written"]
    assert event["file"] == str(written) and event["seq"] == signed.checkpoint.seq


def test_a_missing_key_stops_the_daemon_at_its_start(world: World, tmp_path: Path) -> None:
    raw = config_dict(world)
    raw["audit"] = {"checkpoints": str(tmp_path), "checkpoint_key": str(tmp_path / "none.key")}
    config = parse_config(raw, env=world.env)
    with structlog.testing.capture_logs() as logs:
        code = run_daemon(config, world.db_url)
    assert code == 2
    (failed,) = [e for e in logs if e["event"] == "daemon.start_failed"]
    assert "no key file at" in failed["error"]


def test_relative_audit_paths_are_read_from_the_configuration_files_folder(
    tmp_path: Path,
) -> None:
    config = parse_config(
        {"audit": {"checkpoints": "checkpoints", "checkpoint_key": "/keys/poam-sync.key"}},
        env={},
        base=tmp_path,
    )
    assert config.audit.checkpoints == tmp_path / "checkpoints"
    assert config.audit.checkpoint_key == Path("/keys/poam-sync.key")
