"""Instance configuration a real site has: choices in several languages, the versioned Table API
answering an empty list with 404 (KB0551763)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.simulators.servicenow import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    RunningServiceNow,
    ServiceNowSimulator,
    start_servicenow_simulator,
)
from poam_sync.testing import new_stamp

from .conftest import FAST_RETRY, FIELDS, TABLE

Make = Callable[..., ServiceNowConnector]


# -- choices per language ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServiceNow]:
    """An instance with the German language plugin; the admin works in German."""
    sim = ServiceNowSimulator(languages=("en", "de"))
    sim.grc_state_rules = "off"
    admin = sim.records("sys_user", f"user_name={ADMIN_USER}")[0]
    sim.rows["sys_user"][admin["sys_id"]]["preferred_language"] = "de"
    run = start_servicenow_simulator(tls_dir=tmp_path_factory.mktemp("sn-de"), sim=sim)
    yield run
    run.stop()


@pytest.fixture
def on_german(german: RunningServiceNow, sn_mapping: ServiceNowMapping) -> Iterator[Make]:
    made: list[ServiceNowConnector] = []

    def make(**over: object) -> ServiceNowConnector:
        values: dict[str, object] = {
            "url": german.url,
            "user": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            "ca_bundle": german.ca_path,
            "page_size": 5,
            **over,
        }
        c = ServiceNowConnector(ServiceNowSettings(**values), sn_mapping, retry=FAST_RETRY)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_a_multi_language_instance_has_a_choice_row_per_language(german: RunningServiceNow) -> None:
    rows = german.sim.records("sys_choice", "name=sn_grc_issue^element=state^value=3")
    assert sorted((r["language"], r["label"]) for r in rows) == [
        ("de", "Reagieren"),
        ("en", "Respond"),
    ]


def test_display_values_follow_the_users_language(german: RunningServiceNow) -> None:
    row = german.sim.human_create(TABLE, {"short_description": "x", "state": "3"})
    s = requests.Session()
    s.trust_env = False
    s.verify = str(german.ca_path)
    s.auth = (ADMIN_USER, ADMIN_PASSWORD)
    got = s.get(
        f"{german.url}/api/now/table/{TABLE}/{row['sys_id']}",
        params={"sysparm_fields": "state,priority", "sysparm_display_value": "true"},
    ).json()["result"]
    assert got == {"state": "Reagieren", "priority": "4 - Niedrig"}


def test_the_connector_takes_the_mappings_language_once(on_german: Make) -> None:
    c = on_german()
    facts = c.check()
    assert sorted(facts["state_choices"].split(", ")) == [
        "Analyze=2",
        "Closed Complete=5",
        "Closed Incomplete=6",
        "New=1",
        "Respond=3",
        "Review=4",
    ]
    assert [(u.what, u.value) for u in c.uncovered()] == [("priority", "5 - Planning")]
    rec = c.create(new_stamp(), {**FIELDS, "status": "remediating"}).record
    # the display values come in German; the record is read by its codes
    assert (rec.fields["status"], rec.fields["original_risk"]) == ("remediating", "high")
    assert c.get(rec.remote_id).fields["status"] == "remediating"


# -- the versioned Table API ------------------------------------------------------------------


def test_v1_answers_an_empty_list_with_404(sn: RunningServiceNow, http: requests.Session) -> None:
    query = {"sysparm_query": "number=NOPE"}
    v1 = http.get(f"{sn.url}/api/now/v1/table/{TABLE}", params=query)
    assert v1.status_code == 404
    assert v1.json()["error"]["message"] == "No Record found"
    assert http.get(f"{sn.url}/api/now/table/{TABLE}", params=query).json() == {"result": []}
    assert http.get(f"{sn.url}/api/now/v2/table/{TABLE}", params=query).status_code == 200


def test_the_connector_takes_a_404_list_for_an_empty_one(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), FIELDS).record
    c.client.list_path = "/api/now/v1/table"
    assert list(c.client.pages(TABLE, ["sys_id"], "number=NOPE", size=5)) == []
    found = list(c.client.select(TABLE, ["sys_id"], f"sys_id={rec.remote_id}"))
    assert [r["sys_id"][0] for r in found] == [rec.remote_id]
    assert c.find_by_stamp(new_stamp()) is None


def test_a_request_cut_mid_body_is_covered_by_the_shared_fault_tests(tmp_path: Path) -> None:
    """(The simulator acts on no request whose body did not arrive whole: see
    tests/test_sim_faults.py::test_servicenow_stores_nothing_from_a_request_cut_mid_body.)"""
    here = Path(__file__).resolve().parents[1] / "test_sim_faults.py"
    assert "def test_servicenow_stores_nothing_from_a_request_cut_mid_body" in here.read_text()
