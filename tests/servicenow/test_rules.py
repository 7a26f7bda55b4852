"""What refuses a write on a real GRC instance (the issue form's state rules, business rules,
ACLs) and row ACLs that shorten pages: the simulator answers as an instance does, and the
connector tells the causes apart, writes the other fields and pages to the real end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.errors import RemoteAuthError
from poam_sync.simulators.servicenow import RunningServiceNow
from poam_sync.testing import new_stamp

from .conftest import FIELDS, TABLE

Make = Callable[..., ServiceNowConnector]


def _patch(
    sn: RunningServiceNow, http: requests.Session, sys_id: str, **values: str
) -> dict[str, Any]:
    """The answer's body, and its HTTP status under ``http``."""
    answer = http.patch(f"{sn.url}/api/now/table/{TABLE}/{sys_id}", json=values)
    return {**answer.json(), "http": answer.status_code}


# -- the simulator ----------------------------------------------------------------------------


def test_analyze_needs_an_issue_manager_as_a_data_policy_says(
    sn: RunningServiceNow, http: requests.Session
) -> None:
    row = sn.sim.human_create(TABLE, {"short_description": "x"})
    refused = _patch(sn, http, row["sys_id"], state="2")
    assert refused["http"] == 403
    assert refused["error"] == {
        "message": "Operation Failed",
        "detail": "Data Policy Exception: \n The following fields are mandatory: Issue manager",
    }
    dave = sn.sim.user_id("dave@example.com")
    assert _patch(sn, http, row["sys_id"], state="2", issue_manager=dave)["http"] == 200


def test_respond_needs_assignee_manager_and_due_date_as_a_business_rule_says(
    sn: RunningServiceNow, http: requests.Session
) -> None:
    sn.sim.grc_state_rules = "business_rule"
    row = sn.sim.human_create(TABLE, {"short_description": "x"})
    refused = _patch(sn, http, row["sys_id"], state="3")
    assert refused["http"] == 403
    message = refused["error"]["message"]
    assert message.startswith(
        "Assigned to and Issue manager and Due date must be filled in to move the issue to Respond"
    )
    assert "aborted by Business Rule 'Validate issue state transition^" in message
    # a record already in Respond may be edited: only entering the state is checked
    sn.sim.grc_state_rules = "off"
    assert _patch(sn, http, row["sys_id"], state="3")["http"] == 200
    sn.sim.grc_state_rules = "business_rule"
    assert _patch(sn, http, row["sys_id"], short_description="y")["http"] == 200


def test_acls_refuse_with_their_own_bodies(sn: RunningServiceNow, http: requests.Session) -> None:
    row = sn.sim.human_create(TABLE, {"short_description": "x"})
    sn.sim.deny(TABLE, "update")
    refused = _patch(sn, http, row["sys_id"], short_description="y")
    assert refused["error"]["detail"] == "ACL Exception Update Failed due to security constraints"
    sn.sim.deny(TABLE, "api", kind="api")
    api = http.get(f"{sn.url}/api/now/table/{TABLE}")
    assert api.status_code == 403
    assert api.json()["error"] == {
        "message": "User Not Authorized",
        "detail": "Failed API level ACL Validation",
    }


def test_row_acls_shorten_pages_before_the_end(
    sn: RunningServiceNow, http: requests.Session
) -> None:
    tag = new_stamp().token
    for i in range(6):
        sn.sim.human_create(TABLE, {"short_description": f"{tag} {i}", "u_controls": str(i % 2)})
    sn.sim.hide_rows(TABLE, lambda r: r.get("u_controls") != "0")
    first = http.get(
        f"{sn.url}/api/now/table/{TABLE}",
        params={"sysparm_query": f"short_descriptionSTARTSWITH{tag}", "sysparm_limit": 2},
    )
    assert first.headers["X-Total-Count"] == "6"  # counted before the ACL
    assert len(first.json()["result"]) == 1  # the page held rows 0 and 1; row 0 is hidden
    assert 'rel="next"' in first.headers["Link"]


# -- the connector ----------------------------------------------------------------------------


def test_a_state_the_issue_form_refuses_is_blocked_and_the_rest_written(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    result = c.update(rec.remote_id, {"status": "remediating", "title": "OpenSSL 3.0"})
    (problem,) = result.problems
    assert (problem.field, problem.code) == ("status", "transition_blocked")
    assert "'Respond'" in problem.message and "a data policy" in problem.message
    assert "Issue manager" in problem.message
    assert problem.hint is not None and "Issue manager" in problem.hint
    raw = sn.sim.record(TABLE, rec.remote_id)
    assert (raw["short_description"], raw["state"]) == ("OpenSSL 3.0", "1")


def test_a_business_rule_abort_is_named_and_not_taken_for_a_permission_problem(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    sn.sim.abort_by_business_rule(TABLE, "Issue closure needs approval", state_label="Review")
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    (problem,) = c.update(rec.remote_id, {"status": "deviation_requested"}).problems
    assert problem.code == "transition_blocked"
    assert "business rule 'Issue closure needs approval'" in problem.message


def test_an_acl_refusal_is_an_auth_error_with_its_hint(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.deny(TABLE, "update")
    with pytest.raises(RemoteAuthError) as caught:
        c.update(rec.remote_id, {"title": "y"})
    assert caught.value.hint is not None and "ACL" in caught.value.hint


def test_a_pull_goes_past_pages_a_row_acl_shortened(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    tag = new_stamp().token
    made = [
        sn.sim.human_create(TABLE, {"short_description": f"{tag} {i}", "u_controls": f"C-{i % 3}"})
        for i in range(12)
    ]
    sn.sim.hide_rows(TABLE, lambda r: r.get("u_controls") != "C-0")
    c = make_connector(query=f"short_descriptionSTARTSWITH{tag}", page_size=3)
    pulled = {r.remote_id for r in c.pull(None)}
    assert pulled == {m["sys_id"] for m in made if m["u_controls"] != "C-0"}
    assert len(pulled) == 8
