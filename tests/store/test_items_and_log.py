"""Saving items: one change-log row per changed field, nothing for no change, one transaction."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date

import pytest
import sqlalchemy as sa

from poam_sync.errors import ItemNotFound, StoreError
from poam_sync.model import Person, Status, diff_items
from poam_sync.store import Store

from .factory import make_item


def test_new_item_logs_each_non_empty_field(store: Store) -> None:
    item = make_item()
    with store.begin() as tx:
        rows = tx.save(item, source="cli", actor="ann", reason="typed in", batch_id="b1")

    expected = diff_items(None, item)
    assert [r.field for r in rows] == list(expected)
    assert {r.field: r.new_value for r in rows} == {k: v[1] for k, v in expected.items()}
    by_field = {r.field: r for r in rows}
    assert by_field["controls"].new_value == ["AC-2(1)"]
    assert by_field["due_date"].new_value == "2026-02-04"
    assert by_field["owner"].new_value == {
        "email": "ann@example.gov",
        "name": "Ann Lee",
        "org": None,
    }
    assert all(r.old_value is None for r in rows)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert {(r.source, r.actor, r.reason, r.batch_id) for r in rows} == {
        ("cli", "ann", "typed in", "b1")
    }
    assert {(r.item_uuid, r.system, r.poam_id) for r in rows} == {(item.uuid, "acme", "V-1")}
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert store.item("acme", "V-1") == item


def test_changed_fields_give_one_row_each_with_old_and_new(store: Store) -> None:
    with store.begin() as tx:
        first = tx.save(make_item(), source="import", actor=None)
    changed = make_item(status=Status.REMEDIATING, due_date=date(2026, 3, 1))
    with store.begin() as tx:
        rows = tx.save(changed, source="jira", actor="bob@example.gov", reason="synced")

    assert [(r.field, r.old_value, r.new_value) for r in rows] == [
        ("status", "open", "remediating"),
        ("due_date", "2026-02-04", "2026-03-01"),
    ]
    assert rows[0].seq == first[-1].seq + 1
    assert rows[0].prev_hash == first[-1].hash
    assert store.item("acme", "V-1").status is Status.REMEDIATING
    assert [r.seq for r in store.log()] == list(range(1, len(first) + 3))


def test_saving_the_same_item_again_writes_nothing(store: Store) -> None:
    item = make_item()
    with store.begin() as tx:
        tx.save(item, source="cli", actor="ann")
    before = store.log()
    # a different provenance, and even a different uuid, is not a change of the item
    again = make_item(provenance={"format": "csv", "file": "renamed.csv", "row": 7})
    with store.begin() as tx:
        assert tx.save(again, source="cli", actor="ann") == []
    assert store.log() == before


def test_existing_item_keeps_its_stored_uuid(store: Store) -> None:
    original = make_item()
    with store.begin() as tx:
        tx.save(original, source="import", actor=None)
    newer = make_item(title="Renamed weakness")
    assert newer.uuid != original.uuid
    with store.begin() as tx:
        rows = tx.save(newer, source="import", actor=None)
        assert tx.get_by_uuid(original.uuid) is not None
        assert tx.get_by_uuid(newer.uuid) is None
    assert [r.item_uuid for r in rows] == [original.uuid]
    assert store.item("acme", "V-1").uuid == original.uuid
    assert store.item("acme", "V-1").title == "Renamed weakness"


def test_a_uuid_taken_by_another_item_is_replaced(store: Store) -> None:
    first = make_item("V-1")
    clash = make_item("V-2", uuid=first.uuid)
    with store.begin() as tx:
        tx.save(first, source="import", actor=None)
        rows = tx.save(clash, source="import", actor=None)
    stored = store.item("acme", "V-2")
    assert stored.uuid != first.uuid
    assert {r.item_uuid for r in rows} == {stored.uuid}
    assert store.item("acme", "V-1").uuid == first.uuid


def test_reads_by_key_uuid_system_and_poam_id(store: Store) -> None:
    a = make_item("V-1")
    b = make_item("V-2", system="beta")
    c = make_item("V-1", system="beta")
    with store.begin() as tx:
        for item in (c, b, a):
            tx.save(item, source="import", actor=None)
        assert tx.get("beta", "V-2") == b
        assert tx.get("beta", "V-3") is None
        assert tx.get_by_uuid(c.uuid) == c
        assert [i.key for i in tx.all_items()] == [
            ("acme", "V-1"),
            ("beta", "V-1"),
            ("beta", "V-2"),
        ]
    assert [i.key for i in store.items()] == [("acme", "V-1"), ("beta", "V-1"), ("beta", "V-2")]
    assert [i.key for i in store.items("beta")] == [("beta", "V-1"), ("beta", "V-2")]
    assert [i.key for i in store.find("V-1")] == [("acme", "V-1"), ("beta", "V-1")]
    assert store.find("V-9") == []
    with pytest.raises(ItemNotFound, match="no item 'V-9' in system 'acme'"):
        store.item("acme", "V-9")


def test_indexed_columns_follow_the_item(store: Store, raw: sa.Engine) -> None:
    with store.begin() as tx:
        tx.save(make_item(), source="import", actor=None)
        tx.save(
            make_item(owner=Person(email="cy@example.gov"), status=Status.COMPLETED, due_date=None),
            source="cli",
            actor="cy",
        )
    with raw.connect() as conn:
        row = conn.execute(
            sa.text("SELECT system, poam_id, status, due_date, owner_email FROM items")
        ).one()
    assert tuple(row) == ("acme", "V-1", "completed", None, "cy@example.gov")


def test_an_error_inside_begin_leaves_neither_item_nor_log_rows(store: Store) -> None:
    with store.begin() as tx:
        tx.save(make_item("V-1"), source="cli", actor="ann")
    before = store.log()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.begin() as tx:
        tx.save(make_item("V-2"), source="cli", actor="ann")
        tx.save(make_item("V-1", title="changed"), source="cli", actor="ann")
        assert tx.get("acme", "V-2") is not None
        raise Boom

    assert [i.poam_id for i in store.items()] == ["V-1"]
    assert store.item("acme", "V-1").title == "Weakness V-1"
    assert store.log() == before
    assert store.verify_log().ok
    # the chain goes on from where the committed log ended
    with store.begin() as tx:
        rows = tx.save(make_item("V-3"), source="cli", actor="ann")
    assert rows[0].seq == before[-1].seq + 1
    assert rows[0].prev_hash == before[-1].hash


def test_log_event_records_a_decision_without_changing_the_item(store: Store) -> None:
    item = make_item()
    with store.begin() as tx:
        tx.save(item, source="import", actor=None)
        row = tx.log_event(
            item_uuid=item.uuid,
            field="due_date",
            old="2026-02-04",
            new="2026-02-04",
            source="cli",
            actor="admin",
            reason="conflict 1 settled: kept the local value",
            batch_id="c-1",
        )
    assert (row.system, row.poam_id, row.field, row.source) == ("acme", "V-1", "due_date", "cli")
    assert store.log()[-1] == row
    assert store.item("acme", "V-1") == item
    assert store.verify_log().ok
    with pytest.raises(ItemNotFound, match="no item has that uuid"), store.begin() as tx:
        tx.log_event(
            item_uuid="nope", field="x", old=1, new=2, source="cli", actor=None, reason=None
        )


def test_log_filters_by_item_and_keeps_the_last_rows_in_order(store: Store) -> None:
    a = make_item("V-1")
    b = make_item("V-2")
    with store.begin() as tx:
        tx.save(a, source="import", actor=None)
        tx.save(b, source="import", actor=None)
        tx.save(make_item("V-1", title="new title"), source="cli", actor="ann")
    everything = store.log()
    only_a = store.log(item_uuid=a.uuid)
    assert {r.item_uuid for r in only_a} == {a.uuid}
    assert only_a[-1].field == "title"
    assert only_a[-1].new_value == "new title"
    assert store.log(limit=3) == everything[-3:]
    assert (
        store.log(item_uuid=b.uuid, limit=2)
        == [r for r in everything if r.item_uuid == b.uuid][-2:]
    )


def test_times_come_back_as_aware_utc(store: Store) -> None:
    with store.begin() as tx:
        rows = tx.save(make_item(), source="cli", actor="ann")
    read = store.log()
    assert read == rows
    assert read[0].at.tzinfo is UTC
    assert read[0].at.utcoffset() is not None


def test_rows_turn_into_json_ready_dicts(store: Store) -> None:
    with store.begin() as tx:
        rows = tx.save(make_item(), source="cli", actor="ann")
        outcome = tx.import_items([make_item("V-2")], system="acme", actor="ann", batch_id="b")
    data = json.loads(json.dumps([r.to_json() for r in rows]))
    assert data[0]["seq"] == 1
    assert data[0]["at"] == rows[0].at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert data[0]["at"].endswith("Z")
    assert data[0]["hash"] == rows[0].hash
    assert {r["field"]: r["new_value"] for r in data}["controls"] == ["AC-2(1)"]
    assert outcome.to_json()["created"] == ["V-2"]
    assert store.verify_log().to_json() == {
        "ok": True,
        "rows_checked": len(store.log()),
        "first_bad_seq": None,
        "message": f"{len(store.log())} change-log row(s) verified",
    }


def test_a_nested_write_transaction_is_refused_instead_of_waiting_forever(store: Store) -> None:
    with store.begin() as tx:
        tx.save(make_item("V-1"), source="cli", actor="ann")
        with pytest.raises(StoreError, match="already open in this thread"), store.begin():
            pass
    # the outer transaction was not harmed, and begin() works again afterwards
    assert [i.poam_id for i in store.items()] == ["V-1"]
    with store.begin() as tx:
        tx.save(make_item("V-2"), source="cli", actor="ann")
    assert len(store.items()) == 2


def test_awkward_text_survives_the_log_and_verifies(store: Store) -> None:
    title = 'tab\there, new\nline, \\N, back\\slash, "quotes", é, 😀, \u2028'
    with store.begin() as tx:
        rows = tx.save(make_item(title=title), source="cli", actor="Zoë\tO'Brien", reason="a\\b\nc")
    read = store.log()
    assert read == rows
    assert {r.field: r.new_value for r in read}["title"] == title
    assert read[0].actor == "Zoë\tO'Brien"
    assert read[0].reason == "a\\b\nc"
    assert store.item("acme", "V-1").title == title
    assert store.verify_log().ok
