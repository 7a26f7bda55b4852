"""A real site's data: values the mapping does not know, and workflows with side statuses.

An unknown remote value is never read as empty: the field is left out of the record and
reported with the mapping line that would cover it. Status changes never pass through a
done-category status unless it is the target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from poam_sync.connectors.base import RemoteRecord
from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.simulators.jira import RunningJira
from poam_sync.testing import new_stamp
from tests.jira.conftest import FAST_RETRY, settings_for

Make = Callable[..., JiraConnector]


@pytest.fixture
def make(jira_sim: RunningJira, mapping: JiraMapping) -> Iterator[Make]:
    made: list[JiraConnector] = []

    def build(**over: object) -> JiraConnector:
        raw = mapping.model_dump(mode="json")
        if "milestones" in over:
            over["milestones"] = raw["milestones"] | dict(over["milestones"])  # type: ignore[call-overload]
        c = JiraConnector(
            settings_for(jira_sim), JiraMapping.model_validate(raw | over), retry=FAST_RETRY
        )
        made.append(c)
        return c

    yield build
    for c in made:
        c.close()


def _created(c: JiraConnector, **fields: object) -> RemoteRecord:
    values = {"title": "Outdated OpenSSL", "status": "open", "original_risk": "high"} | fields
    return c.create(new_stamp(), values).record  # type: ignore[arg-type]


def _problems(record: RemoteRecord) -> list[tuple[str, str]]:
    return [(p.field, p.code) for p in record.problems]


def _statuses_passed(jira_sim: RunningJira, key: str) -> list[str]:
    """The status of each status change in the issue's history, oldest first."""
    histories = reversed(jira_sim.sim.issue(key)["changelog"]["histories"])
    return [i["toString"] for h in histories for i in h["items"] if i["field"] == "status"]


# -- unknown values are never read as empty -------------------------------------------------


@pytest.mark.parametrize("status", ["Blocked", "Backlog", "On Hold", "Closed"])
def test_a_status_the_mapping_does_not_know_is_left_out_and_reported(
    jira_sim: RunningJira, connector: JiraConnector, status: str
) -> None:
    rec = _created(connector)
    jira_sim.sim.human_transition(rec.key, status, resolution="Won't Do")
    got = connector.get(rec.remote_id)
    assert "status" not in got.fields
    assert _problems(got) == [("status", "unknown_value")]
    problem = got.problems[0]
    assert repr(status) in problem.message
    assert problem.hint is not None
    assert problem.hint.startswith(f"add `{status}: <one of open, ")
    assert "under read_statuses: in mappings/jira.yaml" in problem.hint
    assert got.fields["title"] == "Outdated OpenSSL"  # the rest of the record reads as usual


def test_the_same_record_comes_from_a_pull(jira_sim: RunningJira, connector: JiraConnector) -> None:
    rec = _created(connector)
    jira_sim.sim.human_transition(rec.key, "Blocked")
    pulled = {r.key: r for r in connector.pull(None)}
    assert "status" not in pulled[rec.key].fields
    assert _problems(pulled[rec.key]) == [("status", "unknown_value")]


def test_a_resolution_that_leaves_the_status_ambiguous_is_reported(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = _created(connector)
    jira_sim.sim.human_transition(rec.key, "Done", resolution="Duplicate")
    got = connector.get(rec.remote_id)
    assert "status" not in got.fields
    assert "'Done' with resolution 'Duplicate'" in got.problems[0].message
    assert "add `Done / Duplicate: <one of" in (got.problems[0].hint or "")


def test_a_read_status_line_covers_the_site_s_status(jira_sim: RunningJira, make: Make) -> None:
    c = make(read_statuses={"Blocked": "investigating", "Done / Duplicate": "false_positive"})
    rec = _created(c)
    jira_sim.sim.human_transition(rec.key, "Blocked")
    got = c.get(rec.remote_id)
    assert (got.fields["status"], got.problems) == ("investigating", ())
    jira_sim.sim.human_transition(rec.key, "Done", resolution="Duplicate")
    assert c.get(rec.remote_id).fields["status"] == "false_positive"


def test_a_priority_the_mapping_does_not_know_keeps_the_risk(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = _created(connector)
    jira_sim.sim.human_edit(rec.key, "priority", {"name": "Lowest"})
    got = connector.get(rec.remote_id)
    assert "original_risk" not in got.fields
    assert _problems(got) == [("original_risk", "unknown_value")]
    assert "'Lowest'" in got.problems[0].message
    assert "add `Lowest: <one of " in (got.problems[0].hint or "")
    assert "under read_priorities:" in (got.problems[0].hint or "")


def test_a_data_center_scheme_s_priority_is_unknown_until_mapped(
    dc_sim: RunningJira, mapping: JiraMapping
) -> None:
    raw = mapping.model_dump(mode="json")
    plain = JiraConnector(settings_for(dc_sim), mapping, retry=FAST_RETRY)
    covered = JiraConnector(
        settings_for(dc_sim),
        JiraMapping.model_validate(raw | {"read_priorities": {"Major": "moderate"}}),
        retry=FAST_RETRY,
    )
    try:
        rec = _created(plain)
        dc_sim.sim.human_edit(rec.key, "priority", {"name": "Major"})
        assert _problems(plain.get(rec.remote_id)) == [("original_risk", "unknown_value")]
        assert covered.get(rec.remote_id).fields["original_risk"] == "moderate"
    finally:
        plain.close()
        covered.close()


def test_an_assignee_nobody_can_name_by_e_mail_is_reported_not_invented(
    cloud_sim: RunningJira, mapping: JiraMapping
) -> None:
    # carol hides her e-mail on Cloud; without her users: line nobody can tell who she is
    c = JiraConnector(
        settings_for(cloud_sim),
        JiraMapping.model_validate(mapping.model_dump(mode="json") | {"users": []}),
        retry=FAST_RETRY,
    )
    try:
        rec = _created(c, owner="alice@example.com")
        cloud_sim.sim.human_assign(rec.key, "carol@example.com")
        got = c.get(rec.remote_id)
        assert "owner" not in got.fields
        assert _problems(got) == [("owner", "unknown_user")]
        assert "Carol Engineer" in got.problems[0].message
        assert got.problems[0].hint == (
            "add `{email: <their e-mail>, account_id: 5f0c1a2b3c4d5e6f70000004}` under "
            "users: in mappings/jira.yaml"
        )
    finally:
        c.close()


def test_a_hidden_e_mail_the_users_directory_knows_reads_as_that_owner(
    cloud_sim: RunningJira, mapping: JiraMapping
) -> None:
    c = JiraConnector(settings_for(cloud_sim), mapping, retry=FAST_RETRY)
    try:
        rec = _created(c, owner="alice@example.com")
        cloud_sim.sim.human_assign(rec.key, "carol@example.com")
        got = c.get(rec.remote_id)
        assert (got.fields["owner"], got.problems) == ("carol@example.com", ())
    finally:
        c.close()


def test_a_sub_task_status_the_mapping_does_not_know_keeps_the_milestones(
    jira_sim: RunningJira, connector: JiraConnector, make: Make
) -> None:
    milestone = {"id": "1", "description": "Patch", "due_date": None, "status": "open"}
    rec = _created(connector, milestones=[milestone])
    sub = jira_sim.sim.issue(rec.key)["fields"]["subtasks"][0]["key"]
    jira_sim.sim.human_transition(sub, "Blocked")
    got = connector.get(rec.remote_id)
    assert "milestones" not in got.fields
    assert _problems(got) == [("milestones", "unknown_value")]
    assert "under milestones.read_statuses:" in (got.problems[0].hint or "")
    covered = make(milestones={"read_statuses": {"Blocked": "in_progress"}})
    assert covered.get(rec.remote_id).fields["milestones"] == [
        milestone | {"status": "in_progress"}
    ]


# -- transitions never pass through a done-category status ----------------------------------


def test_walking_back_from_a_blocked_target_avoids_done(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    """The issue's case: In Review -> Done -> To Do was the shortest way back."""
    jira_sim.sim.require_field("Accept risk", "customfield_10044")
    rec = _created(connector)
    result = connector.update(rec.remote_id, {"status": "risk_accepted"})
    assert [(p.field, p.code) for p in result.problems] == [("status", "transition_blocked")]
    assert result.record.fields["status"] == "open"
    passed = _statuses_passed(jira_sim, rec.key)
    assert passed == ["In Progress", "In Review", "In Progress", "To Do"]
    assert "Done" not in passed


def test_a_blocked_change_is_not_walked_again_on_the_next_cycle(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    jira_sim.sim.add_validator("Approve", "Only the ISSO may approve.")
    rec = _created(connector)
    first = connector.update(rec.remote_id, {"status": "completed"})
    assert "Only the ISSO may approve." in first.problems[0].message
    walked = len(_statuses_passed(jira_sim, rec.key))
    again = connector.update(rec.remote_id, {"status": "completed"})
    assert [p.code for p in again.problems] == ["transition_blocked"]
    assert "Only the ISSO may approve." in again.problems[0].message
    assert len(_statuses_passed(jira_sim, rec.key)) == walked  # no second walk


def test_when_every_path_passes_through_done_the_issue_stays_and_it_is_said(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    jira_sim.sim.remove_transition("Stop work")  # In Progress -> To Do now goes through done
    rec = _created(connector, status="remediating")
    before = _statuses_passed(jira_sim, rec.key)
    result = connector.update(rec.remote_id, {"status": "open"})
    assert [p.code for p in result.problems] == ["transition_blocked"]
    assert "passes through the done-category status" in result.problems[0].message
    assert result.record.fields["status"] == "remediating"
    assert _statuses_passed(jira_sim, rec.key) == before  # it never moved


def test_a_done_status_that_is_the_target_is_reached(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = _created(connector)
    result = connector.update(rec.remote_id, {"status": "completed"})
    assert result.problems == ()
    assert _statuses_passed(jira_sim, rec.key) == ["In Progress", "In Review", "Done"]


# -- summaries --------------------------------------------------------------------------------


def test_line_breaks_in_a_title_fold_to_spaces_in_the_summary(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = _created(connector, title="Outdated\r\nOpenSSL\ron web-01\n")
    assert jira_sim.sim.issue(rec.key)["fields"]["summary"] == "Outdated OpenSSL on web-01"
    assert rec.fields["title"] == connector.project("title", "Outdated\r\nOpenSSL\ron web-01\n")
    updated = connector.update(rec.remote_id, {"title": "Two\nlines"})
    assert (updated.problems, updated.record.fields["title"]) == ((), "Two lines")


# -- Jira's limits ----------------------------------------------------------------------------


def test_a_description_over_jira_s_limit_is_reported_and_the_rest_written(
    connector: JiraConnector,
) -> None:
    too_long = "x" * 32_768
    created = connector.create(new_stamp(), {"title": "Long", "description": too_long})
    assert [(p.field, p.code) for p in created.problems] == [("description", "rejected")]
    assert "32,767" in created.problems[0].message
    assert created.record.fields["title"] == "Long"
    updated = connector.update(
        created.record.remote_id, {"description": too_long, "title": "Still written"}
    )
    assert [(p.field, p.code) for p in updated.problems] == [("description", "rejected")]
    assert updated.record.fields["title"] == "Still written"


def test_a_control_id_over_jira_s_label_limit_is_reported(connector: JiraConnector) -> None:
    rec = _created(connector, controls=["AC-2"])
    result = connector.update(rec.remote_id, {"controls": ["AC-2", "X" * 256], "title": "T"})
    assert [(p.field, p.code) for p in result.problems] == [("controls", "rejected")]
    assert "255 characters" in result.problems[0].message
    assert (result.record.fields["controls"], result.record.fields["title"]) == (["AC-2"], "T")
