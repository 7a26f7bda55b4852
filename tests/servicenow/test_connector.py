"""ServiceNow connector behaviour beyond the shared contract (users' pains 1, 4, 5, 8, 9)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.servicenow.connector import NotPreparedError, ServiceNowConnector
from poam_sync.connectors.servicenow.mapping import (
    ServiceNowMapping,
    load_servicenow_mapping,
    parse_servicenow_mapping,
)
from poam_sync.connectors.servicenow.records import watermark_query
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.errors import ConfigError, RemoteAuthError, RemoteTransientError
from poam_sync.model import Note
from poam_sync.simulators.servicenow import (
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    RunningServiceNow,
)
from poam_sync.testing import new_stamp

from .conftest import FIELDS, MAPPING_PATH, TABLE

Make = Callable[..., ServiceNowConnector]


def _stamped(sn: RunningServiceNow, token: str) -> list[dict[str, str]]:
    return sn.sim.records(TABLE, f"correlation_id={token}")


# -- settings and mapping ----------------------------------------------------------------------


def test_settings_refuse_http_and_mixed_or_missing_credentials() -> None:
    with pytest.raises(ValidationError, match="https"):
        ServiceNowSettings(url="http://example.service-now.com", user="u", password="p")
    with pytest.raises(ValidationError, match="not both"):
        ServiceNowSettings(
            url="https://x", user="u", password="p", client_id="c", client_secret="s"
        )
    with pytest.raises(ValidationError, match="no credentials"):
        ServiceNowSettings(url="https://x")
    s = ServiceNowSettings(url="https://x.service-now.com/", user="u", password="hunter2")
    assert s.url == "https://x.service-now.com"
    assert "hunter2" not in repr(s)  # the password is a SecretStr


def test_the_shipped_mapping_loads() -> None:
    m = load_servicenow_mapping(MAPPING_PATH)
    assert m.fields["title"] == "short_description"
    assert m.project("status", "risk_accepted") == "deviation_requested"
    assert m.project("status", "not_applicable") == "false_positive"
    assert m.project("status", "archived") == "completed"
    assert set(m.states.values()) == {
        "New", "Analyze", "Respond", "Review", "Closed Complete", "Closed Incomplete"
    }  # fmt: skip
    assert m.project("controls", ["ac-2.1", "SI-2", "AC-2(1)"]) == ["AC-2(1)", "SI-2"]
    assert m.project("title", "x" * 200, {"short_description": 160}) == "x" * 160


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"states": {"completed": "Closed"}},
            "[servicenow.yaml] states <- no state label for open",
        ),
        ({"states": {"done": "Closed"}}, "[servicenow.yaml] states.done.[key] <- input should be"),
        ({"fields": {"title": "short_description", "colour": "u_colour"}}, "fields <- colour"),
        (
            {"state_read_back": {"Closed Complete": "open"}},
            "state_read_back.Closed Complete: open is not mapped",
        ),
        (
            {"risk_read_back": {"4 - Low": "high"}},
            "risk_read_back.4 - Low: high is not mapped",
        ),
    ],
)
def test_mapping_errors_say_where_and_what(change: dict[str, object], message: str) -> None:
    import yaml

    data = yaml.safe_load(MAPPING_PATH.read_text())
    data.update(change)
    with pytest.raises(ConfigError) as info:
        parse_servicenow_mapping(data, source="servicenow.yaml")
    assert message in str(info.value)


def test_a_shared_label_needs_a_read_back() -> None:
    import yaml

    data = yaml.safe_load(MAPPING_PATH.read_text())
    del data["state_read_back"]["Review"]
    with pytest.raises(ConfigError, match=r"Review <- one of deviation_requested, risk_accepted"):
        parse_servicenow_mapping(data, source="m.yaml")


def test_a_label_the_instance_lacks_is_a_config_error(make_connector: Make) -> None:
    mapping = load_servicenow_mapping(MAPPING_PATH)
    states = {**mapping.states}
    states[next(iter(states))] = "Nouveau"
    bad = ServiceNowMapping.model_validate({**mapping.model_dump(), "states": states})
    c = make_connector(mapping=bad)
    with pytest.raises(ConfigError, match=r"states.open <- 'Nouveau' is not a choice"):
        c.check()


def test_missing_mapping_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_servicenow_mapping(tmp_path / "nope.yaml")


# -- auth and check -------------------------------------------------------------------------------


def test_check_reports_facts_without_secrets(make_connector: Make) -> None:
    facts = make_connector().check()
    assert facts["table"] == TABLE
    assert facts["auth"] == "basic (admin)"
    assert "New=1" in facts["state_choices"]
    assert "sim-password" not in str(facts)


def test_oauth_client_credentials(make_connector: Make, sn: RunningServiceNow) -> None:
    sn.sim.enable_client_credentials()
    c = make_connector(
        user=None, password=None, client_id=OAUTH_CLIENT_ID, client_secret=OAUTH_CLIENT_SECRET
    )
    assert c.check()["auth"] == f"OAuth client credentials (client {OAUTH_CLIENT_ID})"
    rec = c.create(new_stamp(), FIELDS).record
    assert sn.sim.record(TABLE, rec.remote_id)["sys_created_by"] == "admin"


def test_client_credentials_on_an_instance_that_has_not_enabled_them_are_an_auth_error(
    make_connector: Make,
) -> None:
    c = make_connector(
        user=None, password=None, client_id=OAUTH_CLIENT_ID, client_secret=OAUTH_CLIENT_SECRET
    )
    with pytest.raises(RemoteAuthError, match="refused OAuth client") as caught:
        c.check()
    assert caught.value.hint is not None and "OAuth application" in caught.value.hint


def test_wrong_credentials_are_an_auth_error(make_connector: Make) -> None:
    with pytest.raises(RemoteAuthError, match="401"):
        make_connector(password="wrong").check()
    with pytest.raises(RemoteAuthError):
        make_connector(
            user=None, password=None, client_id=OAUTH_CLIENT_ID, client_secret="wrong"
        ).check()


# -- creating without duplicates --------------------------------------------------------------


def test_a_create_whose_answer_was_lost_is_not_repeated(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    stamp = new_stamp()
    sn.sim.lose_next_answers(1, methods=["POST"])
    result = c.create(stamp, FIELDS)
    rows = _stamped(sn, stamp.token)
    assert [r["sys_id"] for r in rows] == [result.record.remote_id]
    assert result.record.stamp == stamp


def test_a_create_refused_with_503_is_made_once(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    stamp = new_stamp()
    sn.sim.control.add_fault(503, count=1)
    c.create(stamp, FIELDS)
    assert len(_stamped(sn, stamp.token)) == 1


def test_create_many_uses_one_batch_request(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector()
    c.check()
    c.create(new_stamp(), FIELDS)  # warms the user directory cache
    sn.sim.control.reset()
    stamps = [new_stamp() for _ in range(7)]
    results = c.create_many([(s, {**FIELDS, "milestones": []}) for s in stamps])
    assert all(not isinstance(r, Exception) for r in results)
    calls = dict(sn.sim.control.calls)
    assert calls.pop("POST /api/now/v1/batch") == 1
    assert calls == {}  # nothing else: a new record has no milestones to read
    for s in stamps:
        assert len(_stamped(sn, s.token)) == 1


MILESTONE_TABLE = "sn_irm_cont_auth_milestone_task"


def _two_milestones(n: int) -> list[dict[str, object]]:
    return [
        {"id": str(k), "description": f"Step {k} of {n}", "due_date": None, "status": "open"}
        for k in (1, 2)
    ]


def test_milestones_of_new_records_share_batch_requests_across_parents(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    c.create(new_stamp(), FIELDS)  # warms the user directory cache
    sn.sim.control.reset()
    stamps = [new_stamp() for _ in range(30)]
    results = c.create_many(
        [(s, {**FIELDS, "milestones": _two_milestones(n)}) for n, s in enumerate(stamps)]
    )
    assert all(not isinstance(r, Exception) for r in results)
    calls = dict(sn.sim.control.calls)
    assert calls.pop("POST /api/now/v1/batch") == 3  # 30 records; 60 children: 50 + 10
    assert calls == {}  # nothing read: new records have no children yet
    for n, r in enumerate(results):
        assert not isinstance(r, Exception)
        children = sn.sim.records(MILESTONE_TABLE, f"parent={r.record.remote_id}")
        assert sorted(ch["short_description"] for ch in children) == [
            f"Step 1 of {n}",
            f"Step 2 of {n}",
        ]
        assert [m["id"] for m in r.record.fields["milestones"]] == ["1", "2"]


def test_a_children_batch_whose_answer_is_lost_is_read_before_anything_is_inserted(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    c.create(new_stamp(), FIELDS)

    def after(endpoint: str, number: int) -> None:
        if endpoint == "POST /api/now/v1/batch" and number == 1:  # the records went through
            sn.sim.lose_next_answers(1, methods=["POST"])  # the children's batch: done, unheard

    sn.sim.control.reset()
    sn.sim.control.after_call = after
    stamps = [new_stamp() for _ in range(3)]
    results = c.create_many(
        [(s, {**FIELDS, "milestones": _two_milestones(n)}) for n, s in enumerate(stamps)]
    )
    sn.sim.control.after_call = None
    assert all(not isinstance(r, Exception) for r in results)
    for r in results:
        assert not isinstance(r, Exception)
        children = sn.sim.records(MILESTONE_TABLE, f"parent={r.record.remote_id}")
        assert len(children) == 2  # inserted once, found again by reading the parent's children


def test_create_many_survives_a_failed_batch_without_duplicates(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.check()
    stamps = [new_stamp() for _ in range(3)]
    sn.sim.lose_next_answers(1, methods=["POST"])  # the batch is applied, its answer lost
    results = c.create_many([(s, FIELDS) for s in stamps])
    assert all(not isinstance(r, Exception) for r in results)
    for s, r in zip(stamps, results, strict=True):
        rows = _stamped(sn, s.token)
        assert len(rows) == 1
        assert not isinstance(r, Exception) and r.record.remote_id == rows[0]["sys_id"]


def test_create_many_reports_per_item_errors(make_connector: Make) -> None:
    c = make_connector()
    results = c.create_many([(new_stamp(), FIELDS), (new_stamp(), {**FIELDS, "status": "nope"})])
    assert not isinstance(results[0], Exception)
    assert isinstance(results[1], ValueError)


# -- values ---------------------------------------------------------------------------------------


def test_values_are_stored_the_servicenow_way(make_connector: Make, sn: RunningServiceNow) -> None:
    sn.sim.grc_state_rules = "off"  # an instance without the GRC 12.0.1 state rules
    c = make_connector()
    rec = c.create(new_stamp("V-7"), {**FIELDS, "status": "remediating"}).record
    raw = sn.sim.record(TABLE, rec.remote_id)
    assert raw["state"] == "3"  # the code behind "Respond", discovered from sys_choice
    assert raw["priority"] == "2"
    assert raw["assigned_to"] == sn.sim.user_id("alice@example.com")
    # a date/time: the first second of the day in the instance's zone (Los Angeles), in UTC
    assert raw["due_date"] == "2027-03-03 08:00:00"
    assert raw["u_controls"] == "SI-2"
    assert raw["correlation_id"].startswith("poam-sync:")
    assert raw["correlation_display"] == "contract/V-7"
    assert rec.key == raw["number"]


def test_dates_read_back_unshifted_whatever_the_viewers_zone(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), {**FIELDS, "due_date": "2027-03-28"}).record  # EU DST start
    sn.sim.human_update(TABLE, rec.remote_id, {"u_scheduled_completion_date": "2027-11-07"})
    got = c.get(rec.remote_id)
    assert got.fields["due_date"] == "2027-03-28"
    assert got.fields["scheduled_completion_date"] == "2027-11-07"  # US DST end
    raw = sn.sim.record(TABLE, rec.remote_id)
    assert got.updated_at == datetime.strptime(raw["sys_updated_on"], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=UTC
    )


def test_a_long_title_is_cut_as_the_instance_cuts_it(make_connector: Make) -> None:
    c = make_connector()
    title = "T" * 170 + " tail"
    rec = c.create(new_stamp(), {**FIELDS, "title": title}).record
    got = c.get(rec.remote_id).fields["title"]
    assert got == "T" * 160  # short_description is 160 characters (sys_dictionary)
    assert c.project("title", title) == got


# -- prepare, then a pure projection --------------------------------------------------------------


def test_prepare_raises_when_the_metadata_cannot_be_read(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector(retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    sn.sim.control.add_fault(503, count=10)
    with pytest.raises(RemoteTransientError, match=r"choice lists \(sys_choice\).* 503") as info:
        c.prepare()
    assert info.value.status == 503 and info.value.connector == "servicenow"
    sn.sim.control.reset()
    with pytest.raises(NotPreparedError, match=r"prepare\(\) first"):
        c.project("title", "T" * 300)  # never the uncut title, never a call
    assert sn.sim.control.total_calls() == 0


def test_after_prepare_the_projection_makes_no_calls(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    c.prepare()
    sn.sim.control.reset()
    assert c.project("title", "T" * 300) == "T" * 160  # short_description: 160 (sys_dictionary)
    milestone = {"id": "1", "description": "D" * 300, "due_date": None, "status": "open"}
    projected = c.project("milestones", [milestone])
    assert projected == [{**milestone, "description": "D" * 160}]
    assert c.project("status", "risk_accepted") == "deviation_requested"
    c.prepare()  # loads once per connector
    assert sn.sim.control.total_calls() == 0


def test_an_empty_pull_prepares_for_the_planning_after_it(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector(query="number=NONE")
    assert list(c.pull(datetime.now(UTC))) == []
    sn.sim.control.reset()
    assert c.project("title", "T" * 300) == "T" * 160
    assert sn.sim.control.total_calls() == 0


def test_owner_email_matches_case_insensitively(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), {**FIELDS, "owner": "Bob@Example.COM"}).record
    assert sn.sim.record(TABLE, rec.remote_id)["assigned_to"] == sn.sim.user_id("bob@example.com")
    assert c.get(rec.remote_id).fields["owner"] == c.project("owner", "Bob@Example.COM")


def test_unknown_owner_on_create_is_reported_not_invented(make_connector: Make) -> None:
    c = make_connector()
    result = c.create(new_stamp(), {**FIELDS, "owner": "ghost@example.com"})
    assert [(p.field, p.code) for p in result.problems] == [("owner", "unknown_user")]
    assert c.get(result.record.remote_id).fields["owner"] is None


def test_milestones_are_child_records(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector()
    ms = [
        {"id": "1", "description": "Patch", "due_date": "2027-01-10", "status": "in_progress"},
        {"id": "2", "description": "Verify", "due_date": None, "status": "open"},
    ]
    rec = c.create(new_stamp(), {**FIELDS, "milestones": ms}).record
    children = sn.sim.records("sn_irm_cont_auth_milestone_task", f"parent={rec.remote_id}")
    assert sorted((r["correlation_id"], r["state"], r["due_date"]) for r in children) == [
        ("1", "2", "2027-01-10"),
        ("2", "1", ""),
    ]
    c.update(rec.remote_id, {"milestones": ms[1:]})
    # A removed milestone is tombstoned (closed, marked), never deleted, and no longer read.
    children = sn.sim.records("sn_irm_cont_auth_milestone_task", f"parent={rec.remote_id}")
    assert sorted(r["correlation_id"] for r in children) == ["2", "poam-sync-removed:1"]
    assert c.get(rec.remote_id).fields["milestones"] == ms[1:]


# -- pull -----------------------------------------------------------------------------------------


def test_watermark_is_utc_with_one_second_overlap() -> None:
    berlin_summer = timezone(timedelta(hours=2))
    since = datetime(2026, 3, 29, 3, 30, 0, 500000, tzinfo=berlin_summer)
    assert watermark_query(since) == "sys_updated_on>=2026-03-29 01:29:59"
    with pytest.raises(ValueError, match="timezone-aware"):
        watermark_query(datetime(2026, 1, 1))


def test_pull_sees_a_milestone_edited_by_a_person(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    ms = [{"id": "1", "description": "Patch", "due_date": "2027-01-10", "status": "open"}]
    rec = c.create(new_stamp(), {**FIELDS, "milestones": ms}).record
    child = sn.sim.records("sn_irm_cont_auth_milestone_task", f"parent={rec.remote_id}")[0]
    since = datetime.now(UTC)
    sn.sim.human_update(
        "sn_irm_cont_auth_milestone_task", child["sys_id"], {"state": "Closed Complete"}
    )
    pulled = {r.remote_id: r for r in c.pull(since)}
    assert pulled[rec.remote_id].fields["milestones"][0]["status"] == "completed"  # type: ignore[index]


def test_pull_respects_the_scope_query(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector(query="priority=1")
    inside = c.create(new_stamp(), {**FIELDS, "original_risk": "critical"}).record
    outside = c.create(new_stamp(), {**FIELDS, "original_risk": "low"}).record
    ids = {r.remote_id for r in c.pull(datetime.now(UTC) - timedelta(minutes=1))}
    assert inside.remote_id in ids and outside.remote_id not in ids


def test_pull_asks_only_for_mapped_fields(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector()
    c.create(new_stamp(), FIELDS)
    seen: list[str] = []
    c.client.session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request.url or ""))
    list(c.pull(datetime.now(UTC) - timedelta(minutes=1)))
    listing = next(u for u in seen if f"/table/{TABLE}?" in u)
    assert "sysparm_fields=" in listing and "description" in listing
    assert "close_notes" not in listing


# -- notes and retries ---------------------------------------------------------------------------


def test_a_work_note_whose_answer_was_lost_is_written_once(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.lose_next_answers(1, methods=["PATCH"])
    note = Note(body="Scan re-run scheduled.")
    c.add_note(rec.remote_id, note)
    entries = sn.sim.journal(TABLE, rec.remote_id)
    assert len(entries) == 1 and entries[0]["value"].endswith("Scan re-run scheduled.")


def test_retry_after_is_honoured(make_connector: Make, sn: RunningServiceNow) -> None:
    sleeps: list[float] = []
    c = make_connector(retry=RetryPolicy(attempts=3, base_delay=0.01, sleep=sleeps.append))
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.control.add_fault(429, count=1, retry_after=7)
    c.update(rec.remote_id, {"title": "later"})
    assert sleeps == [7.0]


def test_exhausted_retries_surface_retry_after(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector(retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    rec = c.create(new_stamp(), FIELDS).record
    sn.sim.control.add_fault(429, count=5, retry_after=9)
    with pytest.raises(RemoteTransientError) as info:
        c.update(rec.remote_id, {"title": "never"})
    assert info.value.retry_after == 9.0 and info.value.status == 429
    assert "Rate limit exceeded" in str(info.value)


def test_an_owner_that_is_no_plain_email_never_matches_anyone(make_connector: Make) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    result = c.update(rec.remote_id, {"owner": "x@example.com^ORactive=true"})
    assert [p.code for p in result.problems] == ["unknown_user"]
    assert c.get(rec.remote_id).fields["owner"] == FIELDS["owner"]


def test_an_id_that_is_no_sys_id_is_gone(make_connector: Make) -> None:
    from poam_sync.errors import RecordGone

    with pytest.raises(RecordGone, match="not a ServiceNow sys_id"):
        make_connector().get("../sys_user")
