"""``uncovered()``: the project's statuses and the site's priorities the mapping does not cover,
each with the mapping line that would (what ``config check`` warns about); custom fields that
share a name: refused unless the mapping gives the id."""

from __future__ import annotations

import pytest

from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.errors import ConfigError
from poam_sync.simulators.jira import RunningJira
from poam_sync.testing import new_stamp
from tests.jira.conftest import FAST_RETRY, settings_for
from tests.jira.test_sim_real_site import Site


def _connector(running: RunningJira, raw: dict[str, object]) -> JiraConnector:
    return JiraConnector(settings_for(running), JiraMapping.model_validate(raw), retry=FAST_RETRY)


def test_a_real_site_s_own_statuses_and_priorities_are_listed(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    found = {(u.what, u.value) for u in connector.uncovered()}
    statuses = {("status", s) for s in ("Backlog", "Blocked", "On Hold", "Closed")}
    priorities = {("priority", "Lowest")}
    if not jira_sim.sim.cloud:  # Data Center's older scheme too
        priorities |= {
            ("priority", p) for p in ("Blocker", "Critical", "Major", "Minor", "Trivial")
        }
    assert found == statuses | priorities
    blocked = next(u for u in connector.uncovered() if u.value == "Blocked")
    assert blocked.hint == (
        "add `Blocked: <one of open, investigating, remediating, deviation_requested, "
        "risk_accepted, completed, false_positive, not_applicable, archived>` under "
        "read_statuses: in mappings/jira.yaml"
    )


def test_read_lines_cover_what_they_name(jira_sim: RunningJira, mapping: JiraMapping) -> None:
    raw = mapping.model_dump(mode="json") | {
        "read_statuses": {"Blocked": "remediating", "Closed / Done": "completed"},
        "read_priorities": {"Lowest": "low"},
    }
    c = _connector(jira_sim, raw)
    try:
        left = {
            (u.what, u.value) for u in c.uncovered() if u.what != "priority" or u.value == "Lowest"
        }
        assert left == {("status", "Backlog"), ("status", "On Hold")}
    finally:
        c.close()


def test_a_sub_task_status_the_milestones_do_not_name_is_listed(
    jira_sim: RunningJira, mapping: JiraMapping
) -> None:
    raw = mapping.model_dump(mode="json")
    raw["milestones"]["statuses"] = {
        "open": "To Do",
        "in_progress": "To Do",
        "completed": "Done",
        "archived": "Done",
    }
    c = _connector(jira_sim, raw)
    try:
        subtasks = [u for u in c.uncovered() if u.what == "sub-task status"]
        assert [(u.value, "milestones.read_statuses:" in u.hint) for u in subtasks] == [
            ("In Progress", True)
        ]
    finally:
        c.close()


# -- custom fields that share a name -----------------------------------------------------------


def test_the_site_lists_custom_fields_that_share_a_name(jira_sim: RunningJira) -> None:
    site = Site(jira_sim)
    fields = site.http.get(f"{site.api}/field").json()
    plans = sorted(f["id"] for f in fields if f["name"] == "Remediation Plan")
    assert plans == ["customfield_10045", "customfield_10046"]
    # another project's field: not on this project's screens
    r = site.post("x", customfield_10045="patch")
    assert r.status_code == 400 and "customfield_10045" in r.json()["errors"]


def test_a_mapped_name_several_fields_share_is_refused_naming_their_ids(
    jira_sim: RunningJira, mapping: JiraMapping
) -> None:
    other = jira_sim.sim.duplicate_field("Scheduled Completion Date")
    c = JiraConnector(settings_for(jira_sim), mapping, retry=FAST_RETRY)
    try:
        with pytest.raises(ConfigError) as err:
            c.prepare()
        message = str(err.value)
        assert message.startswith("[mappings/jira.yaml] fields.scheduled_completion_date <- ")
        assert f"2 fields named 'Scheduled Completion Date' (customfield_10042, {other})" in message
        assert err.value.hint is not None
        assert "`scheduled_completion_date: customfield_10042`" in err.value.hint
    finally:
        c.close()


def test_the_configured_id_of_a_shared_name_is_used(
    jira_sim: RunningJira, mapping: JiraMapping
) -> None:
    jira_sim.sim.duplicate_field("Scheduled Completion Date")
    raw = mapping.model_dump(mode="json")
    raw["fields"]["scheduled_completion_date"] = "customfield_10042"
    c = _connector(jira_sim, raw)
    try:
        rec = c.create(new_stamp(), {"title": "x", "scheduled_completion_date": "2027-03-31"})
        assert rec.record.fields["scheduled_completion_date"] == "2027-03-31"
        stored = jira_sim.sim.issues[rec.record.remote_id]["fields"]["customfield_10042"]
        assert stored == "2027-03-31"
    finally:
        c.close()
