"""People on a real Jira site: everyone signs in with their own account, Data Center's e-mail
visibility (show, hide, mask), and the connector never taking a masked e-mail for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.simulators.jira import DEFAULT_TOKEN, RunningJira, start_jira_simulator
from poam_sync.testing import new_stamp
from tests.jira.conftest import FAST_RETRY, settings_for
from tests.jira.test_sim_real_site import Site


def _as(running: RunningJira, login: str, token: str = DEFAULT_TOKEN) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.auth = (login, token)
    return s


@pytest.fixture(params=["show", "hide", "mask"])
def dc(request: pytest.FixtureRequest) -> Iterator[RunningJira]:
    with start_jira_simulator(mode="datacenter", email_visibility=request.param) as running:
        yield running


# -- signing in -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "login"),
    [("cloud", "alice@example.com"), ("datacenter", "alice@example.com"), ("datacenter", "alice")],
)
def test_every_user_signs_in_with_their_own_account(mode: str, login: str) -> None:
    with start_jira_simulator(mode=mode) as running:
        me = _as(running, login).get(f"{running.url}/rest/api/2/myself")
        assert me.status_code == 200
        assert (me.json()["displayName"], me.json()["emailAddress"]) == (
            "Alice Engineer",
            "alice@example.com",
        )
        assert (
            _as(running, login, "wrong").get(f"{running.url}/rest/api/2/myself").status_code == 401
        )
        if mode == "cloud":  # Cloud has no usernames
            assert _as(running, "alice").get(f"{running.url}/rest/api/2/myself").status_code == 401


def test_a_change_over_http_is_made_by_the_user_who_signed_in() -> None:
    with start_jira_simulator(mode="cloud") as running:
        api = f"{running.url}/rest/api/2"
        made = Site(running).create("Weakness")  # as the sync user
        r = _as(running, "bob@example.com").put(
            f"{api}/issue/{made['key']}", json={"fields": {"duedate": "2031-01-31"}}
        )
        assert r.status_code == 204
        history = running.sim.issue(made["key"])["changelog"]["histories"][0]
        assert history["author"]["displayName"] == "Bob Engineer"


# -- Data Center's e-mail visibility ---------------------------------------------------------


def test_data_center_shows_hides_or_masks_e_mails_as_the_site_says(dc: RunningJira) -> None:
    visibility = dc.sim.email_visibility
    s = _as(dc, "sync")
    users = s.get(f"{dc.url}/rest/api/2/user/search", params={"username": "bob"}).json()
    assert [u["name"] for u in users] == ["bob"]
    shown = {"show": "bob@example.com", "hide": None, "mask": "bob at example dot com"}
    assert users[0].get("emailAddress") == shown[visibility]
    by_mail = s.get(f"{dc.url}/rest/api/2/user/search", params={"username": "bob@example.com"})
    assert [u["name"] for u in by_mail.json()] == (["bob"] if visibility == "show" else [])
    # one always sees one's own e-mail
    assert s.get(f"{dc.url}/rest/api/2/myself").json()["emailAddress"] == "sync@example.com"


def test_cloud_has_no_site_wide_e_mail_visibility() -> None:
    with pytest.raises(ValueError, match="each user chooses"):
        start_jira_simulator(mode="cloud", email_visibility="mask")


@pytest.fixture
def masking() -> Iterator[RunningJira]:
    with start_jira_simulator(mode="datacenter", email_visibility="mask") as running:
        yield running


def _connector(running: RunningJira, mapping: JiraMapping, **over: object) -> JiraConnector:
    raw = mapping.model_dump(mode="json") | over
    return JiraConnector(settings_for(running), JiraMapping.model_validate(raw), retry=FAST_RETRY)


def test_a_masked_e_mail_is_matched_by_username_under_users(
    masking: RunningJira, mapping: JiraMapping
) -> None:
    c = _connector(masking, mapping)
    try:
        rec = c.create(new_stamp(), {"title": "Weakness", "owner": "alice@example.com"}).record
        assert (rec.fields["owner"], rec.problems) == ("alice@example.com", ())
        masking.sim.human_assign(rec.key, "bob@example.com")
        got = c.get(rec.remote_id)
        assert (got.fields["owner"], got.problems) == ("bob@example.com", ())
    finally:
        c.close()


def test_a_masked_e_mail_nobody_lists_is_reported_never_stored(
    masking: RunningJira, mapping: JiraMapping
) -> None:
    c = _connector(masking, mapping, users=[])
    try:
        rec = c.create(new_stamp(), {"title": "Weakness"}).record
        masking.sim.human_assign(rec.key, "bob@example.com")
        got = c.get(rec.remote_id)
        assert "owner" not in got.fields
        assert [(p.field, p.code) for p in got.problems] == [("owner", "unknown_user")]
        assert "shows its e-mail masked" in got.problems[0].message
        assert "at example dot com" not in repr(got)
        # nor is an owner pushed to Jira as the masked text: nobody matches, it is said
        result = c.update(rec.remote_id, {"owner": "bob@example.com"})
        assert [(p.field, p.code) for p in result.problems] == [("owner", "unknown_user")]
    finally:
        c.close()


# -- the owner as one person -----------------------------------------------------------------


def test_a_record_names_its_owner_with_the_display_name_jira_shows(
    jira_sim: RunningJira, mapping: JiraMapping
) -> None:
    c = _connector(jira_sim, mapping)
    try:
        rec = c.create(new_stamp(), {"title": "Weakness", "owner": "alice@example.com"}).record
        assert rec.people == {"alice@example.com": "Alice Engineer"}
        jira_sim.sim.human_assign(rec.key, "carol@example.com")  # hidden on Cloud: users: line
        assert c.get(rec.remote_id).people == {"carol@example.com": "Carol Engineer"}
        jira_sim.sim.human_assign(rec.key, None)
        assert c.get(rec.remote_id).people == {}
    finally:
        c.close()
