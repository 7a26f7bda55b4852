"""Our own writes are not read back as news: the cycle after an initial sync lists versions
and leaves out the records still at the version our create read back (echoes), while a
person's edit right after our write, in the same second, is still taken (sync/echoes.py)."""

from __future__ import annotations

import pytest

from poam_sync.model import Note, with_fields
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


def _retitle(world: World, item_uuid: str, title: str) -> None:
    with world.store.begin() as tx:
        current = tx.get_by_uuid(item_uuid)
        assert current is not None
        tx.save(with_fields(current, {"title": title}), source="cli", actor="isso", reason="t")


def test_a_record_we_pushed_to_is_left_out_of_the_next_pull(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    _retitle(world, item.uuid, "Retitled here")
    pushed = engine.run_cycle()
    assert pushed.ok and dict(pushed.updated_remote) == {"jira": 1, "servicenow": 1}
    # each push's answer showed the record whole after our write, holding the baselines
    # (Jira: the issue read after the edit; ServiceNow: the batched PATCH's answer and the
    # journal read after it): its version is remembered, so nothing is read whole again
    versions = {name: _versions(world, name)[item.uuid] for name in ("jira", "servicenow")}
    stored = world.snow.sim.record("sn_grc_issue", world.snow_id(item))
    assert versions["servicenow"] is not None  # the update count, with its children's tag
    assert versions["servicenow"].partition("+")[0] == stored["sys_mod_count"]
    assert versions["jira"] is not None
    echo = engine.run_cycle()
    assert echo.ok and not echo.updated_remote and echo.updated_local == 0
    assert dict(echo.pulled) == {"jira": 0, "servicenow": 0}


def test_a_persons_edit_right_after_our_push_is_read(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    _retitle(world, item.uuid, "Retitled here")
    assert engine.run_cycle().ok
    sys_id = world.snow_id(item)
    world.snow.sim.human_update("sn_grc_issue", sys_id, {"short_description": "Bob's title"})
    world.jira.sim.human_edit(world.jira_key(item), "description", "Carol's words")
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert dict(report.pulled) == {"jira": 1, "servicenow": 1}
    got = world.store.item("acme", "V-1")
    assert got.title == "Bob's title" and got.description == "Carol's words"


def test_a_note_after_our_push_keeps_the_record_read(world: World) -> None:
    """A work note we write after the fields moves the version past the push's answer: that
    answer is not remembered, and the record is read (and then left out) as before."""
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    _retitle(world, item.uuid, "Retitled here")
    world.snow.sim.human_work_note("sn_grc_issue", world.snow_id(item), "Bob: please retest")
    report = engine.run_cycle()
    assert report.ok, report.errors
    # Bob's note goes on to Jira as a comment after the push there: Jira's issue is read
    # again; ServiceNow's answer (and its journal, read after it) showed Bob's note, taken
    # in this cycle: remembered
    echo = engine.run_cycle()
    assert echo.ok and not echo.updated_remote and echo.updated_local == 0
    assert dict(echo.pulled) == {"jira": 1, "servicenow": 0}
    assert dict(engine.run_cycle().pulled) == {"jira": 0, "servicenow": 0}


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


def test_a_push_whose_batch_answer_is_lost_is_written_once_and_its_note_once(
    world: World,
) -> None:
    """The Batch API request carrying our PATCHes ran but its answer never came: each record
    is written again on its own (a PATCH is safe to repeat), the work note after it goes out
    once (the journal is read first), and the next cycles change nothing."""
    items = [poam(1), poam(2)]
    world.add(*items)
    engine = world.engine()
    assert engine.run_cycle().ok
    for n, one in enumerate(items, start=1):
        current = world.store.item("acme", one.poam_id)
        note = Note(body=f"ISSO: retest {n} booked")
        changed = with_fields(current, {"title": f"Retitled {n}"})
        world.add(changed.model_copy(update={"notes": (*changed.notes, note)}))
    world.snow.sim.lose_next_answers(1, methods=["POST"])  # the first POST: the batch
    report = engine.run_cycle()
    assert report.ok, report.errors
    assert report.updated_remote["servicenow"] == 2
    for n, one in enumerate(items, start=1):
        sys_id = world.snow_id(one)
        assert world.snow.sim.record("sn_grc_issue", sys_id)["short_description"] == (
            f"Retitled {n}"
        )
        journal = world.snow.sim.journal("sn_grc_issue", sys_id)
        assert [j["value"].endswith(f"retest {n} booked") for j in journal] == [True]
    for _ in range(2):
        again = engine.run_cycle()
        assert again.ok and not again.updated_remote and again.updated_local == 0
    for one in items:
        assert len(world.snow.sim.journal("sn_grc_issue", world.snow_id(one))) == 1


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
