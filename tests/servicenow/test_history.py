"""Per-field actors: who changed each field last comes from sys_audit where the integration user
may read it, else from the record's sys_updated_by, and the pull's log says which."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from structlog.testing import capture_logs

from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.simulators.servicenow import ADMIN_PASSWORD, INTEGRATION_USER, RunningServiceNow
from poam_sync.testing import new_stamp

from .conftest import FIELDS, TABLE

Make = Callable[..., ServiceNowConnector]


def _edited(make_connector: Make, sn: RunningServiceNow) -> str:
    """A record whose due date alice moved, and whose title bob changed after her."""
    rec = make_connector().create(new_stamp(), FIELDS).record
    sn.sim.human_update(TABLE, rec.remote_id, {"due_date": "2027-04-01"}, user="alice")
    sn.sim.human_update(TABLE, rec.remote_id, {"short_description": "OpenSSL 3"}, user="bob")
    return rec.remote_id


def test_the_simulator_audits_each_changed_field(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    sys_id = _edited(make_connector, sn)
    rows = sn.sim.records("sys_audit", f"documentkey={sys_id}^fieldname=short_description")
    assert [(r["user"], r["oldvalue"], r["newvalue"]) for r in rows] == [
        ("admin", "", "Outdated OpenSSL"),  # the insert
        ("bob", "Outdated OpenSSL", "OpenSSL 3"),
    ]
    (due,) = sn.sim.records("sys_audit", f"documentkey={sys_id}^fieldname=due_date^user=alice")
    assert due["newvalue"] == "2027-04-01 10:00:00"  # UTC, as stored (noon in Berlin, CEST)


def test_reading_history_by_document_key_finds_what_a_full_scan_finds(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    first, second = _edited(make_connector, sn), _edited(make_connector, sn)
    sn.sim.human_update(TABLE, first, {"short_description": "Later"}, user="carol")
    every = sn.sim.records("sys_audit", "documentkeyISNOTEMPTY")  # no key named: a full scan
    for query in (f"documentkey={first}", f"documentkeyIN{second},{first.upper()}"):
        keys = {first, second} if "IN" in query else {first}
        assert sn.sim.records("sys_audit", query) == [r for r in every if r["documentkey"] in keys]


def test_each_field_is_credited_to_whoever_changed_it(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=2)
    sys_id = _edited(make_connector, sn)
    c = make_connector()
    with capture_logs() as logs:
        (rec,) = [r for r in c.pull(since) if r.remote_id == sys_id]
    assert rec.updated_by == "bob"
    assert rec.change_of("due_date").actor == "alice"
    assert rec.change_of("due_date").source == "history"
    assert rec.change_of("title").actor == "bob"
    assert rec.change_of("original_risk").actor == "admin"  # set when it was created
    audit = sn.sim.records("sys_audit", f"documentkey={sys_id}^fieldname=due_date^user=alice")
    assert rec.change_of("due_date").at is not None
    assert rec.change_of("due_date").at.strftime("%Y-%m-%d %H:%M:%S") == audit[0]["sys_created_on"]
    (pulled,) = [e for e in logs if e["event"] == "servicenow.pulled"]
    assert pulled["field_actors"] == "sys_audit"


def test_without_sys_audit_the_last_updater_is_credited_and_the_log_says_so(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=2)
    sys_id = _edited(make_connector, sn)
    sn.sim.restrict_non_admins()
    c = make_connector(user=INTEGRATION_USER, password=ADMIN_PASSWORD)
    with capture_logs() as logs:
        (rec,) = [r for r in c.pull(since) if r.remote_id == sys_id]
    assert rec.field_changes == {}
    change = rec.change_of("due_date")
    assert (change.actor, change.source) == ("bob", "record")
    (pulled,) = [e for e in logs if e["event"] == "servicenow.pulled"]
    assert pulled["field_actors"] == "sys_updated_by"


def test_the_first_pull_reads_no_history(make_connector: Make, sn: RunningServiceNow) -> None:
    sys_id = _edited(make_connector, sn)
    before = sn.sim.control.calls["GET /api/now/table/sys_audit"]
    (rec,) = [r for r in make_connector().pull(None) if r.remote_id == sys_id]
    assert rec.change_of("due_date").source == "record"
    assert sn.sim.control.calls["GET /api/now/table/sys_audit"] == before
