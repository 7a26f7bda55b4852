"""The simulator speaks ServiceNow's Table API: checked over HTTPS with plain requests."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from poam_sync.simulators.servicenow import (
    GRC_ISSUE_STATES,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    SERVICE_ACCOUNT_USER,
    RunningServiceNow,
    parse_query,
    start_servicenow_simulator,
)

TABLE = "sn_grc_issue"
MISSING = "0" * 32


def _api(sn: RunningServiceNow, path: str) -> str:
    return f"{sn.url}/api/now/table/{path}"


def _links(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>;rel="(\w+)"', header)}


def _tagged(sn: RunningServiceNow, tag: str) -> Iterator[str]:
    yield tag
    for row in sn.sim.records(TABLE, f"u_controls={tag}"):  # keep other tests' pulls small
        sn.sim.delete(TABLE, row["sys_id"])


@pytest.fixture(scope="module")
def bulk(sn_run: RunningServiceNow) -> Iterator[str]:
    """1,234 records carrying a fresh tag, for paging."""
    tag = "bulk-" + datetime.now(UTC).strftime("%H%M%S%f")
    for i in range(1234):
        sn_run.sim.human_create(TABLE, {"short_description": f"{tag} {i:04d}", "u_controls": tag})
    yield from _tagged(sn_run, tag)


# -- records and bodies ---------------------------------------------------------------------


def test_create_answers_201_with_location_and_string_values(
    sn: RunningServiceNow, http: requests.Session
) -> None:
    r = http.post(_api(sn, TABLE), json={"short_description": "Weak TLS", "priority": 2})
    assert r.status_code == 201
    rec = r.json()["result"]
    assert r.headers["Location"] == _api(sn, f"{TABLE}/{rec['sys_id']}")
    assert re.fullmatch(r"[0-9a-f]{32}", rec["sys_id"])
    assert rec["priority"] == "2" and rec["sys_mod_count"] == "0"
    assert rec["number"].startswith("ISS")
    assert rec["sys_updated_by"] == "admin"
    assert all(isinstance(v, str) for v in rec.values())
    stamp = datetime.strptime(rec["sys_updated_on"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 120  # UTC, not local time


def test_patch_changes_given_fields_and_counts_modifications(
    sn: RunningServiceNow, http: requests.Session
) -> None:
    sys_id = http.post(_api(sn, TABLE), json={"short_description": "a", "description": "d"}).json()[
        "result"
    ]["sys_id"]
    r = http.patch(_api(sn, f"{TABLE}/{sys_id}"), json={"short_description": "b"})
    assert r.status_code == 200
    rec = r.json()["result"]
    assert (rec["short_description"], rec["description"], rec["sys_mod_count"]) == ("b", "d", "1")
    r = http.put(_api(sn, f"{TABLE}/{sys_id}"), json={"description": "e"})
    assert r.json()["result"]["sys_mod_count"] == "2"


def test_v2_path_and_delete(sn: RunningServiceNow, http: requests.Session) -> None:
    sys_id = http.post(f"{sn.url}/api/now/v2/table/{TABLE}", json={}).json()["result"]["sys_id"]
    assert http.get(f"{sn.url}/api/now/v2/table/{TABLE}/{sys_id}").status_code == 200
    assert http.delete(_api(sn, f"{TABLE}/{sys_id}")).status_code == 204
    r = http.get(_api(sn, f"{TABLE}/{sys_id}"))
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "No Record found",
            "detail": "Record doesn't exist or ACL restricts the record retrieval",
        },
        "status": "failure",
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/now/table/no_such_table", None, 400),
        ("POST", f"/api/now/table/{TABLE}", b"{not json", 400),
        ("PATCH", f"/api/now/table/{TABLE}", b"{}", 405),
        ("GET", "/api/now/nothing/here", None, 400),
    ],
)
def test_errors_have_servicenow_bodies(
    sn: RunningServiceNow,
    http: requests.Session,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
) -> None:
    r = http.request(method, sn.url + path, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status
    data = r.json()
    assert data["status"] == "failure"
    assert set(data["error"]) == {"message", "detail"} and data["error"]["message"]


def test_unsupported_media_type(sn: RunningServiceNow, http: requests.Session) -> None:
    r = http.post(_api(sn, TABLE), data="x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


# -- authentication ---------------------------------------------------------------------------


def test_401_without_or_with_wrong_credentials(sn: RunningServiceNow) -> None:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(sn.ca_path)
    for auth in (None, ("admin", "wrong")):
        r = s.get(_api(sn, TABLE), auth=auth)
        assert r.status_code == 401
        assert r.json() == {
            "error": {
                "message": "User Not Authenticated",
                "detail": "Required to provide Auth information",
            },
            "status": "failure",
        }


def test_oauth_client_credentials_are_refused_until_enabled(sn: RunningServiceNow) -> None:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(sn.ca_path)
    grant = {
        "grant_type": "client_credentials",
        "client_id": OAUTH_CLIENT_ID,
        "client_secret": OAUTH_CLIENT_SECRET,
    }
    off = s.post(f"{sn.url}/oauth_token.do", data=grant)
    assert off.status_code == 401
    assert off.json() == {"error_description": "access_denied", "error": "server_error"}
    sn.sim.enable_client_credentials()
    bad = s.post(
        f"{sn.url}/oauth_token.do",
        data={
            "grant_type": "client_credentials",
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": "x",
        },
    )
    assert bad.status_code == 401
    r = s.post(
        f"{sn.url}/oauth_token.do",
        data={
            "grant_type": "client_credentials",
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": OAUTH_CLIENT_SECRET,
        },
    )
    assert r.status_code == 200
    token = r.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    ok = s.get(_api(sn, "sys_user"), headers={"Authorization": f"Bearer {token['access_token']}"})
    assert ok.status_code == 200 and ok.json()["result"]
    assert s.get(_api(sn, "sys_user"), headers={"Authorization": "Bearer nope"}).status_code == 401


# -- paging ------------------------------------------------------------------------------------


def test_paging_over_more_than_1000_records_with_link_and_total(
    sn: RunningServiceNow, http: requests.Session, bulk: str
) -> None:
    url = _api(sn, TABLE) + "?" + f"sysparm_query=u_controls={bulk}^ORDERBYshort_description"
    url += "&sysparm_limit=500&sysparm_fields=short_description"
    seen: list[str] = []
    pages = 0
    first_links: dict[str, str] = {}
    while url:
        r = http.get(url)
        assert r.headers["X-Total-Count"] == "1234"
        links = _links(r.headers["Link"])
        first_links = first_links or links
        seen += [row["short_description"] for row in r.json()["result"]]
        url = links.get("next", "")
        pages += 1
    assert pages == 3
    assert seen == [f"{bulk} {i:04d}" for i in range(1234)]
    assert "prev" not in first_links
    assert "sysparm_offset=1000" in first_links["last"]
    assert "sysparm_offset=0" in first_links["first"]


def test_paging_headers_can_be_suppressed(
    sn: RunningServiceNow, http: requests.Session, bulk: str
) -> None:
    params = {
        "sysparm_query": f"u_controls={bulk}",
        "sysparm_limit": "10",
        "sysparm_offset": "1230",
        "sysparm_suppress_pagination_header": "true",
    }
    r = http.get(_api(sn, TABLE), params=params)
    assert "Link" not in r.headers and r.headers["X-Total-Count"] == "1234"
    assert len(r.json()["result"]) == 4
    r = http.get(_api(sn, TABLE), params={**params, "sysparm_no_count": "true"})
    assert "X-Total-Count" not in r.headers


# -- encoded queries --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qset(sn_run: RunningServiceNow) -> Iterator[str]:
    tag = "q-" + datetime.now(UTC).strftime("%H%M%S%f")
    rows = [
        ("Alpha web", "1", "2027-01-01"),
        ("Beta db", "2", "2027-02-01"),
        ("Gamma web", "3", ""),
        ("Delta app", "4", "2027-04-01"),
        ("alphabet", "2", "2027-05-01"),
    ]
    for title, priority, due in rows:
        sn_run.sim.human_create(
            TABLE, {"short_description": title, "priority": priority, "due_date": due,
                    "u_controls": tag}
        )  # fmt: skip
    yield from _tagged(sn_run, tag)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("priority=2", ["Beta db", "alphabet"]),
        ("priority!=2", ["Alpha web", "Delta app", "Gamma web"]),
        ("priority>2", ["Delta app", "Gamma web"]),
        ("priority>=3", ["Delta app", "Gamma web"]),
        ("priority<2", ["Alpha web"]),
        ("priority<=2", ["Alpha web", "Beta db", "alphabet"]),
        ("short_descriptionLIKEweb", ["Alpha web", "Gamma web"]),
        ("short_descriptionNOT LIKEweb", ["Beta db", "Delta app", "alphabet"]),
        ("short_descriptionSTARTSWITHalpha", ["Alpha web", "alphabet"]),
        ("short_descriptionENDSWITHapp", ["Delta app"]),
        ("priorityIN1,4", ["Alpha web", "Delta app"]),
        ("priorityNOT IN1,4", ["Beta db", "Gamma web", "alphabet"]),
        ("due_dateISEMPTY", ["Gamma web"]),
        ("due_dateISNOTEMPTY^priority=2", ["Beta db", "alphabet"]),
        ("priority=1^ORpriority=4", ["Alpha web", "Delta app"]),
        ("priority=1^ORpriority=4^short_descriptionLIKEapp", ["Delta app"]),
        ("due_date>=2027-02-01^due_date<2027-05-01", ["Beta db", "Delta app"]),
        ("no_such_field=1^priority=3", ["Gamma web"]),  # unknown terms are ignored
    ],
)
def test_encoded_query_operators(
    sn: RunningServiceNow, http: requests.Session, qset: str, query: str, expected: list[str]
) -> None:
    r = http.get(
        _api(sn, TABLE),
        params={
            "sysparm_query": f"u_controls={qset}^{query}",
            "sysparm_fields": "short_description",
        },
    )
    got = sorted((row["short_description"] for row in r.json()["result"]), key=str.lower)
    assert got == sorted(expected, key=str.lower)


def test_order_by_and_desc(sn: RunningServiceNow, http: requests.Session, qset: str) -> None:
    def titles(order: str) -> list[str]:
        r = http.get(
            _api(sn, TABLE),
            params={
                "sysparm_query": f"u_controls={qset}^{order}",
                "sysparm_fields": "short_description",
            },
        )
        return [row["short_description"] for row in r.json()["result"]]

    assert titles("ORDERBYDESCpriority^ORDERBYshort_description") == [
        "Delta app", "Gamma web", "Beta db", "alphabet", "Alpha web",
    ]  # fmt: skip
    assert titles("ORDERBYdue_date")[0] == "Gamma web"  # empty first


def test_plain_parameters_filter_too(
    sn: RunningServiceNow, http: requests.Session, qset: str
) -> None:
    r = http.get(_api(sn, TABLE), params={"u_controls": qset, "priority": "3"})
    assert [row["short_description"] for row in r.json()["result"]] == ["Gamma web"]


def test_parse_query_groups_or_terms_with_the_term_before() -> None:
    q = parse_query("a=1^ORb=2^c=3^ORDERBYDESCd^NQ")
    assert [[(t.field, t.op, t.value) for t in g] for g in q.groups] == [
        [("a", "=", "1"), ("b", "=", "2")],
        [("c", "=", "3")],
    ]
    assert q.order == (("d", True),)


# -- display values and references -----------------------------------------------------------


@pytest.fixture
def assigned(sn: RunningServiceNow) -> str:
    bob = sn.sim.user_id("bob@example.com")
    dave = sn.sim.user_id("dave@example.com")
    values = {"short_description": "ref", "assigned_to": bob, "issue_manager": dave}
    return sn.sim.human_create(TABLE, {**values, "due_date": "2027-01-31", "state": "3"})["sys_id"]


def test_display_value_false_gives_links_and_raw_utc(
    sn: RunningServiceNow, http: requests.Session, assigned: str
) -> None:
    rec = http.get(_api(sn, f"{TABLE}/{assigned}")).json()["result"]
    bob = sn.sim.user_id("bob@example.com")
    assert rec["assigned_to"] == {"link": _api(sn, f"sys_user/{bob}"), "value": bob}
    assert rec["state"] == "3"
    rec = http.get(
        _api(sn, f"{TABLE}/{assigned}"), params={"sysparm_exclude_reference_link": "true"}
    ).json()["result"]
    assert rec["assigned_to"] == bob


def test_display_value_true_and_all(
    sn: RunningServiceNow, http: requests.Session, assigned: str
) -> None:
    bob = sn.sim.user_id("bob@example.com")
    raw = sn.sim.record(TABLE, assigned)
    rec = http.get(
        _api(sn, f"{TABLE}/{assigned}"), params={"sysparm_display_value": "true"}
    ).json()["result"]
    assert rec["assigned_to"] == {"display_value": "Bob Brown", "link": _api(sn, f"sys_user/{bob}")}
    assert rec["state"] == "Respond"
    # date-times are shown in the viewer's zone (admin: America/Los_Angeles), never equal to UTC
    assert rec["sys_updated_on"] != raw["sys_updated_on"]
    rec = http.get(
        _api(sn, f"{TABLE}/{assigned}"),
        params={"sysparm_display_value": "all", "sysparm_exclude_reference_link": "true"},
    ).json()["result"]
    assert rec["state"] == {"display_value": "Respond", "value": "3"}
    assert rec["assigned_to"] == {"display_value": "Bob Brown", "value": bob}
    assert rec["sys_updated_on"]["value"] == raw["sys_updated_on"]


def test_dot_walked_fields(sn: RunningServiceNow, http: requests.Session, assigned: str) -> None:
    rec = http.get(
        _api(sn, f"{TABLE}/{assigned}"),
        params={"sysparm_fields": "number,assigned_to.email"},
    ).json()["result"]
    assert rec == {
        "number": sn.sim.record(TABLE, assigned)["number"],
        "assigned_to.email": "bob@example.com",
    }
    r = http.get(_api(sn, TABLE), params={"sysparm_query": "assigned_to.email=bob@example.com"})
    assert assigned in {row["sys_id"] for row in r.json()["result"]}


# -- dictionary, choices, journal ------------------------------------------------------------


def test_choices_and_dictionary_are_tables(sn: RunningServiceNow, http: requests.Session) -> None:
    r = http.get(
        _api(sn, "sys_choice"),
        params={
            "sysparm_query": f"name={TABLE}^element=state^inactive=false^ORDERBYsequence",
            "sysparm_fields": "value,label",
        },
    )
    assert [c["label"] for c in r.json()["result"]] == [
        "New",
        "Analyze",
        "Respond",
        "Review",
        "Closed Complete",
        "Closed Incomplete",
    ]
    r = http.get(
        _api(sn, "sys_dictionary"),
        params={"sysparm_query": f"name={TABLE}", "sysparm_fields": "element"},
    )
    columns = {c["element"] for c in r.json()["result"]}
    assert {"u_controls", "u_scheduled_completion_date"} <= columns


def _rows(http: requests.Session, sn: RunningServiceNow, table: str, query: str) -> list[Any]:
    r = http.get(_api(sn, table), params={"sysparm_query": query})
    assert r.status_code == 200
    return list(r.json()["result"])


def test_a_grc_issue_extends_task_and_its_inherited_columns_are_defined_there(
    sn: RunningServiceNow, http: requests.Session
) -> None:
    (issue,) = _rows(http, sn, "sys_db_object", f"name={TABLE}")
    (task,) = _rows(http, sn, "sys_db_object", "name=task")
    assert issue["super_class"]["value"] == task["sys_id"]
    # inherited columns: one dictionary row, under name=task
    rows = _rows(
        http,
        sn,
        "sys_dictionary",
        f"nameINtask,{TABLE}^elementINshort_description,priority,sys_id",
    )
    assert {(r["name"], r["element"]) for r in rows} == {
        ("task", "short_description"),
        ("task", "priority"),
        ("task", "sys_id"),
    }
    assert {r["max_length"] for r in rows if r["element"] == "short_description"} == {"160"}
    # priority choices are task's (1 - Critical .. 5 - Planning), state is a GRC override
    priorities = _rows(
        http, sn, "sys_choice", f"nameINtask,{TABLE}^element=priority^ORDERBYsequence"
    )
    assert {p["name"] for p in priorities} == {"task"}
    assert priorities[-1]["label"] == "5 - Planning"
    task_states = _rows(http, sn, "sys_choice", "name=task^element=state^ORDERBYsequence")
    assert task_states[0]["label"] == "Pending"


def test_a_grc_issue_takes_every_real_state_and_priority(
    sn: RunningServiceNow, assigned: str
) -> None:
    for label in ("Closed Incomplete", "Closed Complete"):
        row = sn.sim.human_update(TABLE, assigned, {"state": label})
        assert row["state"] == {b: a for a, b in GRC_ISSUE_STATES}[label]
    assert sn.sim.human_update(TABLE, assigned, {"priority": "5 - Planning"})["priority"] == "5"


def test_e_mail_matches_in_any_case_and_a_service_account_has_none(
    sn: RunningServiceNow, http: requests.Session
) -> None:
    (erin,) = _rows(http, sn, "sys_user", "email=erin.evans@EXAMPLE.com")
    assert erin["email"] == "Erin.Evans@Example.com"
    (svc,) = _rows(http, sn, "sys_user", f"user_name={SERVICE_ACCOUNT_USER}")
    assert svc["email"] == "" and svc["active"] == "true"


def test_work_notes_and_comments_go_to_the_journal(
    sn: RunningServiceNow, http: requests.Session, assigned: str
) -> None:
    http.patch(_api(sn, f"{TABLE}/{assigned}"), json={"work_notes": "first"})
    sn.sim.human_work_note(TABLE, assigned, "second", element="comments")
    rec = http.get(_api(sn, f"{TABLE}/{assigned}")).json()["result"]
    assert rec["work_notes"] == "" and rec["sys_mod_count"] == "2"
    r = http.get(
        _api(sn, "sys_journal_field"),
        params={"sysparm_query": f"element_id={assigned}^ORDERBYsys_created_on"},
    )
    entries = [(e["element"], e["value"], e["sys_created_by"]) for e in r.json()["result"]]
    assert entries == [("work_notes", "first", "admin"), ("comments", "second", "dave.analyst")]


def test_data_policy_refuses_a_state_without_its_fields(
    sn: RunningServiceNow, http: requests.Session, assigned: str
) -> None:
    sn.sim.require_for_state(TABLE, "Closed Complete", ["close_notes"])
    r = http.patch(_api(sn, f"{TABLE}/{assigned}"), json={"state": "5"})
    assert r.status_code == 403
    assert "mandatory: Close notes" in r.json()["error"]["detail"]
    r = http.patch(_api(sn, f"{TABLE}/{assigned}"), json={"state": "5", "close_notes": "done"})
    assert r.status_code == 200


# -- batch ---------------------------------------------------------------------------------------


def test_batch_api_runs_each_request(sn: RunningServiceNow, http: requests.Session) -> None:
    def b64(data: object) -> str:
        return base64.b64encode(json.dumps(data).encode()).decode()

    body = {
        "batch_request_id": 7,
        "rest_requests": [
            {"id": "a", "method": "POST", "url": f"/api/now/table/{TABLE}",
             "headers": [{"name": "Content-Type", "value": "application/json"}],
             "body": b64({"short_description": "batched"})},
            {"id": "b", "method": "GET", "url": f"/api/now/table/{TABLE}/{MISSING}",
             "headers": []},
        ],
    }  # fmt: skip
    before = sn.sim.control.total_calls()
    r = http.post(f"{sn.url}/api/now/v1/batch", json=body)
    assert sn.sim.control.total_calls() == before + 1
    data = r.json()
    assert data["batch_request_id"] == "7" and data["unserviced_requests"] == []
    by_id = {s["id"]: s for s in data["serviced_requests"]}
    assert by_id["a"]["status_code"] == 201
    created = json.loads(base64.b64decode(by_id["a"]["body"]))["result"]
    assert sn.sim.record(TABLE, created["sys_id"])["short_description"] == "batched"
    assert by_id["b"]["status_code"] == 404


# -- faults -------------------------------------------------------------------------------------


def test_faults_through_the_control_api(sn: RunningServiceNow, http: requests.Session) -> None:
    assert http.post(f"{sn.url}/_sim/faults", json={"status": 429, "count": 1, "retry_after": 7}).ok
    r = http.get(_api(sn, "sys_user"))
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"
    assert all(
        h in r.headers for h in ("X-RateLimit-Limit", "X-RateLimit-Reset", "X-RateLimit-Rule")
    )
    assert r.json()["error"]["message"] == "Rate limit exceeded"
    http.post(f"{sn.url}/_sim/faults", json={"status": 503, "count": 1})
    r = http.get(_api(sn, "sys_user"))
    assert r.status_code == 503 and r.json()["status"] == "failure"
    assert http.get(_api(sn, "sys_user")).status_code == 200


def test_dropped_connection_and_counters(sn: RunningServiceNow, http: requests.Session) -> None:
    http.post(f"{sn.url}/_sim/reset")
    http.post(f"{sn.url}/_sim/faults", json={"kind": "drop", "count": 1})
    with pytest.raises(requests.RequestException):
        http.get(_api(sn, "sys_user")).json()
    http.get(_api(sn, "sys_user"))
    calls = http.get(f"{sn.url}/_sim/calls").json()
    assert calls["by_endpoint"] == {"GET /api/now/table/sys_user": 2}
    http.post(f"{sn.url}/_sim/latency", json={"ms": 5})
    assert sn.sim.control.latency_ms == 5


# -- state ----------------------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sn.json"
    with start_servicenow_simulator(tls_dir=tmp_path / "tls", state=state) as run:
        sys_id = run.sim.human_create(TABLE, {"short_description": "kept"})["sys_id"]
    with start_servicenow_simulator(tls_dir=tmp_path / "tls", state=state) as run:
        assert run.sim.record(TABLE, sys_id)["short_description"] == "kept"
        again = run.sim.human_create(TABLE, {"short_description": "next"})
        assert again["number"] != run.sim.record(TABLE, sys_id)["number"]


def test_serve_prints_url_and_ca_and_saves_state_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    code = (
        "from pathlib import Path; from poam_sync.simulators.servicenow import serve; "
        f"serve(host='127.0.0.1', port=0, tls_dir=Path({str(tmp_path)!r}), "
        f"state=Path({str(state)!r}), latency_ms=0)"
    )
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=root
    ) as child:
        try:
            assert child.stdout is not None
            url = child.stdout.readline().rsplit(" ", 1)[-1].strip()
            ca = child.stdout.readline().split(": ", 1)[1].strip()
            assert url.startswith("https://127.0.0.1:") and Path(ca).is_file()
            with requests.Session() as s:
                s.trust_env = False
                s.verify = ca
                r = s.post(
                    f"{url}/api/now/table/{TABLE}",
                    json={"short_description": "by hand"},
                    auth=("admin", "sim-password"),
                )
            assert r.status_code == 201
        finally:
            child.terminate()
            assert child.wait(timeout=30) == 0
    saved = json.loads(state.read_text())
    assert any(r["short_description"] == "by hand" for r in saved["rows"][TABLE].values())
