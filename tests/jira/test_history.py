"""History and comments past a page: each field credited to whoever changed it (from the
changelog, paged past Cloud's 100), comments paged past Cloud's 100, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest

from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.model import Note
from poam_sync.simulators.jira import RunningJira, start_jira_simulator
from poam_sync.testing import new_stamp
from tests.jira.test_sim_real_site import Site
from tests.sync.conftest import World, poam
from tests.sync.conftest import world as world

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@contextmanager
def _busy_issue(mode: str, edits: int) -> Iterator[tuple[Site, str]]:
    """A site with one issue that has ``edits`` histories."""
    with start_jira_simulator(mode=mode) as running:
        site = Site(running)
        key = site.create()["key"]
        _busy(site, key, edits)
        yield site, key


def _busy(site: Site, key: str, edits: int) -> None:
    """``edits`` label changes by bob: history that is no synced field's."""
    for n in range(edits):
        site.sim.human_edit(key, "labels", [f"pass-{n}"], user_email="bob@example.com")


# -- the simulator ---------------------------------------------------------------------------


def test_cloud_pages_the_changelog_and_caps_its_expansion_at_100() -> None:
    with _busy_issue("cloud", 130) as (site, key):
        expanded = site.http.get(f"{site.api}/issue/{key}", params={"expand": "changelog"})
        changelog = expanded.json()["changelog"]
        assert (len(changelog["histories"]), changelog["total"]) == (100, 130)
        pages: list[dict[str, Any]] = []
        start = 0
        while True:
            page = site.http.get(
                f"{site.api}/issue/{key}/changelog", params={"startAt": start, "maxResults": 500}
            ).json()
            pages.append(page)
            start += len(page["values"])
            if page["isLast"]:
                break
        assert [len(p["values"]) for p in pages] == [100, 30]
        assert pages[0]["total"] == 130 and "nextPage" in pages[0]
        firsts = [i["toString"] for i in pages[0]["values"][0]["items"]]
        assert firsts == ["pass-0"]  # oldest first


def test_data_center_expands_every_history_and_has_no_changelog_endpoint() -> None:
    with _busy_issue("datacenter", 110) as (site, key):
        changelog = site.http.get(f"{site.api}/issue/{key}", params={"expand": "changelog"})
        assert len(changelog.json()["changelog"]["histories"]) == 110
        assert site.http.get(f"{site.api}/issue/{key}/changelog").status_code == 404


def test_comments_come_100_a_page_on_cloud_and_all_at_once_on_data_center(mode: str) -> None:
    with start_jira_simulator(mode=mode) as running:
        site = Site(running)
        key = site.create()["key"]
        for n in range(130):
            site.sim.human_comment(key, f"note {n}")
        url = f"{site.api}/issue/{key}/comment"
        first = site.http.get(url, params={"maxResults": 1000}).json()
        assert first["total"] == 130
        assert len(first["comments"]) == (100 if running.sim.cloud else 130)
        rest = site.http.get(url, params={"startAt": 100}).json()
        assert [c["body"] for c in rest["comments"]][:1] == ["note 100"]


# -- the connector ---------------------------------------------------------------------------


def test_a_note_past_the_first_100_comments_is_not_posted_again(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = connector.create(new_stamp(), {"title": "Busy"}).record
    for n in range(120):
        jira_sim.sim.human_comment(rec.key, f"chatter {n}")
    note = Note(body="Rescan on Friday.")
    connector.add_note(rec.remote_id, note)
    connector.add_note(rec.remote_id, note)
    bodies = [c["body"] for c in jira_sim.sim.issues[rec.remote_id]["comments"]]
    assert len(bodies) == 121 and sum(b.endswith("Rescan on Friday.") for b in bodies) == 1


def test_each_field_is_credited_to_whoever_changed_it(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = connector.create(new_stamp(), {"title": "Weakness", "status": "open"}).record
    jira_sim.sim.human_set_due_date(rec.key, date(2031, 1, 31), user_email="alice@example.com")
    jira_sim.sim.human_transition(rec.key, "In Progress", user_email="bob@example.com")
    got = connector.get(rec.remote_id)
    assert got.updated_by == "bob@example.com"  # the last to touch the issue
    due, status = got.change_of("due_date"), got.change_of("status")
    assert (due.actor, due.source) == ("alice@example.com", "history")
    assert (status.actor, status.source) == ("bob@example.com", "history")
    assert due.at is not None and status.at is not None and due.at < status.at
    # a field nobody changed since the create: the record's last actor, and it says so
    assert got.change_of("title").source == "record"


def test_a_change_older_than_cloud_s_100_histories_keeps_its_actor(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = connector.create(new_stamp(), {"title": "Weakness"}).record
    jira_sim.sim.human_set_due_date(rec.key, date(2031, 1, 31), user_email="alice@example.com")
    _busy(Site(jira_sim), rec.key, 105)  # Cloud expands the newest 100 only
    got = connector.get(rec.remote_id)
    assert got.change_of("due_date").actor == "alice@example.com"
    pulled = {r.key: r for r in connector.pull(None)}
    assert pulled[rec.key].change_of("due_date").actor == "alice@example.com"


def test_the_change_log_credits_each_engineer_with_their_own_field(world: World) -> None:
    item = poam(1)
    world.add(item)
    engine = world.engine()
    assert engine.run_cycle().ok
    key = world.jira_key(item)
    world.jira.sim.human_set_due_date(key, date(2027, 1, 15), user_email="alice@example.com")
    world.jira.sim.human_transition(key, "In Progress", user_email="bob@example.com")
    report = engine.run_cycle()
    assert report.ok, report.errors
    rows = {r.field: r for r in world.store.log() if r.source == "jira"}
    assert rows["due_date"].new_value == "2027-01-15"
    assert rows["due_date"].actor is not None and "alice@example.com" in rows["due_date"].actor
    assert rows["status"].actor is not None and "bob@example.com" in rows["status"].actor
