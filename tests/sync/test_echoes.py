"""Our own writes are not read back as news: the cycle after an initial sync lists versions
and leaves out the records still at the version our create read back (echoes), while a
person's edit right after our write, in the same second, is still taken (sync/echoes.py)."""

from __future__ import annotations

import pytest

from poam_sync.model import with_fields
from poam_sync.store import StoreTx
from poam_sync.sync.echoes import RememberedVersions
from tests.sync.conftest import World, poam

pytestmark = pytest.mark.filterwarnings(
    # pysnc and jira leave pooled sockets to the garbage collector
    "ignore::ResourceWarning"
)


def _versions(world: World, connector: str) -> dict[str, str | None]:
    with world.store.read() as tx:
        return {link.item_uuid: link.remote_version for link in tx.links(connector)}


def test_the_cycle_after_an_initial_sync_leaves_our_creates_out(world: World) -> None:
    world.add(poam(1), poam(2), poam(3))
    engine = world.engine()
    first = engine.run_cycle()
    assert first.ok, first.errors
    for name in ("jira", "servicenow"):
        assert all(v is not None for v in _versions(world, name).values()), name
    after = engine.run_cycle()
    assert after.ok, after.errors
    # every record is still at the version its create read back: none read whole, none planned
    assert dict(after.pulled) == {"jira": 0, "servicenow": 0}
    assert not after.updated_remote and after.updated_local == 0 and not after.conflicts
    assert after.plan is not None and not any(p.actions for p in after.plan.items)


def test_an_edit_in_servicenow_in_the_same_second_as_our_create_is_taken(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    sys_id = world.snow_id(item)
    before = world.snow.sim.record("sn_grc_issue", sys_id)
    world.snow.sim.human_update("sn_grc_issue", sys_id, {"short_description": "Renamed by Bob"})
    after = world.snow.sim.record("sn_grc_issue", sys_id)
    # the version is the update count, not the time (seconds): both tell this edit apart
    assert int(after["sys_mod_count"]) == int(before["sys_mod_count"]) + 1
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.pulled["servicenow"] == 1
    assert world.store.item("acme", "V-1").title == "Renamed by Bob"
    assert world.jira.sim.issue(world.jira_key(item))["fields"]["summary"] == "Renamed by Bob"


def test_an_edit_in_jira_right_after_our_create_is_taken(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    key = world.jira_key(item)
    world.jira.sim.human_edit(key, "summary", "Renamed in Jira")
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.pulled["jira"] == 1
    assert world.store.item("acme", "V-1").title == "Renamed in Jira"


def test_a_record_we_pushed_to_is_read_again_once_then_left_out(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    with world.store.begin() as tx:
        current = tx.get_by_uuid(item.uuid)
        assert current is not None
        tx.save(
            with_fields(current, {"title": "Retitled here"}), source="cli", actor="isso", reason="t"
        )
    pushed = engine.run_cycle()
    assert pushed.ok and dict(pushed.updated_remote) == {"jira": 1, "servicenow": 1}
    # a push does not remember the version it wrote (a note may have come meanwhile): the
    # records are read once more, found equal to the baselines, and remembered
    echo = engine.run_cycle()
    assert echo.ok and not echo.updated_remote and echo.updated_local == 0
    assert dict(echo.pulled) == {"jira": 1, "servicenow": 1}
    quiet = engine.run_cycle()
    assert dict(quiet.pulled) == {"jira": 0, "servicenow": 0}


def test_a_conflict_keeps_the_record_read_until_it_is_settled(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    world.snow.sim.human_update(
        "sn_grc_issue", world.snow_id(item), {"short_description": "Theirs"}
    )
    with world.store.begin() as tx:
        current = tx.get_by_uuid(item.uuid)
        assert current is not None
        tx.save(with_fields(current, {"title": "Ours"}), source="cli", actor="isso", reason="t")
    report = engine.run_cycle()
    assert report.conflicts == 1
    assert _versions(world, "servicenow")[item.uuid] is None  # it differs from the baseline


def test_the_versions_are_read_from_the_store_only_when_a_pull_looks_one_up(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.add(poam(1), poam(2))
    assert world.engine().run_cycle().ok
    reads: list[str] = []
    real = StoreTx.link_versions

    def counting(tx: StoreTx, connector: str) -> dict[str, str]:
        reads.append(connector)
        return real(tx, connector)

    monkeypatch.setattr(StoreTx, "link_versions", counting)
    versions = RememberedVersions(world.store, "jira")
    assert versions and reads == []  # an idle pull, which lists nothing, reads no link
    held = {v for v in _versions(world, "jira").values() if v is not None}
    assert len(versions) == 2 and set(versions.values()) == held
    assert versions.get("no-such-issue") is None
    assert reads == ["jira"]  # once, however often it is looked up
