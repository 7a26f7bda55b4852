"""Crash safety: kill ``poam-sync sync --once`` right after each remote call of a small initial
sync (the remote did the work, the client never heard back), then sync again: every item must
end up with exactly one Jira issue and one ServiceNow record, and the change log must verify.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from poam_sync.config import parse_config
from poam_sync.simulators.jira import DEFAULT_PAT, start_jira_simulator
from poam_sync.simulators.servicenow import start_servicenow_simulator
from poam_sync.store import Store
from poam_sync.wiring import build_engine
from tests.sync.conftest import config_dict, poam, sim_env

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]


def _fresh(db_url: str) -> None:
    """Empty every table (one database schema serves every kill point of a test)."""
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        tables = sa.MetaData()
        tables.reflect(conn)
        tables.drop_all(conn)
    engine.dispose()


# Jira variants: (mode, search lag in seconds). With a lag the simulator's search index shows a
# write only that long after it, and the connector is told so (search_lag_seconds); Data
# Center's search returns no issue properties, so stamps are read per candidate.
JIRA_SITES = [("cloud", 0.0), ("cloud", 0.3), ("datacenter", 0.3)]


def sync_killed_after(n: int, sims: tuple[Any, Any], cfg_path: Path, env: dict[str, str]) -> bool:
    """``poam-sync sync --once`` in a process of its own, killed (SIGKILL) right after the
    ``n``-th remote call either simulator answered: the remote did the work, the client never
    heard back. Whether it was killed (False: the sync finished in fewer calls)."""
    calls = 0
    lock = threading.Lock()
    proc: subprocess.Popen[bytes] | None = None
    killed = threading.Event()

    def after_call(_endpoint: str, _number: int) -> None:
        nonlocal calls
        with lock:
            calls += 1
            if calls == n and proc is not None:
                os.kill(proc.pid, signal.SIGKILL)
                killed.set()

    for sim in sims:
        sim.sim.control.after_call = after_call
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "poam_sync", "--config", str(cfg_path), "sync", "--once"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc.wait(timeout=120)
    finally:
        for sim in sims:
            sim.sim.control.after_call = None
    return killed.is_set()


def _run_killed_at(
    n: int, tmp: Path, db_url: str, jira_mode: str = "cloud", search_lag: float = 0.0
) -> tuple[bool, Counter[str], Counter[str]]:
    """One fresh world; the sync process dies right after remote call ``n``.

    Returns whether the kill happened, and the number of remote records per POA&M ID.
    """
    _fresh(db_url)
    with (
        start_jira_simulator(mode=jira_mode, search_lag=search_lag) as jira,
        start_servicenow_simulator(tls_dir=tmp / "tls") as snow,
    ):
        env = sim_env(jira, snow)
        stub = type("W", (), {"db_url": db_url})()
        raw: dict[str, Any] = config_dict(stub)
        raw["connectors"]["servicenow"]["import_new"] = False
        raw["connectors"]["jira"]["search_lag_seconds"] = search_lag
        if jira_mode == "datacenter":
            for key in ("email", "token"):
                raw["connectors"]["jira"].pop(key)
            raw["connectors"]["jira"]["pat"] = "${JIRA_PAT}"
            env = {**env, "JIRA_PAT": DEFAULT_PAT}
        cfg_path = tmp / "poam-sync.yaml"
        cfg_path.write_text(yaml.safe_dump(raw), encoding="utf-8")

        store = Store.open(db_url)
        with store.begin() as tx:
            for k in (1, 2):
                tx.save(poam(k), source="cli", actor="test", reason="setup")

        killed = sync_killed_after(n, (jira, snow), cfg_path, env)

        # Recover in-process, twice, as the next daemon cycles would.
        config = parse_config(raw, env=env)
        with build_engine(config, store) as engine:
            for _ in range(2):
                engine.run_cycle()
        assert store.verify_log().ok
        with store.begin() as tx:
            assert len(tx.links("jira")) == 2 and len(tx.links("servicenow")) == 2
        store.close()

        jira.sim.advance_clock(search_lag)  # count what the index holds by now
        sync_user = jira.sim.user_by_email("sync@example.com")
        jira_ids = Counter(
            jira.sim.issue(str(issue["key"]))["fields"]["customfield_10041"]  # the POA&M ID field
            for issue in jira.sim.search("project = POAM", sync_user)
        )
        snow_ids = Counter(r["correlation_id"] for r in snow.sim.records("sn_grc_issue"))
        return killed, jira_ids, snow_ids


@pytest.mark.parametrize(("jira_mode", "search_lag"), JIRA_SITES)
def test_killing_the_sync_at_every_remote_call_never_duplicates(
    tmp_path: Path, db_url: str, jira_mode: str, search_lag: float
) -> None:
    n = 1
    while True:
        tmp = tmp_path / f"kill-{n}"
        tmp.mkdir()
        killed, jira_ids, snow_ids = _run_killed_at(n, tmp, db_url, jira_mode, search_lag)
        assert sum(jira_ids.values()) == 2, (n, jira_ids)
        assert sum(snow_ids.values()) == 2, (n, snow_ids)
        assert all(v == 1 for v in jira_ids.values()), (n, jira_ids)
        assert all(v == 1 for v in snow_ids.values()), (n, snow_ids)
        if not killed:  # the whole sync finished before call n: every call was covered
            break
        n += 1
    assert n > 5, "the initial sync made suspiciously few remote calls"
