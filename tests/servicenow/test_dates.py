"""Due dates on a date/time column: stored in UTC, shown in each person's zone, and synced as
the day they fall on in the instance's time zone, across daylight-saving changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.simulators.servicenow import RunningServiceNow
from poam_sync.testing import new_stamp

Make = Callable[..., ServiceNowConnector]
TABLE = "sn_grc_issue"
FIELDS = {"title": "Outdated OpenSSL", "status": "open", "original_risk": "high"}


@pytest.fixture
def new_york(sn: RunningServiceNow) -> Iterator[RunningServiceNow]:
    """An instance whose glide.sys.default.tz is America/New_York."""
    sn.sim.set_time_zone("America/New_York")
    yield sn
    sn.sim.set_time_zone("America/Los_Angeles")


# -- the simulator ----------------------------------------------------------------------------


def test_a_date_time_is_stored_in_utc_and_shown_in_the_viewers_zone(
    new_york: RunningServiceNow, http: requests.Session
) -> None:
    sn = new_york
    row = sn.sim.human_create(TABLE, {"short_description": "x", "due_date": "2026-03-09 04:00:00"})
    url = f"{sn.url}/api/now/table/{TABLE}/{row['sys_id']}"
    raw = http.get(url, params={"sysparm_fields": "due_date"}).json()["result"]
    assert raw == {"due_date": "2026-03-09 04:00:00"}  # Table API text is UTC
    shown = http.get(
        url, params={"sysparm_fields": "due_date", "sysparm_display_value": "true"}
    ).json()["result"]
    assert shown == {"due_date": "2026-03-08 21:00:00"}  # admin's zone: Los Angeles (PDT)
    zone = sn.sim.records("sys_properties", "name=glide.sys.default.tz")
    assert [r["value"] for r in zone] == ["America/New_York"]


def test_a_person_enters_a_due_date_in_their_own_zone(new_york: RunningServiceNow) -> None:
    sn = new_york
    row = sn.sim.human_create(TABLE, {"short_description": "x"})
    sn.sim.human_update(TABLE, row["sys_id"], {"due_date": "2026-11-01 09:00:00"}, user="carol")
    assert sn.sim.record(TABLE, row["sys_id"])["due_date"] == "2026-11-01 00:00:00"  # Tokyo


# -- the connector ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "stored"),
    [
        ("2026-03-07", "2026-03-07 05:00:00"),  # EST, the day before daylight saving time
        ("2026-03-08", "2026-03-08 05:00:00"),  # the change happens at 02:00 that day
        ("2026-03-09", "2026-03-09 04:00:00"),  # EDT
        ("2026-10-31", "2026-10-31 04:00:00"),  # EDT
        ("2026-11-01", "2026-11-01 04:00:00"),  # back to EST at 02:00 that day
        ("2026-11-02", "2026-11-02 05:00:00"),  # EST
    ],
)
def test_a_due_date_is_the_first_second_of_its_day_in_the_instances_zone(
    make_connector: Make, new_york: RunningServiceNow, day: str, stored: str
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), {**FIELDS, "due_date": day}).record
    assert new_york.sim.record(TABLE, rec.remote_id)["due_date"] == stored
    assert rec.fields["due_date"] == day
    assert c.get(rec.remote_id).fields["due_date"] == day
    assert c.update(rec.remote_id, {"due_date": "2026-03-09"}).record.fields["due_date"] == (
        "2026-03-09"
    )
    assert new_york.sim.record(TABLE, rec.remote_id)["due_date"] == "2026-03-09 04:00:00"


def test_a_due_date_set_by_a_person_reads_as_its_day_in_the_instances_zone(
    make_connector: Make, new_york: RunningServiceNow
) -> None:
    c = make_connector()
    rec = c.create(new_stamp(), {**FIELDS, "due_date": "2026-03-10"}).record
    # 09:00 on 9 March in Tokyo is 20:00 on 8 March in New York
    new_york.sim.human_update(
        TABLE, rec.remote_id, {"due_date": "2026-03-09 09:00:00"}, user="carol"
    )
    assert c.get(rec.remote_id).fields["due_date"] == "2026-03-08"
    # 23:30 on 1 November in Chicago (CST) is 00:30 on 2 November in New York
    new_york.sim.human_update(TABLE, rec.remote_id, {"due_date": "2026-11-01 23:30:00"})
    assert c.get(rec.remote_id).fields["due_date"] == "2026-11-02"


def test_the_time_zone_setting_wins_over_the_instances(
    make_connector: Make, new_york: RunningServiceNow
) -> None:
    c = make_connector(time_zone="Europe/Berlin")
    rec = c.create(new_stamp(), {**FIELDS, "due_date": "2026-03-29"}).record  # EU DST starts
    assert new_york.sim.record(TABLE, rec.remote_id)["due_date"] == "2026-03-28 23:00:00"
    assert c.check()["time_zone"] == "Europe/Berlin (settings)"
    assert make_connector().check()["time_zone"] == "America/New_York (glide.sys.default.tz)"


def test_a_milestone_due_date_on_a_date_column_stays_a_day(
    make_connector: Make, new_york: RunningServiceNow
) -> None:
    ms = [{"id": "1", "description": "Patch", "due_date": "2026-03-08", "status": "open"}]
    rec = make_connector().create(new_stamp(), {**FIELDS, "milestones": ms}).record
    (child,) = new_york.sim.records("sn_irm_cont_auth_milestone_task", f"parent={rec.remote_id}")
    assert child["due_date"] == "2026-03-08"
    assert rec.fields["milestones"] == ms


def test_an_unknown_time_zone_setting_is_refused(sn: RunningServiceNow) -> None:
    from pydantic import ValidationError

    from poam_sync.connectors.servicenow.settings import ServiceNowSettings

    with pytest.raises(ValidationError, match="no time zone"):
        ServiceNowSettings(url=sn.url, user="a", password="b", time_zone="Mars/Olympus")
