"""The Jira simulator answers the real ``jira`` client as Jira does (over real HTTP)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from jira import JIRA, JIRAError

from poam_sync.simulators.jira import (
    CLOUD_NOT_AUTHENTICATED,
    DEFAULT_EMAIL,
    DEFAULT_TOKEN,
    NOT_AUTHENTICATED,
    SEARCH_REMOVED,
    RunningJira,
    start_jira_simulator,
)
from tests.jira.conftest import client_for

ERR = {"errorMessages": [], "errors": {}}


def _session(running: RunningJira) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    if running.sim.cloud:
        s.auth = (DEFAULT_EMAIL, DEFAULT_TOKEN)
    else:
        s.headers["Authorization"] = "Bearer sim-pat"
    s.headers["Content-Type"] = "application/json"
    return s


def _task(client: JIRA, summary: str = "Weakness", **fields: object) -> str:
    issue = client.create_issue(
        fields={"project": {"key": "POAM"}, "issuetype": {"name": "Task"}, "summary": summary}
        | fields
    )
    return str(issue.key)


# -- server, users, fields ----------------------------------------------------------------


def test_server_info_tells_cloud_from_data_center(jira_client: JIRA, mode: str) -> None:
    info = jira_client.server_info()
    assert info["deploymentType"] == ("Cloud" if mode == "cloud" else "Server")
    assert len(info["versionNumbers"]) == 3
    assert jira_client.myself()["timeZone"] == "America/New_York"


def test_fields_list_the_poam_id_custom_field(jira_client: JIRA) -> None:
    fields = {f["name"]: f for f in jira_client.fields()}
    poam = fields["POA&M ID"]
    assert poam["custom"] is True
    assert poam["id"] == "customfield_10041"
    assert poam["clauseNames"] == ["cf[10041]", "POA&M ID"]
    assert fields["Summary"]["custom"] is False


def test_user_search_speaks_each_deployments_dialect(jira_client: JIRA, mode: str) -> None:
    if mode == "cloud":
        users = jira_client.search_users(query="alice@example.com")
        assert [u.accountId for u in users] == ["5f0c1a2b3c4d5e6f70000002"]
        # carol hides her e-mail: she cannot be found by it, only by name
        assert jira_client.search_users(query="carol@example.com") == []
        carol = jira_client.search_users(query="Carol")[0]
        assert not hasattr(carol, "emailAddress")
    else:
        users = jira_client.search_users(user="alice")
        assert [(u.name, u.emailAddress) for u in users] == [("alice", "alice@example.com")]


def test_bad_credentials_get_jira_401_body(jira_sim: RunningJira) -> None:
    r = requests.get(
        f"{jira_sim.url}/rest/api/2/myself", auth=("sync@example.com", "wrong"), timeout=10
    )
    assert r.status_code == 401
    if jira_sim.sim.cloud:
        assert r.text == CLOUD_NOT_AUTHENTICATED
    else:
        assert r.json() == {"errorMessages": [NOT_AUTHENTICATED], "errors": {}}
        assert r.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"


# -- issues ---------------------------------------------------------------------------------


def test_create_edit_and_changelog(jira_client: JIRA, jira_sim: RunningJira) -> None:
    key = _task(jira_client, "Outdated OpenSSL", customfield_10041="V-1", duedate="2027-01-31")
    issue = jira_client.issue(key)
    assert issue.fields.customfield_10041 == "V-1"
    assert issue.fields.duedate == "2027-01-31"
    assert issue.fields.status.name == "To Do"
    before = issue.fields.updated
    assert before.endswith("+0000") and len(before) == len("2025-01-01T10:00:00.000+0000")
    issue.update(fields={"summary": "Outdated OpenSSL 1.1.1"})  # PUT to self, then GET
    assert issue.fields.summary == "Outdated OpenSSL 1.1.1"
    assert issue.fields.updated > before
    jira_sim.sim.human_set_due_date(key, datetime(2027, 2, 1).date(), user_email="bob@example.com")
    full = jira_client.issue(key, expand="changelog")
    entries = [
        (h.author.displayName, i.field, i.fromString, i.toString)
        for h in full.changelog.histories
        for i in h.items
    ]
    assert ("POA&M Sync", "summary", "Outdated OpenSSL", "Outdated OpenSSL 1.1.1") in entries
    assert ("Bob Engineer", "duedate", "2027-01-31", "2027-02-01") in entries


def test_status_in_an_edit_is_refused(jira_client: JIRA, jira_sim: RunningJira) -> None:
    key = _task(jira_client)
    r = _session(jira_sim).put(
        f"{jira_sim.url}/rest/api/2/issue/{key}",
        data=json.dumps({"fields": {"status": {"name": "Done"}}}),
    )
    assert r.status_code == 400
    assert r.json() == ERR | {
        "errors": {
            "status": "Field 'status' cannot be set. It is not on the appropriate screen, "
            "or unknown."
        }
    }


def test_field_not_on_the_edit_screen_gets_jiras_exact_error(
    jira_client: JIRA, jira_sim: RunningJira
) -> None:
    key = _task(jira_client)
    r = _session(jira_sim).put(
        f"{jira_sim.url}/rest/api/2/issue/{key}",
        data=json.dumps({"fields": {"customfield_10044": "evidence", "summary": "x"}}),
    )
    assert r.status_code == 400
    assert r.json() == {
        "errorMessages": [],
        "errors": {
            "customfield_10044": "Field 'customfield_10044' cannot be set. It is not on the "
            "appropriate screen, or unknown."
        },
    }
    assert jira_client.issue(key).fields.summary == "Weakness"  # nothing half-written


def test_bulk_create_reports_failures_per_element(jira_client: JIRA) -> None:
    results = jira_client.create_issues(
        [
            {"project": {"key": "POAM"}, "issuetype": {"name": "Task"}, "summary": "one"},
            {"project": {"key": "POAM"}, "issuetype": {"name": "Task"}, "summary": ""},
            {"project": {"key": "POAM"}, "issuetype": {"name": "Task"}, "summary": "three"},
        ],
        prefetch=False,
    )
    assert [r["status"] for r in results] == ["Success", "Error", "Success"]
    assert results[1]["error"] == {"summary": "You must specify a summary of the issue."}


def test_bulk_create_refuses_more_than_fifty(jira_sim: RunningJira) -> None:
    one = {"fields": {"project": {"key": "POAM"}, "issuetype": {"name": "Task"}, "summary": "x"}}
    r = _session(jira_sim).post(
        f"{jira_sim.url}/rest/api/2/issue/bulk", data=json.dumps({"issueUpdates": [one] * 51})
    )
    assert r.status_code == 400
    assert "50" in r.json()["errorMessages"][0]


def test_assign_through_the_latest_api(jira_client: JIRA, mode: str) -> None:
    key = _task(jira_client)
    jira_client.assign_issue(key, "bob@example.com" if mode == "cloud" else "bob")
    assert jira_client.issue(key).fields.assignee.displayName == "Bob Engineer"
    with pytest.raises(JIRAError):
        jira_client.assign_issue(key, "nobody@unknown.invalid")


def test_comments_plain_in_v2(jira_client: JIRA, jira_sim: RunningJira) -> None:
    key = _task(jira_client)
    jira_client.add_comment(key, "First line\nsecond line")
    jira_sim.sim.human_comment(key, "From Alice")
    comments = jira_client.comments(key)
    assert [(c.author.displayName, c.body) for c in comments] == [
        ("POA&M Sync", "First line\nsecond line"),
        ("Alice Engineer", "From Alice"),
    ]


def test_v3_uses_the_atlassian_document_format(cloud_sim: RunningJira) -> None:
    s = _session(cloud_sim)
    adf = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Hello"}]}],
    }
    body = {
        "fields": {
            "project": {"key": "POAM"},
            "issuetype": {"name": "Task"},
            "summary": "ADF",
            "description": adf,
        }
    }
    created = s.post(f"{cloud_sim.url}/rest/api/3/issue", data=json.dumps(body)).json()
    v3 = s.get(f"{cloud_sim.url}/rest/api/3/issue/{created['key']}").json()
    v2 = s.get(f"{cloud_sim.url}/rest/api/2/issue/{created['key']}").json()
    assert v3["fields"]["description"] == adf
    assert v2["fields"]["description"] == "Hello"
    plain = s.post(
        f"{cloud_sim.url}/rest/api/3/issue/{created['key']}/comment",
        data=json.dumps({"body": "not ADF"}),
    )
    assert plain.status_code == 400


def test_data_center_has_no_v3(dc_sim: RunningJira) -> None:
    r = _session(dc_sim).get(f"{dc_sim.url}/rest/api/3/myself")
    assert r.status_code == 404


def test_remote_links_are_idempotent_by_global_id(jira_client: JIRA, jira_sim: RunningJira) -> None:
    key = _task(jira_client)
    s = _session(jira_sim)
    url = f"{jira_sim.url}/rest/api/2/issue/{key}/remotelink"
    link = {"globalId": "poam:V-1", "object": {"url": "https://grc/V-1", "title": "V-1"}}
    first = s.post(url, data=json.dumps(link))
    again = s.post(
        url, data=json.dumps(link | {"object": {"url": "https://grc/V-1", "title": "V-1b"}})
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    links = jira_client.remote_links(key)
    assert [ln.object.title for ln in links] == ["V-1b"]
    missing_title = s.post(url, data=json.dumps({"object": {"url": "https://x"}}))
    assert missing_title.status_code == 400


def test_issue_properties(jira_client: JIRA, jira_sim: RunningJira) -> None:
    key = _task(jira_client)
    s = _session(jira_sim)
    url = f"{jira_sim.url}/rest/api/2/issue/{key}/properties/poam-sync"
    assert s.put(url, data=json.dumps({"poam_id": "V-1"})).status_code == 201
    assert s.put(url, data=json.dumps({"poam_id": "V-2"})).status_code == 200
    assert jira_client.issue_property(key, "poam-sync").value.poam_id == "V-2"
    assert s.put(url, data=json.dumps({"x": "y" * 32_800})).status_code == 400
    keys = s.get(f"{jira_sim.url}/rest/api/2/issue/{key}/properties").json()["keys"]
    assert [k["key"] for k in keys] == ["poam-sync"]


# -- workflow -------------------------------------------------------------------------------


def test_done_needs_a_resolution_and_is_two_hops_away(jira_client: JIRA) -> None:
    key = _task(jira_client)
    names = {t["name"]: t for t in jira_client.transitions(key)}
    assert sorted(names) == ["Send to backlog", "Start work"]  # no direct way to Done
    jira_client.transition_issue(key, "Start work")
    jira_client.transition_issue(key, "Request review")
    approve = {t["name"]: t for t in jira_client.transitions(key, expand="transitions.fields")}[
        "Approve"
    ]
    assert approve["fields"]["resolution"]["required"] is True
    with pytest.raises(JIRAError) as err:
        jira_client.transition_issue(key, approve["id"])
    assert err.value.status_code == 400
    assert err.value.response.json()["errors"] == {"resolution": "Resolution is required."}
    jira_client.transition_issue(key, int(approve["id"]), fields={"resolution": {"name": "Done"}})
    issue = jira_client.issue(key)
    assert (issue.fields.status.name, issue.fields.resolution.name) == ("Done", "Done")
    jira_client.transition_issue(key, "Reopen")
    assert jira_client.issue(key).fields.resolution is None


def test_a_real_site_s_own_statuses_are_reachable_by_transitions(jira_client: JIRA) -> None:
    key = _task(jira_client)
    jira_client.transition_issue(key, "Send to backlog")
    assert jira_client.issue(key).fields.status.name == "Backlog"
    jira_client.transition_issue(key, "Select for work")
    jira_client.transition_issue(key, "Start work")
    jira_client.transition_issue(key, "Block")
    blocked = jira_client.issue(key).fields.status
    assert (blocked.name, blocked.statusCategory.key) == ("Blocked", "indeterminate")
    jira_client.transition_issue(key, "Unblock")
    jira_client.transition_issue(key, "Put on hold")
    assert jira_client.issue(key).fields.status.name == "On Hold"
    close = {t["name"]: t for t in jira_client.transitions(key, expand="transitions.fields")}[
        "Close"
    ]
    assert close["to"]["statusCategory"]["key"] == "done"
    assert close["fields"]["resolution"]["required"] is True
    jira_client.transition_issue(key, "Close", fields={"resolution": {"name": "Won't Do"}})
    issue = jira_client.issue(key)
    assert (issue.fields.status.name, issue.fields.resolution.name) == ("Closed", "Won't Do")


def test_priority_schemes_cloud_has_lowest_data_center_also_the_old_names(
    jira_client: JIRA, jira_sim: RunningJira
) -> None:
    names = [p.name for p in jira_client.priorities()]
    assert names[:5] == ["Highest", "High", "Medium", "Low", "Lowest"]
    old = ["Blocker", "Critical", "Major", "Minor", "Trivial"]
    assert names[5:] == ([] if jira_sim.sim.cloud else old)
    key = _task(jira_client, priority={"name": "Lowest"})
    assert jira_client.issue(key).fields.priority.name == "Lowest"
    if not jira_sim.sim.cloud:
        jira_sim.sim.human_edit(key, "priority", {"name": "Major"})
        assert jira_client.issue(key).fields.priority.name == "Major"


def test_a_top_level_issue_has_no_parent_key_a_sub_task_has_one(jira_client: JIRA) -> None:
    key = _task(jira_client)
    raw = jira_client.issue(key).raw["fields"]
    assert "parent" not in raw
    sub = jira_client.create_issue(
        project="POAM", summary="Step", issuetype={"name": "Sub-task"}, parent={"key": key}
    )
    assert jira_client.issue(sub.key).raw["fields"]["parent"]["key"] == key


@pytest.mark.parametrize("summary", ["Two\nlines", "Carriage\rreturn"])
def test_a_summary_with_a_line_break_is_refused_with_jira_s_error(
    jira_client: JIRA, summary: str
) -> None:
    with pytest.raises(JIRAError) as err:
        _task(jira_client, summary)
    assert err.value.response.json()["errors"] == {
        "summary": "The summary is invalid because it contains newline characters."
    }


def test_labels_over_255_and_texts_over_32767_characters_are_refused(jira_client: JIRA) -> None:
    with pytest.raises(JIRAError) as err:
        _task(jira_client, labels=["x" * 256])
    assert "exceeds the maximum length for a single label of 255 characters" in str(
        err.value.response.json()["errors"]["labels"]
    )
    _task(jira_client, labels=["x" * 255], description="y" * 32_767)
    with pytest.raises(JIRAError) as err:
        _task(jira_client, description="y" * 32_768)
    assert err.value.response.json()["errors"] == {
        "description": "The entered text is too long. It exceeds the allowed limit of 32,767 "
        "characters."
    }


def test_a_transition_not_available_now_is_refused(jira_client: JIRA) -> None:
    key = _task(jira_client)
    with pytest.raises(JIRAError) as err:
        jira_client.transition_issue(key, "31", fields={"resolution": {"name": "Done"}})
    assert err.value.response.json()["errorMessages"] == [
        "Transition id '31' is not valid for this issue."
    ]


# -- search ---------------------------------------------------------------------------------


def _many(client: JIRA, n: int) -> None:
    for start in range(0, n, 50):
        client.create_issues(
            [
                {"project": {"key": "POAM"}, "issuetype": {"name": "Task"}, "summary": f"n{i}"}
                for i in range(start, min(n, start + 50))
            ],
            prefetch=False,
        )


def test_cloud_search_jql_pages_past_100_with_tokens(cloud_sim: RunningJira) -> None:
    client = client_for(cloud_sim)
    _many(client, 130)
    found = client.enhanced_search_issues("project = POAM ORDER BY key ASC", maxResults=0)
    keys = [i.key for i in found]
    assert len(keys) == 130 and len(set(keys)) == 130
    assert keys[:2] == ["POAM-1", "POAM-2"]
    page = client.enhanced_search_issues(
        "project = POAM", maxResults=100, fields="", json_result=True
    )
    assert set(page) == {"issues", "isLast", "nextPageToken"}
    assert page["isLast"] is False and "total" not in page
    assert set(page["issues"][0]) == {"id"}  # default fields: id only
    calls = cloud_sim.sim.control.calls
    assert calls["GET /rest/api/2/search/jql"] >= 3


def test_data_center_search_pages_with_start_at(dc_sim: RunningJira) -> None:
    client = client_for(dc_sim)
    _many(client, 130)
    found = client.search_issues("project = POAM ORDER BY key ASC", maxResults=0)
    assert len(found) == 130 and found.total == 130
    page = client.search_issues("project = POAM", startAt=100, maxResults=50, json_result=True)
    assert (page["startAt"], page["total"], len(page["issues"])) == (100, 130, 30)


def test_old_cloud_search_answers_410(cloud_sim: RunningJira) -> None:
    s = _session(cloud_sim)
    for method in ("GET", "POST"):
        r = s.request(method, f"{cloud_sim.url}/rest/api/3/search", params={"jql": "project=POAM"})
        assert r.status_code == 410
        assert r.json() == {"errorMessages": [SEARCH_REMOVED], "errors": {}}


def test_cloud_search_jql_refuses_unbounded_queries(cloud_sim: RunningJira) -> None:
    s = _session(cloud_sim)
    r = s.get(f"{cloud_sim.url}/rest/api/2/search/jql", params={"jql": "ORDER BY key"})
    assert r.status_code == 400


def _keys(client: JIRA, jql: str) -> list[str]:
    return [i.key for i in client.search_issues(jql, maxResults=0)]


def test_jql_subset(jira_client: JIRA) -> None:
    a = _task(jira_client, "OpenSSL on web tier", labels=["web", "tls"], customfield_10041="V-1")
    b = _task(jira_client, "Kernel patch", labels=["os"], customfield_10041="V-2")
    c = _task(jira_client, "TLS ciphers", priority={"name": "High"})
    assert _keys(jira_client, "project = POAM AND labels = web") == [a]
    assert _keys(jira_client, "project = POAM AND labels in (os, tls) ORDER BY key ASC") == [a, b]
    assert _keys(jira_client, 'project = POAM AND summary ~ "openssl"') == [a]
    assert _keys(jira_client, 'project = POAM AND cf[10041] ~ "V-2"') == [b]
    assert _keys(jira_client, 'project = POAM AND "POA&M ID" ~ "V-1"') == [a]
    assert _keys(jira_client, "project = POAM AND priority = High") == [c]
    assert _keys(jira_client, "project = POAM AND priority != High ORDER BY key DESC") == [b, a]
    assert _keys(
        jira_client, "project = POAM AND (labels = os OR priority = High) ORDER BY key"
    ) == [b, c]
    assert _keys(jira_client, "project = POAM AND labels is EMPTY") == [c]
    assert _keys(jira_client, f"issuekey in ({a}, {c}) ORDER BY key ASC") == [a, c]
    with pytest.raises(JIRAError) as err:
        jira_client.search_issues('project = POAM AND summary = "Kernel patch"')
    assert "not supported" in err.value.response.json()["errorMessages"][0]
    with pytest.raises(JIRAError):
        jira_client.search_issues("project = POAM AND nosuchfield = 1")


def test_jql_dates_are_minutes_in_the_users_time_zone(jira_client: JIRA) -> None:
    key = _task(jira_client)
    updated = datetime.strptime(jira_client.issue(key).fields.updated, "%Y-%m-%dT%H:%M:%S.%f%z")
    zone = ZoneInfo("America/New_York")  # the sync user's zone, from /myself

    def since(moment: datetime) -> list[str]:
        text = moment.astimezone(zone).strftime("%Y/%m/%d %H:%M")
        return _keys(jira_client, f'project = POAM AND updated >= "{text}"')

    assert since(updated - timedelta(minutes=1)) == [key]
    assert since(updated + timedelta(minutes=2)) == []
    utc_text = (updated - timedelta(minutes=1)).astimezone(UTC).strftime("%Y/%m/%d %H:%M")
    # the same wall-clock text read in New York is hours later: nothing matches
    assert _keys(jira_client, f'project = POAM AND updated >= "{utc_text}"') == []
    assert _keys(jira_client, "project = POAM AND updated >= -5m") == [key]


# -- faults and state -----------------------------------------------------------------------


def test_faults_through_the_control_api(jira_sim: RunningJira) -> None:
    client = client_for(jira_sim)
    s = requests.Session()
    s.trust_env = False
    r = s.post(f"{jira_sim.url}/_sim/faults", json={"status": 429, "count": 1, "retry_after": 3})
    assert r.status_code == 200
    with pytest.raises(JIRAError) as err:
        client.myself()
    resp = err.value.response
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "3"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    if jira_sim.sim.cloud:
        reset = resp.headers["X-RateLimit-Reset"]
        assert datetime.fromisoformat(reset.replace("Z", "+00:00")) > datetime.now(UTC)
    else:
        assert resp.headers["X-RateLimit-FillRate"] == "10"
    assert client.myself()["name" if jira_sim.sim.mode == "datacenter" else "accountId"]
    s.post(f"{jira_sim.url}/_sim/faults", json={"status": 503, "count": 1})
    with pytest.raises(JIRAError) as err:
        client.myself()
    assert err.value.status_code == 503
    s.post(f"{jira_sim.url}/_sim/faults", json={"kind": "drop", "count": 1})
    with pytest.raises(requests.RequestException):
        client.myself()
    calls = s.get(f"{jira_sim.url}/_sim/calls").json()
    assert calls["by_endpoint"]["GET /rest/api/2/myself"] == 4
    s.post(f"{jira_sim.url}/_sim/reset")
    assert s.get(f"{jira_sim.url}/_sim/calls").json()["total"] == 0


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "jira.json"
    with start_jira_simulator(mode="cloud", state=state) as first:
        key = _task(client_for(first), "Kept")
    assert state.exists()
    with start_jira_simulator(mode="cloud", state=state) as second:
        client = client_for(second)
        assert client.issue(key).fields.summary == "Kept"
        assert _task(client, "Next") != key


def test_human_api_plays_the_engineer(jira_sim: RunningJira, jira_client: JIRA) -> None:
    key = _task(jira_client)
    sim = jira_sim.sim
    sim.human_transition(key, "In Progress", user_email="bob@example.com")
    sim.human_assign(key, "carol@example.com")
    sim.human_edit(key, "summary", "Renamed by Bob", user_email="bob@example.com")
    issue = sim.issue(key)
    assert issue["fields"]["status"]["name"] == "In Progress"
    assert issue["fields"]["assignee"]["displayName"] == "Carol Engineer"
    assert issue["fields"]["summary"] == "Renamed by Bob"
    sim.delete_issue(key)
    with pytest.raises(JIRAError) as err:
        jira_client.issue(key)
    assert err.value.status_code == 404


def test_search_accepts_post_with_nulls_and_comma_separated_fields(jira_sim: RunningJira) -> None:
    client = client_for(jira_sim)
    key = _task(client, "Posted", labels=["p"])
    if jira_sim.sim.cloud:  # sends "expand": null, "properties": null in the body
        found = client.enhanced_search_issues(
            "project = POAM", fields=["summary", "labels"], use_post=True
        )
    else:
        found = client.search_issues("project = POAM", fields="summary,labels", use_post=True)
    assert [(i.key, i.fields.summary, i.fields.labels) for i in found] == [(key, "Posted", ["p"])]
    path = "search/jql" if jira_sim.sim.cloud else "search"
    raw = _session(jira_sim).get(
        f"{jira_sim.url}/rest/api/2/{path}",
        params={"jql": "project = POAM", "fields": ["summary,labels", "duedate"]},
    )
    assert set(raw.json()["issues"][0]["fields"]) == {"summary", "labels", "duedate"}
