"""The pure three-way plan: one test per situation, each checking the action and its why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from poam_sync.connectors.base import RemoteRecord, Stamp
from poam_sync.model import JsonValue, Note, PoamItem
from poam_sync.sync.plan import (
    NOTES_BASELINE,
    AdoptRemote,
    CloseConflict,
    ConnectorState,
    CreateRemote,
    FieldPolicy,
    LinkBroken,
    LinkInfo,
    OpenConflict,
    PushField,
    PushNote,
    RecordConflict,
    SetBaseline,
    TakeNote,
    TakeRemote,
    plan,
    plan_item,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
FIELDS = frozenset({"title", "status", "due_date", "owner"})


def item(**over: object) -> PoamItem:
    base: dict[str, object] = {
        "poam_id": "V-1",
        "system": "acme",
        "uuid": "00000000-0000-4000-8000-000000000001",
        "title": "Weak TLS",
        "status": "open",
        "due_date": "2027-01-31",
        "owner": {"email": "alice@example.com"},
    }
    base.update(over)
    return PoamItem.model_validate(base)


AGREED: dict[str, JsonValue] = {
    "title": "Weak TLS",
    "status": "open",
    "due_date": "2027-01-31",
    "owner": "alice@example.com",
}


def record(
    remote_id: str = "10001", *, actor: str = "bob@example.com", at: datetime = T0, **fields: object
) -> RemoteRecord:
    values: dict[str, JsonValue] = {**AGREED, **fields}
    return RemoteRecord(
        remote_id=remote_id,
        key=f"KEY-{remote_id}",
        version=at.isoformat(),
        updated_at=at,
        fields=values,
        updated_by=actor,
    )


def identity(_field: str, value: JsonValue) -> JsonValue:
    return value


def connector(
    name: str = "jira",
    *,
    linked: bool = True,
    pulled: list[RemoteRecord] | None = None,
    baseline: Mapping[str, JsonValue] | None = None,
    remote_id: str = "10001",
    **over: object,
) -> ConnectorState:
    uuid = item().uuid
    state = ConnectorState(
        name=name,
        synced_fields=FIELDS,
        project=identity,
        in_scope=lambda _i: True,
        links={uuid: LinkInfo(remote_id, f"KEY-{remote_id}")} if linked else {},
        baselines={uuid: dict(AGREED if baseline is None else baseline)} if linked else {},
        pulled={r.remote_id: r for r in pulled or []},
    )
    return replace(state, **over)  # type: ignore[arg-type]


def kinds(actions: object) -> list[str]:
    return [type(a).__name__ for a in actions]  # type: ignore[attr-defined]


def test_nothing_changed_anywhere_plans_nothing() -> None:
    assert plan_item(item(), [connector(pulled=[record()])], {}).actions == ()


def test_an_echo_of_our_own_write_plans_nothing() -> None:
    # what we wrote comes back with a new version but the agreed values
    echoed = record(at=T0 + timedelta(minutes=3), actor="sync@example.com")
    assert plan_item(item(), [connector(pulled=[echoed])], {}).actions == ()


def test_only_the_remote_moved_takes_the_remote_value() -> None:
    p = plan_item(item(), [connector(pulled=[record(status="remediating")])], {})
    (take,) = [a for a in p.actions if isinstance(a, TakeRemote)]
    assert (take.field, take.old, take.new, take.actor) == (
        "status",
        "open",
        "remediating",
        "bob@example.com",
    )
    assert "changed in jira (KEY-10001)" in take.why and "by bob@example.com" in take.why
    assert not [a for a in p.actions if isinstance(a, PushField)]


def test_only_the_local_value_moved_pushes_it() -> None:
    p = plan_item(item(title="Weak TLS on web tier"), [connector()], {})
    (push,) = p.actions
    assert isinstance(push, PushField)
    assert (push.field, push.value, push.remote_id, push.overridden) == (
        "title",
        "Weak TLS on web tier",
        "10001",
        False,
    )
    assert "KEY-10001" in push.why


def test_both_moved_to_the_same_value_records_a_new_baseline() -> None:
    p = plan_item(item(status="completed"), [connector(pulled=[record(status="completed")])], {})
    assert p.actions == (SetBaseline("jira", "status", "completed", "status agreed: 'completed'"),)


def test_both_moved_differently_is_a_conflict_that_touches_nothing() -> None:
    p = plan_item(
        item(status="risk_accepted"), [connector(pulled=[record(status="completed")])], {}
    )
    (conflict,) = p.actions
    assert isinstance(conflict, RecordConflict)
    assert (conflict.baseline, conflict.local, conflict.remote) == (
        "open",
        "risk_accepted",
        "completed",
    )
    assert conflict.remote_actor == "bob@example.com"
    assert "left for a person to settle" in conflict.why


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (FieldPolicy("authority", "local"), "push"),
        (FieldPolicy("authority", "jira"), "take"),
        (FieldPolicy("authority", "servicenow"), "push"),
        (FieldPolicy("manual"), "conflict"),
    ],
)
def test_field_policy_settles_a_true_conflict(policy: FieldPolicy, expected: str) -> None:
    p = plan_item(
        item(status="risk_accepted"),
        [connector(pulled=[record(status="completed")])],
        {"status": policy},
    )
    if expected == "push":
        (push,) = p.actions
        assert isinstance(push, PushField) and push.overridden and push.overrides == "completed"
        assert "keeps ours" in push.why or ": put back" in push.why
    elif expected == "take":
        take, baseline = p.actions
        assert isinstance(take, TakeRemote) and take.new == "completed"
        assert baseline == SetBaseline("jira", "status", "completed", "status agreed: 'completed'")
    else:
        assert kinds(p.actions) == ["RecordConflict"]


def test_newest_policy_compares_change_times() -> None:
    newer_remote = record(status="completed", at=T0 + timedelta(hours=1))
    policies = {"status": FieldPolicy("newest")}
    older_local = {"status": T0}
    p = plan_item(
        item(status="risk_accepted"),
        [connector(pulled=[newer_remote])],
        policies,
        local_changed_at=older_local,
    )
    assert kinds(p.actions) == ["TakeRemote", "SetBaseline"]
    p = plan_item(
        item(status="risk_accepted"),
        [connector(pulled=[newer_remote])],
        policies,
        local_changed_at={"status": T0 + timedelta(hours=2)},
    )
    assert kinds(p.actions) == ["PushField"]


def test_a_change_in_jira_reaches_servicenow_in_the_same_cycle() -> None:
    jira = connector("jira", pulled=[record(status="completed")])
    snow = connector("servicenow", remote_id="abc")
    p = plan_item(item(), [jira, snow], {})
    take = next(a for a in p.actions if isinstance(a, TakeRemote))
    push = next(a for a in p.actions if isinstance(a, PushField))
    assert take.connector == "jira" and take.new == "completed"
    assert (push.connector, push.field, push.value) == ("servicenow", "status", "completed")


def test_two_remotes_moving_one_field_differently_is_a_conflict_on_both() -> None:
    jira = connector("jira", pulled=[record(status="completed")])
    snow = connector("servicenow", remote_id="abc", pulled=[record("abc", status="risk_accepted")])
    p = plan_item(item(), [jira, snow], {})
    conflicts = [a for a in p.actions if isinstance(a, RecordConflict)]
    assert sorted(c.connector for c in conflicts) == ["jira", "servicenow"]
    assert "changed differently on several sides" in conflicts[0].why
    assert not [a for a in p.actions if isinstance(a, TakeRemote | PushField)]


def test_authority_settles_two_remotes_disagreeing() -> None:
    jira = connector("jira", pulled=[record(status="completed")])
    snow = connector("servicenow", remote_id="abc", pulled=[record("abc", status="risk_accepted")])
    p = plan_item(item(), [jira, snow], {"status": FieldPolicy("authority", "servicenow")})
    take = next(a for a in p.actions if isinstance(a, TakeRemote))
    push = next(a for a in p.actions if isinstance(a, PushField))
    assert (take.connector, take.new) == ("servicenow", "risk_accepted")
    assert (push.connector, push.value) == ("jira", "risk_accepted")


def test_lossy_mapping_is_not_mistaken_for_a_change() -> None:
    def project(field: str, value: JsonValue) -> JsonValue:
        return "open" if field == "status" and value == "investigating" else value

    p = plan_item(item(status="investigating"), [connector(project=project, pulled=[record()])], {})
    assert p.actions == ()


def test_an_unlinked_item_in_scope_is_created() -> None:
    p = plan_item(item(), [connector(linked=False)], {})
    (create,) = p.actions
    assert isinstance(create, CreateRemote)
    assert create.fields == AGREED and not create.check_stamp_first


def test_a_create_in_flight_before_a_crash_checks_the_stamp_first() -> None:
    c = connector(linked=False, pending_intents=frozenset({item().uuid}))
    (create,) = plan_item(item(), [c], {}).actions
    assert isinstance(create, CreateRemote) and create.check_stamp_first
    assert "before a crash" in create.why


def test_an_item_out_of_scope_is_not_created() -> None:
    c = connector(linked=False, in_scope=lambda i: not i.status.is_closed)
    assert plan_item(item(status="completed"), [c], {}).actions == ()


def test_a_stamped_record_without_a_link_is_adopted_never_duplicated() -> None:
    stamped = replace(record(), stamp=Stamp("acme", "V-1", item().uuid))
    p = plan_item(item(), [connector(linked=False, pulled=[stamped])], {})
    assert kinds(p.actions) == ["AdoptRemote"]
    assert isinstance(p.actions[0], AdoptRemote) and p.actions[0].record is stamped


def test_a_broken_link_is_reported_and_nothing_is_recreated() -> None:
    uuid = item().uuid
    c = connector(links={uuid: LinkInfo("10001", "KEY-10001", broken=True)})
    (action,) = plan_item(item(), [c], {}).actions
    assert isinstance(action, LinkBroken)


def test_a_field_never_agreed_takes_the_canonical_value() -> None:
    c = connector(baseline={"title": "Weak TLS"}, pulled=[record(status="remediating")])
    p = plan_item(item(), [c], {})
    pushes = {a.field: a.value for a in p.actions if isinstance(a, PushField)}
    baselines = {a.field: a.value for a in p.actions if isinstance(a, SetBaseline)}
    assert pushes == {"status": "open"}
    assert baselines == {"due_date": "2027-01-31", "owner": "alice@example.com"}


def test_an_open_conflict_stays_untouched_until_the_sides_agree() -> None:
    open_c = {(item().uuid, "status"): OpenConflict(7, "risk_accepted", "completed")}
    still = connector(pulled=[record(status="completed")], open_conflicts=open_c)
    assert plan_item(item(status="risk_accepted"), [still], {}).actions == ()
    agreed = connector(pulled=[record(status="risk_accepted")], open_conflicts=open_c)
    p = plan_item(item(status="risk_accepted"), [agreed], {})
    assert kinds(p.actions) == ["CloseConflict", "SetBaseline"]
    assert isinstance(p.actions[0], CloseConflict) and p.actions[0].conflict_id == 7


def test_comments_are_unioned_and_never_echoed() -> None:
    theirs = Note(id="jira:501", origin="jira", source_id="501", body="Patched web-01")
    ours = Note(id="n-1", origin="local", body="Rescan planned")
    jira = connector("jira", pulled=[replace(record(), notes=(theirs, ours))])
    snow = connector("servicenow", remote_id="abc", baseline={**AGREED, NOTES_BASELINE: ["n-1"]})
    p = plan_item(item(notes=[ours.model_dump()]), [jira, snow], {})
    assert [(type(a).__name__, a.connector) for a in p.actions] == [
        ("TakeNote", "jira"),
        ("PushNote", "servicenow"),
    ]
    assert isinstance(p.actions[0], TakeNote) and p.actions[0].note == theirs
    assert isinstance(p.actions[1], PushNote) and p.actions[1].note == theirs


def test_an_unknown_remote_record_is_imported_and_reaches_the_other_side() -> None:
    new = record("sn-9", title="Found by the GRC office", status="investigating")
    snow = connector("servicenow", linked=False, pulled=[new], allow_import=True, system="acme")
    jira = connector("jira", linked=False)
    result = plan({}, [jira, snow], {})
    (item_plan,) = result.items
    assert item_plan.new_item is not None
    assert item_plan.new_item.title == "Found by the GRC office"
    assert item_plan.new_item.owner is not None
    assert item_plan.new_item.owner.email == "alice@example.com"
    assert item_plan.poam_id == "KEY-sn-9"
    creates = [a for a in item_plan.actions if isinstance(a, CreateRemote)]
    assert [c.connector for c in creates] == ["jira"]


def test_an_unknown_remote_record_is_skipped_when_imports_are_off() -> None:
    result = plan({}, [connector(linked=False, pulled=[record("x")])], {})
    assert result.items == ()
    assert "imports are off" in result.skipped[0]


def test_a_one_sided_remote_edit_of_a_field_the_office_owns_is_put_back_and_says_why() -> None:
    p = plan_item(
        item(),
        [connector(pulled=[record(due_date="2027-06-30")])],
        {"due_date": FieldPolicy("authority", "local")},
    )
    (push,) = p.actions
    assert isinstance(push, PushField) and push.overridden and push.overrides == "2027-06-30"
    assert push.value == "2027-01-31"
    assert "by bob@example.com" in push.why
    assert "owned by the POA&M office: put back" in push.why


def test_a_value_the_connector_refused_is_not_pushed_again_but_other_fields_are() -> None:
    uuid = item().uuid
    blocked = connector(blocked=frozenset({(uuid, "status")}))
    p = plan_item(item(status="completed", title="Renamed"), [blocked], {})
    (push,) = p.actions
    assert isinstance(push, PushField) and push.field == "title"
    # another connector that did not refuse it still gets the status
    other = connector("servicenow", remote_id="20002")
    pushed = plan_item(item(status="completed"), [blocked, other], {})
    assert [(a.connector, a.field) for a in pushed.actions if isinstance(a, PushField)] == [
        ("servicenow", "status")
    ]


def test_a_new_owner_from_a_remote_is_one_person_with_its_name_and_no_organization() -> None:
    changed = replace(
        record(owner="carol@example.com"), people={"Carol@Example.com": "Carol Danvers"}
    )
    p = plan_item(item(), [connector(pulled=[changed])], {})
    (take,) = [a for a in p.actions if isinstance(a, TakeRemote)]
    assert (take.new, take.display_name) == ("carol@example.com", "Carol Danvers")
    assert "name 'Carol Danvers' from jira, organization unknown (cleared)" in take.why
    unnamed = plan_item(item(), [connector(pulled=[record(owner="dan@example.com")])], {})
    (take,) = [a for a in unnamed.actions if isinstance(a, TakeRemote)]
    assert take.display_name is None and "no name, organization unknown" in take.why


def test_an_unknown_remote_record_with_an_unreadable_value_is_skipped_not_half_imported() -> None:
    bad = record("sn-8", title="Bad date", due_date="2026-13-45")
    good = record("sn-9", title="Found by the GRC office")
    snow = connector("servicenow", linked=False, pulled=[bad, good], allow_import=True)
    result = plan({}, [snow], {})
    assert [p.poam_id for p in result.items] == ["KEY-sn-9"]
    (why,) = result.skipped
    assert "KEY-sn-8" in why and "due_date" in why and "not imported" in why


def test_with_nothing_pulled_an_item_still_gets_what_its_conflicts_and_notes_need() -> None:
    # The planner settles most items with one comparison per connector (nothing pulled, every
    # field at its baseline); these have nothing pulled either, but something to do.
    ours = Note(id="n-1", origin="local", body="Rescan planned")
    open_c = {(item().uuid, "status"): OpenConflict(7, "risk_accepted", "open")}
    cases = {
        "a field never agreed, that the remote did not say": (
            item(),
            connector(baseline={"title": "Weak TLS"}),
            None,
        ),
        "a note not there yet": (item(notes=[ours.model_dump()]), connector(), "PushNote"),
        "a conflict both sides now settle": (
            item(),
            connector(open_conflicts=open_c),
            "CloseConflict",
        ),
        "a local change": (item(title="Weak TLS 1.0"), connector(), "PushField"),
    }
    for what, (it, c, expected) in cases.items():
        alone = plan_item(it, [c], {})
        assert expected in kinds(alone.actions) if expected else alone.actions == (), what
        assert plan({it.uuid: it}, [c], {}).items == (alone,), what
    quiet = plan({item().uuid: item()}, [connector(), connector("servicenow", remote_id="abc")], {})
    assert [p.actions for p in quiet.items] == [()]
