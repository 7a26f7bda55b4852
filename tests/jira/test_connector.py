"""The Jira connector beyond the shared contract: screens, workflow, users, stamps, retries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr, ValidationError

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.jira.client import _retry_after, http_session
from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping, load_jira_mapping
from poam_sync.connectors.jira.settings import JiraSettings
from poam_sync.errors import ConfigError, RemoteAuthError, RemoteTransientError
from poam_sync.model import Note
from poam_sync.simulators.jira import RunningJira
from poam_sync.testing import base_fields, new_stamp
from tests.jira.conftest import FAST_RETRY, MAPPING_FILE, JiraHarness, client_for, settings_for


def _variant(mapping: JiraMapping, **over: object) -> JiraMapping:
    return JiraMapping.model_validate(mapping.model_dump(mode="json") | over)


@pytest.fixture
def make(jira_sim: RunningJira) -> Iterator[object]:
    made: list[JiraConnector] = []

    def build(mapping: JiraMapping, retry: RetryPolicy = FAST_RETRY, **settings: object):
        c = JiraConnector(settings_for(jira_sim, **settings), mapping, retry=retry)
        made.append(c)
        return c

    yield build
    for c in made:
        c.close()


def _key(jira_sim: RunningJira, remote_id: str) -> str:
    return str(jira_sim.sim.issue(remote_id)["key"])


def test_a_field_not_on_the_screen_is_reported_and_the_rest_written(
    jira_sim: RunningJira, mapping: JiraMapping, make
) -> None:
    fields = dict(mapping.fields) | {"scheduled_completion_date": "Verification Evidence"}
    c = make(_variant(mapping, fields=fields))
    created = c.create(new_stamp(), {"title": "Created", "scheduled_completion_date": "2027-01-01"})
    assert [(p.field, p.code) for p in created.problems] == [
        ("scheduled_completion_date", "not_on_screen")
    ]
    assert "customfield_10044" in (created.problems[0].hint or "")
    assert created.record.fields["title"] == "Created"
    result = c.update(
        created.record.remote_id,
        {"scheduled_completion_date": "2028-01-01", "title": "Still written"},
    )
    assert [(p.field, p.code) for p in result.problems] == [
        ("scheduled_completion_date", "not_on_screen")
    ]
    assert "It is not on the appropriate screen" in result.problems[0].message
    assert result.record.fields["title"] == "Still written"


def test_a_required_transition_field_the_mapping_lacks_blocks_and_walks_back(
    jira_sim: RunningJira, connector: JiraConnector, mapping: JiraMapping, make
) -> None:
    jira_sim.sim.require_field("Approve", "customfield_10044")
    rec = connector.create(new_stamp(), {"title": "Needs evidence", "status": "open"}).record
    result = connector.update(rec.remote_id, {"status": "completed", "title": "Titled"})
    assert [(p.field, p.code) for p in result.problems] == [("status", "transition_blocked")]
    message = result.problems[0].message
    assert "Approve" in message and "Verification Evidence" in message
    assert "moved back to 'To Do'" in message
    assert result.record.fields["status"] == "open"
    assert result.record.fields["title"] == "Titled"
    filled = make(_variant(mapping, transition_fields={"Verification Evidence": "Scan clean"}))
    assert filled.update(rec.remote_id, {"status": "completed"}).problems == ()
    issue = jira_sim.sim.issue(rec.remote_id)["fields"]
    assert (issue["status"]["name"], issue["resolution"]["name"]) == ("Done", "Done")
    assert issue["customfield_10044"] == "Scan clean"


def test_statuses_sharing_a_jira_status_differ_by_resolution(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    rec = connector.create(new_stamp(), {"title": "x", "status": "completed"}).record
    assert rec.fields["status"] == "completed"
    got = connector.update(rec.remote_id, {"status": "false_positive"}).record
    issue = jira_sim.sim.issue(rec.remote_id)["fields"]
    assert (issue["status"]["name"], issue["resolution"]["name"]) == ("Done", "Declined")
    assert got.fields["status"] == "false_positive"


def test_hidden_email_users_come_from_the_directory(
    jira_sim: RunningJira, connector: JiraConnector, mapping: JiraMapping, make
) -> None:
    rec = connector.create(new_stamp(), {"title": "x", "owner": "carol@example.com"}).record
    assert rec.fields["owner"] == "carol@example.com"
    no_directory = make(_variant(mapping, users=[]))
    moved = no_directory.update(rec.remote_id, {"owner": "bob@example.com"})
    assert moved.problems == ()  # found through /user/search by e-mail
    assert moved.record.fields["owner"] == "bob@example.com"
    carol = no_directory.update(rec.remote_id, {"owner": "carol@example.com"})
    if jira_sim.sim.cloud:  # Cloud hides carol's e-mail: only the directory knows her
        assert [p.code for p in carol.problems] == ["unknown_user"]
        assert carol.record.fields["owner"] == "bob@example.com"
    else:
        assert carol.problems == ()


def test_a_create_retried_after_a_failure_is_not_duplicated(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    connector.check()
    stamp = new_stamp()
    jira_sim.sim.control.add_fault(kind="drop", count=1)
    rec = connector.create(stamp, {"title": "Once"}).record
    hits = jira_sim.sim.search(f'labels = "{stamp.token}"', jira_sim.sim.users[0])
    assert [h["id"] for h in hits] == [rec.remote_id]
    assert connector.find_by_stamp(stamp) is not None


def test_prepare_loads_the_site_and_project_stays_offline(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    connector.prepare()
    jira_sim.sim.control.reset()
    connector.prepare()  # loaded once
    assert connector.project("owner", "Alice@Example.com") == "alice@example.com"
    assert connector.project("status", "investigating") == "remediating"
    assert jira_sim.sim.control.total_calls() == 0


def test_retry_after_is_honoured(jira_sim: RunningJira, mapping: JiraMapping, make) -> None:
    waits: list[float] = []
    c = make(mapping, retry=RetryPolicy(attempts=3, max_delay=30, sleep=waits.append))
    c.check()
    jira_sim.sim.control.add_fault(429, count=1, retry_after=7)
    c.create(new_stamp(), {"title": "x"})
    assert waits == [7.0]


def test_rate_limit_reset_is_used_without_retry_after() -> None:
    r = requests.Response()
    r.headers["X-RateLimit-Reset"] = "2999-01-01T00:00:00Z"
    assert (_retry_after(r) or 0) > 3600
    r.headers["Retry-After"] = "4"
    assert _retry_after(r) == 4.0


def test_the_jira_client_still_has_its_requests_session(cloud_sim: RunningJira) -> None:
    """client.http_session is our one use of a private ``jira`` name: a new release that drops
    it must fail here, not in a sync."""
    client = client_for(cloud_sim)
    try:
        assert isinstance(getattr(client, "_session", None), requests.Session), (
            "jira.JIRA no longer has the requests session _session: "
            "fix poam_sync/connectors/jira/client.py:http_session before widening the pin"
        )
        assert http_session(client) is client._session
    finally:
        client.close()


def test_bad_credentials_are_an_auth_error(jira_sim: RunningJira, mapping: JiraMapping) -> None:
    over = {"token": SecretStr("wrong")} if jira_sim.sim.cloud else {"pat": SecretStr("wrong")}
    c = JiraConnector(settings_for(jira_sim, **over), mapping, retry=FAST_RETRY)
    with pytest.raises(RemoteAuthError) as err:
        c.check()
    assert "wrong" not in str(err.value)
    assert err.value.status == 401


def test_notes_are_never_posted_twice(jira_sim: RunningJira, connector: JiraConnector) -> None:
    rec = connector.create(new_stamp(), {"title": "x"}).record
    note = Note(body="Rescan on Friday.")
    connector.add_note(rec.remote_id, note)
    connector.add_note(rec.remote_id, note)
    bodies = [c["body"] for c in jira_sim.sim.issue(rec.remote_id)["fields"]["comment"]["comments"]]
    assert len(bodies) == 1 and bodies[0].endswith("Rescan on Friday.")


def test_pull_pages_with_few_calls(jira_sim: RunningJira, connector: JiraConnector) -> None:
    h = JiraHarness(jira_sim, connector)
    batch = [(new_stamp(), base_fields(h)) for _ in range(120)]
    results = connector.create_many(batch)
    assert all(not isinstance(r, Exception) for r in results)
    jira_sim.sim.control.reset()
    pulled = list(connector.pull(None))
    assert len(pulled) == 120
    assert all(r.stamp is not None for r in pulled)
    # two pages of 100, one spare; Data Center's search returns no issue properties, so each
    # stamp is read through the issue-property API
    extra = 0 if jira_sim.sim.cloud else 120
    assert jira_sim.sim.control.total_calls() <= 3 + extra


def test_pull_bound_is_in_the_sync_users_time_zone(
    jira_sim: RunningJira, mapping: JiraMapping, make
) -> None:
    c = make(mapping, overlap_minutes=0)
    rec = c.create(new_stamp(), {"title": "x"}).record
    assert [r.remote_id for r in c.pull(rec.updated_at - timedelta(minutes=1))] == [rec.remote_id]
    assert list(c.pull(rec.updated_at + timedelta(minutes=2))) == []


def test_milestones_are_sub_tasks_and_removed_ones_are_kept(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    ms = [
        {"id": "1", "description": "Patch", "due_date": "2027-01-10", "status": "open"},
        {"id": "2", "description": "Verify", "due_date": None, "status": "in_progress"},
    ]
    rec = connector.create(new_stamp(), {"title": "x", "milestones": ms}).record
    issue = jira_sim.sim.issue(rec.remote_id)["fields"]
    subs = [jira_sim.sim.issue(s["key"])["fields"] for s in issue["subtasks"]]
    assert [(s["summary"], s["status"]["name"], s["labels"]) for s in subs] == [
        ("Patch", "To Do", ["poam-milestone:1"]),
        ("Verify", "In Progress", ["poam-milestone:2"]),
    ]
    got = connector.update(rec.remote_id, {"milestones": ms[:1]}).record
    assert [m["id"] for m in got.fields["milestones"]] == ["1"]
    assert len(jira_sim.sim.issue(rec.remote_id)["fields"]["subtasks"]) == 2  # nothing deleted
    jira_sim.sim.human_transition(issue["subtasks"][0]["key"], "Done")
    assert connector.get(rec.remote_id).fields["milestones"][0]["status"] == "completed"


def test_an_unknown_custom_field_is_a_config_error(mapping: JiraMapping, make) -> None:
    fields = dict(mapping.fields) | {"controls": "No Such Field"}
    c = make(_variant(mapping, fields=fields))
    with pytest.raises(ConfigError) as err:
        c.check()
    assert str(err.value).startswith("[mappings/jira.yaml] fields.controls <- Jira has no field")


# -- settings and mapping files (no server needed) --------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [{}, {"email": "a@b.c"}, {"email": "a@b.c", "token": "t", "pat": "p"}],
)
def test_settings_need_exactly_one_kind_of_auth(auth: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        JiraSettings.model_validate({"url": "https://x.atlassian.net", "project_key": "P", **auth})


def test_settings_hide_secrets() -> None:
    s = JiraSettings(url="https://x.atlassian.net/", project_key="P", pat=SecretStr("abc"))
    assert s.url == "https://x.atlassian.net"
    assert "abc" not in repr(s)


def test_mapping_errors_name_the_option(tmp_path: Path) -> None:
    text = MAPPING_FILE.read_text(encoding="utf-8").replace(
        'risk_accepted: {status: Risk Accepted, resolution: "Won\'t Do"}',
        'risk_accepted: {resolution: "Won\'t Do"}',
    )
    bad = tmp_path / "jira.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_jira_mapping(bad)
    assert str(err.value).startswith(
        "[mappings/jira.yaml] statuses.risk_accepted.status <- field required"
    )


def test_mapping_projection_is_lossy_where_jira_is(mapping: JiraMapping) -> None:
    assert mapping.project("status", "investigating") == "remediating"
    assert mapping.project("status", "archived") == "completed"
    assert mapping.project("status", "risk_accepted") == "risk_accepted"
    assert mapping.project("title", "Two\nlines") == "Two lines"
    assert mapping.project("controls", ["AC-2 (1)", "AC-2 (1)"]) == ["AC-2_(1)"]
    assert mapping.project("original_risk", None) == "moderate"


def test_controls_in_the_labels_never_wash_the_stamp_away(mapping: JiraMapping, make) -> None:
    c = make(_variant(mapping, fields=dict(mapping.fields) | {"controls": "labels"}))
    stamp = new_stamp()
    rec = c.create(stamp, {"title": "x", "controls": ["SI-2"]}).record
    assert rec.fields["controls"] == ["SI-2"]
    got = c.update(rec.remote_id, {"controls": ["AC-2(1)", "RA-5"]}).record
    assert got.fields["controls"] == ["AC-2(1)", "RA-5"]
    found = c.find_by_stamp(stamp)
    assert found is not None and found.remote_id == rec.remote_id


def test_a_chunk_that_keeps_failing_gives_one_error_per_item(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    connector.check()
    jira_sim.sim.control.add_fault(503, count=100)
    results = connector.create_many([(new_stamp(), {"title": "x"}) for _ in range(3)])
    assert len(results) == 3
    assert all(isinstance(r, RemoteTransientError) for r in results)
    jira_sim.sim.control.reset()
    assert jira_sim.sim.search("project = POAM", jira_sim.sim.users[0]) == []


def _two_milestones(n: int) -> list[dict[str, object]]:
    return [
        {"id": str(k), "description": f"Step {k} of {n}", "due_date": None, "status": "open"}
        for k in (1, 2)
    ]


def test_sub_tasks_of_a_create_batch_share_bulk_calls_across_parents(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    connector.create(new_stamp(), {"title": "warm"})  # the site's ids, loaded once
    jira_sim.sim.control.reset()
    stamps = [new_stamp() for _ in range(30)]
    batch = [
        (s, {"title": f"x{n}", "milestones": _two_milestones(n)}) for n, s in enumerate(stamps)
    ]
    results = connector.create_many(batch)  # type: ignore[arg-type]
    assert all(not isinstance(r, Exception) for r in results)
    calls = dict(jira_sim.sim.control.calls)
    assert calls.pop("POST /rest/api/2/issue/bulk") == 3  # 30 issues; 60 sub-tasks: 50 + 10
    assert "GET /rest/api/2/issue/{id}" not in calls  # nothing read before creating under new
    for n, r in enumerate(results):
        assert not isinstance(r, Exception)
        issue = jira_sim.sim.issue(r.record.remote_id)["fields"]
        subs = [jira_sim.sim.issue(s["key"])["fields"] for s in issue["subtasks"]]
        assert sorted(s["summary"] for s in subs) == [f"Step 1 of {n}", f"Step 2 of {n}"]
        assert [m["id"] for m in r.record.fields["milestones"]] == ["1", "2"]


def test_a_sub_task_bulk_call_whose_answer_is_lost_is_never_repeated_blind(
    jira_sim: RunningJira, connector: JiraConnector
) -> None:
    connector.create(new_stamp(), {"title": "warm"})
    control = jira_sim.sim.control

    def after(endpoint: str, number: int) -> None:
        if endpoint == "POST /rest/api/2/issue/bulk" and number == 1:
            control.add_fault(kind="drop", count=1, methods=["POST"])  # the sub-tasks' call

    control.reset()
    control.after_call = after
    stamps = [new_stamp() for _ in range(3)]
    batch = [
        (s, {"title": f"x{n}", "milestones": _two_milestones(n)}) for n, s in enumerate(stamps)
    ]
    results = connector.create_many(batch)  # type: ignore[arg-type]
    control.after_call = None
    assert all(not isinstance(r, Exception) for r in results)
    for r in results:
        assert not isinstance(r, Exception)
        subtasks = jira_sim.sim.issue(r.record.remote_id)["fields"]["subtasks"]
        assert len(subtasks) == 2  # each parent read, then created what was missing: once
