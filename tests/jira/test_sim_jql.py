"""The simulator's JQL answers as Jira's does: the clauses people write, and a 400 with Jira's
error body (never a 500) for anything it cannot run (over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poam_sync.simulators.jira import RunningJira, start_jira_simulator
from tests.conftest import examples
from tests.jira.test_sim_real_site import Site

ALICE = "5f0c1a2b3c4d5e6f70000002"
CAROL = "5f0c1a2b3c4d5e6f70000004"  # hides her e-mail on Cloud


@pytest.fixture
def site(mode: str) -> Iterator[Site]:
    with start_jira_simulator(mode=mode) as running:
        yield Site(running)


def _error(site: Site, jql: str) -> str:
    r = site.search(jql)
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"errorMessages", "errors"} and body["errors"] == {}
    return str(body["errorMessages"][0])


def test_resolution_unresolved_finds_the_issues_without_a_resolution(site: Site) -> None:
    open_key = site.create("Open")["key"]
    done_key = site.create("Finished")["key"]
    site.sim.human_transition(done_key, "Done", resolution="Won't Do")
    assert site.keys("project = POAM AND resolution = Unresolved") == [open_key]
    assert site.keys("project = POAM AND resolution != Unresolved") == [done_key]
    assert site.keys('project = POAM AND resolution = "Won\'t Do"') == [done_key]
    assert site.keys("project = POAM AND resolution is EMPTY") == [open_key]
    assert site.keys("project = POAM AND resolution in (Unresolved, Done)") == [open_key]


def test_issue_keys_compare_by_their_number_within_the_project(site: Site) -> None:
    keys = [site.create(f"Weakness {n}")["key"] for n in range(12)]
    numbers = [int(k.split("-")[1]) for k in keys]
    assert numbers == sorted(numbers)
    third, tenth = keys[2], keys[9]
    # by number, not as text: POAM-10 is above POAM-9
    assert site.keys(f"project = POAM AND issuekey > {third} ORDER BY key ASC") == keys[3:]
    between = f"project = POAM AND key >= {third} AND key < {tenth} ORDER BY key ASC"
    assert site.keys(between) == keys[2:9]
    assert site.keys(f"project = POAM AND issuekey <= {third} ORDER BY key ASC") == keys[:3]
    site.sim.delete_issue(tenth)
    assert f"An issue with key '{tenth}' does not exist" in _error(
        site, f"project = POAM AND issuekey > {tenth}"
    )


def test_status_category_by_name_key_or_id(site: Site) -> None:
    todo = site.create("New")["key"]
    blocked = site.create("Stuck")["key"]
    closed = site.create("Closed")["key"]
    site.sim.human_transition(blocked, "Blocked")
    site.sim.human_transition(closed, "Closed")
    assert site.keys("project = POAM AND statusCategory = Done") == [closed]
    assert site.keys('project = POAM AND statusCategory = "In Progress"') == [blocked]
    assert site.keys("project = POAM AND statusCategory = 2") == [todo]  # "To Do" is id 2
    assert site.keys("project = POAM AND statusCategory != done ORDER BY key ASC") == [
        todo,
        blocked,
    ]
    assert "does not exist for the field 'statusCategory'" in _error(
        site, "statusCategory = Finished"
    )


def test_contains_is_a_word_search_with_trailing_wildcards(site: Site) -> None:
    a = site.create("OpenSSL on the web tier")["key"]
    b = site.create("Kernel patches pending")["key"]
    assert site.keys('project = POAM AND summary ~ "open*"') == [a]
    assert site.keys('project = POAM AND summary ~ "patch*"') == [b]
    assert site.keys('project = POAM AND summary ~ "web tier"') == [a]
    assert site.keys('project = POAM AND summary ~ "ssl"') == []  # a word, not a substring
    assert site.keys('project = POAM AND summary !~ "kern*"') == [a]
    assert "not allowed as first character" in _error(site, 'summary ~ "*ssl"')


def test_component_by_name_or_id(site: Site) -> None:
    web = site.create("Web", components=[{"name": "Web"}])["key"]
    both = site.create("Both", components=[{"name": "Web"}, {"id": "10101"}])["key"]
    none = site.create("None")["key"]
    assert site.keys("project = POAM AND component = Web ORDER BY key ASC") == [web, both]
    assert site.keys("project = POAM AND component = 10101") == [both]
    assert site.keys("project = POAM AND component in (Database, Identity)") == [both]
    assert site.keys("project = POAM AND component is EMPTY") == [none]
    assert site.keys("project = POAM AND component = EMPTY") == [none]
    assert site.keys("project = POAM AND component != EMPTY ORDER BY key") == [web, both]
    assert "does not exist for the field 'component'" in _error(site, "component = Mobile")
    r = site.post("x", components=[{"name": "Mobile"}])
    assert r.status_code == 400
    assert r.json()["errors"] == {"components": "Component name 'Mobile' is not valid"}


def test_user_clauses_by_account_id_and_e_mail_on_cloud() -> None:
    with start_jira_simulator(mode="cloud") as running:
        site = Site(running)
        mine = site.create("Alice's", assignee={"accountId": ALICE})["key"]
        hers = site.create("Carol's", assignee={"accountId": CAROL})["key"]
        assert site.keys(f"project = POAM AND assignee = {ALICE}") == [mine]
        assert site.keys('project = POAM AND assignee = "alice@example.com"') == [mine]
        assert site.keys(f'project = POAM AND assignee = "{CAROL}"') == [hers]
        # Carol hides her e-mail: it names nobody in a search
        assert "does not exist for the field 'assignee'" in _error(
            site, 'assignee = "carol@example.com"'
        )
        assert "does not exist for the field 'assignee'" in _error(site, "assignee = alice")
        assert site.keys("project = POAM AND assignee is EMPTY") == []
        assert site.keys("project = POAM AND reporter = currentUser() ORDER BY key") == [
            mine,
            hers,
        ]


def test_user_clauses_by_username_e_mail_or_full_name_on_data_center() -> None:
    with start_jira_simulator(mode="datacenter") as running:
        site = Site(running)
        mine = site.create("Alice's", assignee={"name": "alice"})["key"]
        for who in ("alice", '"alice@example.com"', '"Alice Engineer"', "JIRAUSER10002"):
            assert site.keys(f"project = POAM AND assignee = {who}") == [mine], who
        assert "does not exist for the field 'assignee'" in _error(site, f"assignee = {ALICE}")


def test_was_reads_the_changelog(site: Site) -> None:
    moved = site.create("Moved")["key"]
    stayed = site.create("Stayed")["key"]
    site.sim.human_transition(moved, "In Progress")
    site.sim.human_transition(moved, "Blocked")
    assert site.keys('project = POAM AND status WAS "In Progress"') == [moved]
    assert site.keys('project = POAM AND status WAS "To Do" ORDER BY key ASC') == [moved, stayed]
    assert site.keys('project = POAM AND status WAS NOT "Blocked"') == [stayed]
    assert site.keys("project = POAM AND status WAS IN (Blocked, Done)") == [moved]
    assert "not supported" in _error(site, 'status WAS "To Do" BEFORE "2025/01/01"')
    assert "not supported" in _error(site, "status CHANGED")


def test_what_the_simulator_cannot_run_is_a_400_with_jira_s_body(site: Site) -> None:
    # no Jira Software on this site: no sprint field and no sprint functions
    assert "Field 'sprint' does not exist" in _error(site, "sprint in openSprints()")
    assert "Unable to find JQL function 'openSprints()'" in _error(
        site, "project = POAM AND issuekey in openSprints()"
    )
    assert "Unable to find JQL function" in _error(site, "assignee in membersOf2()")
    assert "not supported" in _error(site, 'assignee in membersOf("admins")')
    assert "does not exist for the field 'status'" in _error(site, "status = Nonesuch")
    assert "does not exist for the field 'priority'" in _error(site, "priority = Urgent")
    assert "does not exist" in _error(site, "nosuchfield = 1")
    assert _error(site, "project = POAM AND (status = Done")
    assert _error(site, "project = POAM AND")
    r = site.search("project = POAM", maxResults="many")
    assert r.status_code == 400
    assert site.keys("project = POAM AND updated <= now()") == []


_PIECES = st.sampled_from(
    [
        "project", "status", "statusCategory", "resolution", "assignee", "component",
        "summary", "labels", "updated", "duedate", "priority", "text", "issuekey", "cf[10041]",
        "=", "!=", "~", "!~", ">", "<=", "IN", "NOT", "IS", "WAS", "EMPTY", "AND", "OR",
        "ORDER BY", "(", ")", ",", '"', "'", "*", "Done", "Unresolved", "open*", "-5m",
        "currentUser()", "now()", "openSprints()", "POAM", "alice", "2025/01/01", "\\",
    ]
)  # fmt: skip


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, min_size=1, max_size=9))
def test_no_query_gets_a_500(pieces: list[str]) -> None:
    jql = " ".join(pieces)
    for running in _SITES:
        r = Site(running).search(jql)
        assert r.status_code in (200, 400), (jql, r.status_code, r.text)
        if r.status_code == 400:
            body = r.json()
            assert body["errorMessages"] and body["errors"] == {}, jql


_SITES: list[RunningJira] = []


@pytest.fixture(autouse=True, scope="module")
def _fuzz_sites() -> Iterator[None]:
    with (
        start_jira_simulator(mode="cloud") as cloud,
        start_jira_simulator(mode="datacenter") as dc,
    ):
        _SITES[:] = [cloud, dc]
        for running in _SITES:
            Site(running).create("Seed", labels=["web"])
        yield
        _SITES.clear()
