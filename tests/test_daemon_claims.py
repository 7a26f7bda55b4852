"""Never two creates, even without the leader lock: the create claim in the database.

Two real processes apply one initial sync at the same moment, on SQLite and on PostgreSQL,
with no leader lock between them: every item still ends up with exactly one Jira issue and one
ServiceNow record, each linked. And the rules for taking over a claim whose owner is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from poam_sync.store import ClaimRow
from poam_sync.sync.claims import Claimant
from tests.sync.conftest import ROOT, World, config_dict, poam
from tests.sync.conftest import world as world  # the end-to-end fixture, shared

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ITEMS = 60  # more than one create batch: the two processes interleave batch by batch

# One cycle through the engine as the CLI wires it, but without the leader lock (no fence),
# started only once the test says go, so both processes plan the same creates.
_ONE_CYCLE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import yaml
    from poam_sync.config import parse_config
    from poam_sync.store import Store
    from poam_sync.wiring import build_engine

    config_path, go = Path(sys.argv[1]), Path(sys.argv[2])
    config = parse_config(yaml.safe_load(config_path.read_text()))
    store = Store.open(config.database_url)
    with build_engine(config, store) as engine:
        while not go.exists():
            time.sleep(0.01)
        report = engine.run_cycle()
    store.close()
    print(json.dumps(report.summary()))
    for e in report.shown_errors():
        print("ERROR", e.poam_id, e.connector, e.message)
    """
)


def test_two_processes_applying_at_once_without_the_lock_create_each_record_once(
    world: World, tmp_path: Path
) -> None:
    world.add(*(poam(n) for n in range(1, ITEMS + 1)))
    raw = config_dict(world)
    raw["connectors"]["servicenow"]["import_new"] = False
    config_path = tmp_path / "poam-sync.yaml"
    config_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    go = tmp_path / "go"
    env = {**os.environ, **world.env}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ONE_CYCLE, str(config_path), str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # a traceback, if any, is shown by the assertion
        )
        for _ in range(2)
    ]
    go.touch()
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    said = [
        b"\n".join(
            x
            for x in o.splitlines()
            if x.startswith((b"{", b"ERROR", b"Traceback", b"  ", b"sqlalchemy", b"psycopg"))
            or b"Error" in x
        )
        for o in outputs
    ]

    sync_user = world.jira.sim.user_by_email("sync@example.com")
    jira = Counter(
        str(world.jira.sim.issue(str(issue["key"]))["fields"]["customfield_10041"])
        for issue in world.jira.sim.search("project = POAM", sync_user)
    )
    snow = Counter(str(r["correlation_id"]) for r in world.snow.sim.records("sn_grc_issue"))
    assert len(jira) == ITEMS and set(jira.values()) == {1}, jira
    assert len(snow) == ITEMS and set(snow.values()) == {1}, snow
    with world.store.read() as tx:
        assert len(tx.links("jira")) == ITEMS
        assert len(tx.links("servicenow")) == ITEMS
        assert tx.pending_claims("jira") == [] and tx.pending_claims("servicenow") == []
    # Both ended well (a watermark first set by both at once once failed one of them).
    assert [p.returncode for p in procs] == [0, 0], said


# -- who may take over a pending claim ---------------------------------------------------------

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _claim(owner: str, *, leader: bool = False, age: timedelta = timedelta(0)) -> ClaimRow:
    return ClaimRow("u1", "jira", "t", owner, leader, 1, NOW - age)


def test_a_claim_of_a_live_process_elsewhere_is_left_alone() -> None:
    me = Claimant("host-a", "4026531836", 200, "aaaa")
    timeout = timedelta(minutes=15)
    assert me.gone(_claim(f"host-a/4026531836/{os.getpid()}/bbbb"), NOW, timeout) is None
    assert me.gone(_claim("host-b/4026531836/1/cccc"), NOW, timeout) is None


def test_a_claim_whose_owner_is_gone_may_be_taken_over() -> None:
    me = Claimant.this_process()
    timeout = timedelta(minutes=15)
    assert me.gone(_claim(me.owner), NOW, timeout) == "it is this process's own"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    dead = f"{me.host}/{me.namespace}/{int(ended.stdout)}/dddd"
    assert me.gone(_claim(dead), NOW, timeout) == f"its process ({int(ended.stdout)}) has ended"
    elsewhere = "host-b/1/1/eeee"
    assert me.gone(_claim(elsewhere, age=timedelta(minutes=16)), NOW, timeout) == (
        "it is older than 900 s"
    )
    leader = Claimant.this_process(leader=True)
    assert leader.gone(_claim(elsewhere, leader=True), NOW, timeout) == (
        "its owner led this database before this process"
    )
    assert me.gone(_claim(elsewhere, leader=True), NOW, timeout) is None  # not leading itself


def test_a_create_claimed_by_a_live_process_is_left_to_it_until_its_claim_is_abandoned(
    world: World,
) -> None:
    item = poam(1)
    world.add(item)
    other = Claimant.this_process()  # this very process is alive: the claim is not abandoned
    elsewhere = f"{other.host}/{other.namespace}/{os.getpid()}/another-nonce"
    with world.store.begin() as tx:
        tx.claim_create(item.uuid, "jira", f"poam-sync:{item.uuid}", owner=elsewhere)

    engine = world.engine()
    first = engine.run_cycle()

    assert first.ok, first.errors
    assert dict(first.claimed_elsewhere) == {"jira": 1}
    assert dict(first.created) == {"servicenow": 1}
    assert len(world.jira.sim.issues) == 0

    engine.claim_timeout = timedelta(0)  # as if 15 minutes had gone by
    second = engine.run_cycle()

    assert second.ok, second.errors
    assert dict(second.created) == {"jira": 1} and dict(second.claimed_elsewhere) == {}
    with world.store.read() as tx:
        claim = tx.create_claim(item.uuid, "jira")
        assert tx.link(item.uuid, "jira") is not None
    assert claim is not None and claim.attempt == 2 and claim.finished_at is not None
    assert claim.owner == Claimant.this_process().owner
    assert len(world.jira.sim.issues) == 1
