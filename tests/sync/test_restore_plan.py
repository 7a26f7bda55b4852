"""Planning against a store that does not know our stamped records (pure, no I/O): restored,
adopted, re-bound to a re-imported item, or reported as duplicates; never created again."""

from __future__ import annotations

from dataclasses import replace

from poam_sync.connectors.base import RemoteRecord, Stamp
from poam_sync.sync.imports import rebind_stamps
from poam_sync.sync.plan import AdoptRemote, CreateRemote, plan
from tests.sync.test_plan import connector, item, record

OLD_UUID = "00000000-0000-4000-8000-0000000000aa"


def stamped(remote_id: str, uuid: str = OLD_UUID, poam_id: str = "V-1") -> RemoteRecord:
    return replace(record(remote_id), stamp=Stamp("acme", poam_id, uuid))


def test_an_empty_store_restores_the_item_under_the_stamp_and_adopts_its_other_records() -> None:
    jira = connector("jira", linked=False, pulled=[stamped("10001")])
    snow = connector("servicenow", linked=False, pulled=[stamped("sn-1")])  # imports off too

    result = plan({}, [jira, snow], {})

    (restored,) = result.items
    assert restored.new_item is not None
    assert (restored.new_item.uuid, restored.new_item.poam_id) == (OLD_UUID, "V-1")
    assert restored.new_item.system == "acme" and restored.new_item.title == "Weak TLS"
    assert [type(a).__name__ for a in restored.actions if isinstance(a, AdoptRemote)] == [
        "AdoptRemote"
    ]
    assert not [a for a in restored.actions if isinstance(a, CreateRemote)]
    assert result.skipped == ()


def test_a_re_imported_item_with_a_new_uuid_adopts_the_records_stamped_for_its_poam_id() -> None:
    here = item()  # V-1 of acme, under a uuid the stamps do not know
    states = [
        connector("jira", linked=False, pulled=[stamped("10001")]),
        connector("servicenow", linked=False, pulled=[stamped("sn-1")]),
    ]

    result = plan({here.uuid: here}, rebind_stamps({here.uuid: here}, states), {})

    (p,) = result.items
    assert p.new_item is None
    assert sorted(a.connector for a in p.actions if isinstance(a, AdoptRemote)) == [
        "jira",
        "servicenow",
    ]
    assert not [a for a in p.actions if isinstance(a, CreateRemote)]


def test_a_second_record_with_one_stamp_is_a_duplicate_said_and_never_linked() -> None:
    jira = connector("jira", linked=False, pulled=[stamped("10001"), stamped("10002")])

    result = plan({}, [jira], {})

    (restored,) = result.items
    assert restored.new_item is not None and restored.new_item.uuid == OLD_UUID
    (why,) = result.skipped
    assert "a duplicate" in why and "KEY-10002" in why and "KEY-10001" in why


def test_a_stamped_record_for_an_item_linked_elsewhere_is_a_duplicate_not_a_rebind() -> None:
    here = item()
    jira = connector("jira", linked=True, pulled=[record("10001"), stamped("10009")])

    states = rebind_stamps({here.uuid: here}, [jira])
    result = plan({here.uuid: here}, states, {})

    assert states[0].pulled["10009"].stamp == Stamp("acme", "V-1", OLD_UUID)  # left alone
    (why,) = result.skipped
    assert "KEY-10009" in why and "a duplicate" in why
    assert not [a for _p, a in result.actions() if isinstance(a, AdoptRemote | CreateRemote)]
