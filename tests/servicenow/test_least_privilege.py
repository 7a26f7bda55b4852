"""A least-privilege integration user: no admin role, so the system tables (sys_choice,
sys_dictionary, sys_journal_field, sys_audit, sys_properties) and sys_user.email are hidden from
it. The connector still syncs, and says what it cannot read."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.errors import RemoteAuthError
from poam_sync.simulators.servicenow import (
    ADMIN_PASSWORD,
    INTEGRATION_USER,
    RunningServiceNow,
)
from poam_sync.testing import new_stamp

from .conftest import FIELDS, TABLE

Make = Callable[..., ServiceNowConnector]


@pytest.fixture(params=["empty", "forbidden"])
def restricted(sn: RunningServiceNow, request: pytest.FixtureRequest) -> Iterator[str]:
    """The instance refusing system tables to non-admins: 200 with no rows, or 403."""
    sn.sim.grc_state_rules = "off"  # the states are what this is about, not their rules
    sn.sim.restrict_non_admins(mode=request.param)
    yield request.param


@pytest.fixture
def integration(make_connector: Make, restricted: str) -> Callable[[], ServiceNowConnector]:
    def make() -> ServiceNowConnector:
        return make_connector(user=INTEGRATION_USER, password=ADMIN_PASSWORD)

    return make


def _as(sn: RunningServiceNow, user: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(sn.ca_path)
    s.auth = (user, ADMIN_PASSWORD)
    return s


# -- the simulator ----------------------------------------------------------------------------


def test_every_user_signs_in_with_its_own_name(sn: RunningServiceNow) -> None:
    for user in ("alice", "dave.analyst", INTEGRATION_USER):
        answer = _as(sn, user).get(f"{sn.url}/api/now/table/{TABLE}", params={"sysparm_limit": 1})
        assert answer.status_code == 200, user
    assert _as(sn, "nobody").get(f"{sn.url}/api/now/table/{TABLE}").status_code == 401


def test_a_system_table_is_hidden_from_a_non_admin_as_the_mode_says(
    sn: RunningServiceNow, restricted: str
) -> None:
    url = f"{sn.url}/api/now/table/sys_choice"
    answer = _as(sn, INTEGRATION_USER).get(url, params={"sysparm_limit": 5})
    if restricted == "empty":  # rows dropped after the query: the count still says they exist
        assert answer.status_code == 200 and answer.json() == {"result": []}
        assert int(answer.headers["X-Total-Count"]) > 5
    else:
        assert answer.status_code == 403
        assert answer.json()["error"]["message"] == "User Not Authorized"
    admin = _as(sn, "admin").get(url, params={"sysparm_limit": 5})
    assert len(admin.json()["result"]) == 5


def test_a_field_acl_hides_e_mails_from_a_non_admin(sn: RunningServiceNow, restricted: str) -> None:
    alice = sn.sim.user_id("alice@example.com")
    row = sn.sim.human_create(TABLE, {"short_description": "x", "assigned_to": alice})
    url = f"{sn.url}/api/now/table/{TABLE}/{row['sys_id']}"
    params = {"sysparm_fields": "assigned_to,assigned_to.email", "sysparm_display_value": "all"}
    seen = _as(sn, INTEGRATION_USER).get(url, params=params).json()["result"]
    assert seen["assigned_to.email"] == {"display_value": "", "value": ""}
    assert seen["assigned_to"]["display_value"] == "Alice Adams"  # the record stays readable
    admin = _as(sn, "admin").get(url, params=params).json()["result"]
    assert admin["assigned_to.email"]["value"] == "alice@example.com"


# -- the connector ----------------------------------------------------------------------------


def test_the_connector_starts_and_says_what_it_cannot_read(
    integration: Callable[[], ServiceNowConnector], sn: RunningServiceNow
) -> None:
    # (an empty table hidden by "empty" reads as readable: nothing is lost there)
    row = sn.sim.human_create(TABLE, {"short_description": "x"})
    sn.sim.human_work_note(TABLE, row["sys_id"], "a note")
    facts = integration().check()
    assert facts["cannot_read"] == (
        "sys_choice, sys_dictionary, sys_properties, sys_journal_field, sys_audit"
    )
    assert facts["time_zone"] == "UTC (unknown (UTC))"  # glide.sys.default.tz is unreadable


def test_without_sys_choice_the_uncovered_values_cannot_be_listed(
    integration: Callable[[], ServiceNowConnector],
) -> None:
    with pytest.raises(RemoteAuthError, match="may not read sys_choice"):
        integration().uncovered()


def test_states_and_priorities_are_written_by_label_and_their_codes_learnt(
    integration: Callable[[], ServiceNowConnector], sn: RunningServiceNow
) -> None:
    c = integration()
    rec = c.create(new_stamp(), FIELDS).record
    raw = sn.sim.record(TABLE, rec.remote_id)
    assert (raw["state"], raw["priority"]) == ("1", "2")  # New, 2 - High
    assert (rec.fields["status"], rec.fields["original_risk"]) == ("open", "high")
    done = c.update(rec.remote_id, {"status": "completed", "original_risk": "low"}).record
    assert (sn.sim.record(TABLE, rec.remote_id)["state"], done.fields["status"]) == (
        "5",
        "completed",
    )
    assert done.fields["original_risk"] == "low"
    assert done.problems == ()
    # learnt: the next write sends the code itself, in one PATCH
    patches = f"PATCH /api/now/table/{TABLE}/{{id}}"
    before = sn.sim.control.calls[patches]
    c.update(rec.remote_id, {"status": "open"})
    assert sn.sim.record(TABLE, rec.remote_id)["state"] == "1"
    assert sn.sim.control.calls[patches] - before == 1


def test_a_long_title_is_cut_at_the_stock_length_and_reported(
    integration: Callable[[], ServiceNowConnector], sn: RunningServiceNow
) -> None:
    c = integration()
    c.prepare()
    title = "T" * 204
    result = c.create(new_stamp(), {**FIELDS, "title": title})
    assert [p.code for p in result.problems] == ["too_long"]
    assert c.project("title", title) == "T" * 160 == result.record.fields["title"]


def test_an_owner_whose_e_mail_is_hidden_stays_and_is_reported(
    integration: Callable[[], ServiceNowConnector], sn: RunningServiceNow
) -> None:
    rec = integration().create(new_stamp(), FIELDS).record
    assert sn.sim.record(TABLE, rec.remote_id)["assigned_to"] == sn.sim.user_id("alice@example.com")
    got = integration().get(rec.remote_id)  # a new process: it never learnt alice's sys_id
    assert "owner" not in got.fields
    (problem,) = got.problems
    assert (problem.field, problem.code) == ("owner", "unknown_user")
    assert "Alice Adams" in problem.message


def test_a_known_owner_comes_with_the_name_the_instance_shows(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    rec = make_connector().create(new_stamp(), FIELDS).record
    assert rec.people == {"alice@example.com": "Alice Adams"}


def test_work_notes_are_written_though_the_journal_is_unreadable(
    integration: Callable[[], ServiceNowConnector], sn: RunningServiceNow
) -> None:
    from poam_sync.model import Note

    c = integration()
    rec = c.create(new_stamp(), FIELDS).record
    note = Note(body="patched")
    c.add_note(rec.remote_id, note)
    (entry,) = sn.sim.journal(TABLE, rec.remote_id)
    assert "patched" in entry["value"]
    assert c.get(rec.remote_id).notes == ()


def test_milestones_are_synced_by_their_state_labels(
    integration: Callable[[], ServiceNowConnector], sn: RunningServiceNow
) -> None:
    ms = [
        {"id": "1", "description": "Patch", "due_date": "2027-01-10", "status": "completed"},
        {"id": "2", "description": "Verify", "due_date": None, "status": "open"},
    ]
    c = integration()
    rec = c.create(new_stamp(), {**FIELDS, "milestones": ms}).record
    children = sn.sim.records("sn_irm_cont_auth_milestone_task", f"parent={rec.remote_id}")
    assert sorted((r["correlation_id"], r["state"]) for r in children) == [("1", "3"), ("2", "1")]
    assert c.get(rec.remote_id).fields["milestones"] == ms
