"""Ordinary data of a real GRC instance: values no mapping lists are reported, never read as
empty; metadata comes through ``task``; e-mails match in any case; long titles stay whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from poam_sync.connectors.base import FieldProblem, RemoteRecord
from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping
from poam_sync.simulators.servicenow import SERVICE_ACCOUNT_USER, RunningServiceNow
from poam_sync.testing import new_stamp

Make = Callable[..., ServiceNowConnector]
TABLE = "sn_grc_issue"

FIELDS = {
    "title": "Outdated OpenSSL",
    "description": "web-01",
    "status": "remediating",
    "owner": "alice@example.com",
    "due_date": "2027-03-03",
    "original_risk": "high",
    "controls": ["SI-2"],
}


def _problem(record: RemoteRecord, field: str) -> FieldProblem:
    (problem,) = [p for p in record.problems if p.field == field]
    return problem


def _with(mapping: ServiceNowMapping, **sections: object) -> ServiceNowMapping:
    return ServiceNowMapping.model_validate({**mapping.model_dump(mode="json"), **sections})


@pytest.fixture
def deferred(sn: RunningServiceNow) -> Iterator[str]:
    """A state the instance added ("Deferred"), as sites do; removed after the test."""
    row = sn.sim.human_create(
        "sys_choice",
        {"name": TABLE, "element": "state", "value": "17", "label": "Deferred", "sequence": "900"},
    )
    yield row["value"]
    sn.sim.delete("sys_choice", row["sys_id"])


# -- priorities ------------------------------------------------------------------------------


def test_a_priority_the_mapping_does_not_list_keeps_the_risk_and_is_reported(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"priority": "5 - Planning"})
    got = c.get(rec.remote_id)
    assert "original_risk" not in got.fields  # kept, not erased: the planner sees no move
    assert got.fields["title"] == "Outdated OpenSSL"  # the rest reads as ever
    p = _problem(got, "original_risk")
    assert p.code == "unknown_value"
    assert "'5 - Planning'" in p.message and "sn_grc_issue.priority" in p.message
    assert p.hint is not None and "`5 - Planning: <risk>` under risk_read_back:" in p.hint


def test_a_read_back_line_covers_the_priority(
    make_connector: Make, sn: RunningServiceNow, sn_mapping: ServiceNowMapping
) -> None:
    c = make_connector(mapping=_with(sn_mapping, risk_read_back={"5 - Planning": "low"}))
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"priority": "5 - Planning"})
    got = c.get(rec.remote_id)
    assert got.fields["original_risk"] == "low" and got.problems == ()
    c.prepare()
    assert c.project("original_risk", "low") == "low"  # writes 4 - Low, as before


def test_only_a_truly_empty_priority_reads_as_no_risk(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"priority": ""})
    got = c.get(rec.remote_id)
    assert got.fields["original_risk"] is None and got.problems == ()


# -- states ----------------------------------------------------------------------------------


def test_every_stock_grc_state_reads_as_a_status(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    # an analyst names the issue manager first: Analyze and Respond need one (issue-form.md)
    sn.sim.human_update(TABLE, rec.remote_id, {"issue_manager": sn.sim.user_id("dave@example.com")})
    read = {}
    for label in ("New", "Analyze", "Respond", "Review", "Closed Complete", "Closed Incomplete"):
        sn.sim.human_update(TABLE, rec.remote_id, {"state": label})
        got = c.get(rec.remote_id)
        assert got.problems == ()
        read[label] = got.fields["status"]
    assert read["Closed Complete"] == "completed"
    assert read["Closed Incomplete"] == "false_positive"


def test_a_state_the_site_added_keeps_the_status_and_is_reported(
    make_connector: Make, sn: RunningServiceNow, deferred: str
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"state": deferred})
    got = c.get(rec.remote_id)
    assert "status" not in got.fields
    p = _problem(got, "status")
    assert p.code == "unknown_value" and "'Deferred' (value '17')" in p.message
    assert p.hint is not None and "`Deferred: <status>` under state_read_back:" in p.hint


def test_a_read_only_state_line_says_what_the_added_state_means(
    make_connector: Make, sn: RunningServiceNow, sn_mapping: ServiceNowMapping, deferred: str
) -> None:
    read_back = {**sn_mapping.state_read_back, "Deferred": "risk_accepted"}
    c = make_connector(mapping=_with(sn_mapping, state_read_back=read_back))
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"state": deferred})
    assert c.get(rec.remote_id).fields["status"] == "risk_accepted"
    c.prepare()
    assert c.project("status", "risk_accepted") == "deviation_requested"  # writes Review


def test_a_state_code_without_a_choice_is_reported_too(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"state": "42"})  # kept as typed
    got = c.get(rec.remote_id)
    assert "status" not in got.fields and "'42'" in _problem(got, "status").message


# -- users -----------------------------------------------------------------------------------


def _service_account(sn: RunningServiceNow) -> str:
    (row,) = sn.sim.records("sys_user", f"user_name={SERVICE_ACCOUNT_USER}")
    return row["sys_id"]


def test_an_assignee_without_an_e_mail_stays_the_owner_and_is_reported(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"assigned_to": _service_account(sn)})
    got = c.get(rec.remote_id)
    assert "owner" not in got.fields  # not None: Jira is not unassigned
    p = _problem(got, "owner")
    assert p.code == "unknown_user"
    assert "Vulnerability Scanner (service account)" in p.message
    assert p.hint is not None and "sys_user.email" in p.hint
    # the same through a pull (the e-mail dot-walked in the page, then the directory)
    (pulled,) = [r for r in c.pull(None) if r.remote_id == rec.remote_id]
    assert "owner" not in pulled.fields and _problem(pulled, "owner").code == "unknown_user"


def test_an_unassigned_record_has_no_owner(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"assigned_to": ""})
    got = c.get(rec.remote_id)
    assert got.fields["owner"] is None and got.problems == ()


def test_an_e_mail_matches_whatever_its_case(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), {**FIELDS, "owner": "erin.evans@example.com"}).record
    raw = sn.sim.record(TABLE, rec.remote_id)
    assert raw["assigned_to"] == sn.sim.user_id("Erin.Evans@Example.com")
    assert rec.fields["owner"] == "erin.evans@example.com"
    assert c.get(rec.remote_id).fields["owner"] == "erin.evans@example.com"
    c.prepare()
    assert c.project("owner", "Erin.Evans@Example.com") == "erin.evans@example.com"


# -- lengths through task --------------------------------------------------------------------


def test_a_title_longer_than_the_column_is_reported_and_stays_whole_in_the_projection(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    title = "Weak TLS " + "x" * 195  # 204 characters; task.short_description holds 160
    result = c.create(new_stamp(), {**FIELDS, "title": title})
    assert sn.sim.record(TABLE, result.record.remote_id)["short_description"] == title[:160]
    # reading the 160 characters back is no problem: they are what was meant to survive
    assert result.record.problems == ()
    (too_long,) = [p for p in result.problems if p.field == "title"]
    assert too_long.code == "too_long" and "204 characters" in too_long.message
    assert "160" in too_long.message
    # the echo equals the projection: the planner sees no change, the canonical title is kept
    assert c.project("title", title) == c.get(result.record.remote_id).fields["title"]
    again = c.update(result.record.remote_id, {"title": title})
    assert [p.code for p in again.problems] == ["too_long"]


def test_metadata_is_read_through_the_table_the_issue_extends(make_connector: Make) -> None:
    c = make_connector()
    c.prepare()
    meta = c._metadata()
    assert meta.lengths["short_description"] == 160  # only under name=task
    assert meta.sources[f"{TABLE}.priority"] == "task"  # task's choices, no override
    assert meta.sources[f"{TABLE}.state"] == TABLE  # the GRC states override task's
    assert "5 - Planning" in meta.codes[f"{TABLE}.priority"]
    assert "Pending" not in meta.codes[f"{TABLE}.state"]


# -- what the mapping does not cover ----------------------------------------------------------


def test_a_stock_instance_leaves_only_planning_uncovered_on_purpose(make_connector: Make) -> None:
    (planning,) = make_connector().uncovered()
    assert (planning.what, planning.value, planning.deliberate) == (
        "priority",
        "5 - Planning",
        True,
    )
    assert "add `5 - Planning: <risk>` under risk_read_back:" in planning.hint
    assert "audited" in planning.hint


def test_a_state_the_site_added_is_uncovered_until_a_line_reads_it(
    make_connector: Make, sn_mapping: ServiceNowMapping, deferred: str
) -> None:
    found = {(u.what, u.value, u.deliberate) for u in make_connector().uncovered()}
    assert found == {("state", "Deferred", False), ("priority", "5 - Planning", True)}
    covered = _with(
        sn_mapping,
        state_read_back={**sn_mapping.state_read_back, "Deferred": "risk_accepted"},
        risk_read_back={"5 - Planning": "low"},
    )
    assert make_connector(mapping=covered).uncovered() == []
