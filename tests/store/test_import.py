"""Import semantics: created / updated / unchanged / missing; re-import is a no-op."""

from __future__ import annotations

from datetime import date

import pytest

from poam_sync.errors import DuplicateItem
from poam_sync.model import PoamItem, Provenance, Status
from poam_sync.store import Store

from .factory import make_item


def _file(*ids: str, **fields: object) -> list[PoamItem]:
    return [
        make_item(
            i, provenance=Provenance(format="fedramp-xlsx", file="poam.xlsx", row=n), **fields
        )
        for n, i in enumerate(ids, start=5)
    ]


def test_first_import_creates_everything(store: Store) -> None:
    with store.begin() as tx:
        outcome = tx.import_items(_file("V-1", "V-2"), system="acme", actor="ann", batch_id="b1")
    assert outcome.created == ["V-1", "V-2"]
    assert (outcome.updated, outcome.unchanged, outcome.missing) == ([], [], [])
    rows = store.log()
    assert outcome.changes == len(rows) > 0
    assert {(r.source, r.actor, r.batch_id) for r in rows} == {("import", "ann", "b1")}
    assert {r.reason for r in rows} == {"imported from poam.xlsx"}
    assert [i.poam_id for i in store.items("acme")] == ["V-1", "V-2"]
    assert store.item("acme", "V-1").provenance == Provenance(
        format="fedramp-xlsx", file="poam.xlsx", row=5
    )
    assert store.verify_log().ok


def test_reimporting_the_same_items_writes_nothing(store: Store) -> None:
    with store.begin() as tx:
        tx.import_items(_file("V-1", "V-2"), system="acme", actor="ann", batch_id="b1")
    before = store.log()
    stored = store.items()
    # parsing the file again gives new uuids: they must not matter
    with store.begin() as tx:
        outcome = tx.import_items(_file("V-1", "V-2"), system="acme", actor="ann", batch_id="b2")
    assert outcome.unchanged == ["V-1", "V-2"]
    assert (outcome.created, outcome.updated, outcome.missing, outcome.changes) == ([], [], [], 0)
    assert store.log() == before
    assert store.items() == stored


def test_a_later_revision_records_each_changed_field(store: Store) -> None:
    with store.begin() as tx:
        tx.import_items(_file("V-1", "V-2", "V-3"), system="acme", actor="ann", batch_id="b1")
    uuid_v1 = store.item("acme", "V-1").uuid
    seq_before = store.log()[-1].seq
    revision = [
        make_item("V-1", status=Status.COMPLETED, completed_on=date(2026, 1, 30)),
        make_item("V-2"),
        make_item("V-4"),
    ]
    with store.begin() as tx:
        outcome = tx.import_items(revision, system="acme", actor="bob", batch_id="b2")

    assert outcome.created == ["V-4"]
    assert outcome.updated == ["V-1"]
    assert outcome.unchanged == ["V-2"]
    assert outcome.missing == ["V-3"]
    new_rows = [r for r in store.log() if r.seq > seq_before]
    assert outcome.changes == len(new_rows)
    v1_rows = [(r.field, r.old_value, r.new_value) for r in new_rows if r.poam_id == "V-1"]
    assert v1_rows == [("status", "open", "completed"), ("completed_on", None, "2026-01-30")]
    assert {(r.source, r.actor, r.batch_id) for r in new_rows} == {("import", "bob", "b2")}
    assert {r.item_uuid for r in new_rows if r.poam_id == "V-1"} == {uuid_v1}
    # missing items are kept, untouched
    assert store.item("acme", "V-3").status is Status.OPEN
    assert store.item("acme", "V-1").uuid == uuid_v1
    assert store.verify_log().ok


def test_dry_run_reports_without_writing(store: Store) -> None:
    with store.begin() as tx:
        tx.import_items(_file("V-1"), system="acme", actor="ann", batch_id="b1")
    before = store.log()
    with store.begin() as tx:
        outcome = tx.import_items(
            [make_item("V-1", title="other"), make_item("V-2")],
            system="acme",
            actor="ann",
            batch_id="b2",
            dry_run=True,
        )
    assert (outcome.created, outcome.updated, outcome.dry_run) == (["V-2"], ["V-1"], True)
    assert outcome.changes > 1
    assert store.log() == before
    assert [i.poam_id for i in store.items()] == ["V-1"]
    assert store.item("acme", "V-1").title == "Weakness V-1"


def test_items_land_in_the_system_imported_into(store: Store) -> None:
    with store.begin() as tx:
        tx.import_items(
            [make_item("V-1", system="default")], system="beta", actor=None, batch_id="b"
        )
        tx.import_items(_file("V-1"), system="acme", actor=None, batch_id="c")
    assert [i.key for i in store.find("V-1")] == [("acme", "V-1"), ("beta", "V-1")]
    beta = store.item("beta", "V-1")
    assert beta.system == "beta"
    # the other system's items are not "missing" from this file
    with store.begin() as tx:
        outcome = tx.import_items(_file("V-1"), system="acme", actor=None, batch_id="d")
    assert outcome.missing == []


def test_same_file_in_two_systems_gets_distinct_uuids(store: Store) -> None:
    items = _file("V-1", "V-2")
    with store.begin() as tx:
        tx.import_items(items, system="acme", actor=None, batch_id="b1")
        tx.import_items(items, system="beta", actor=None, batch_id="b2")
    uuids = {i.uuid for i in store.items()}
    assert len(uuids) == 4
    assert store.item("acme", "V-1").uuid == items[0].uuid


def test_duplicate_ids_in_one_import_are_rejected_and_nothing_written(store: Store) -> None:
    with pytest.raises(DuplicateItem, match="V-2") as caught, store.begin() as tx:
        tx.import_items(_file("V-1", "V-2", "V-2"), system="acme", actor=None, batch_id="b")
    assert caught.value.hint is not None
    assert store.items() == []
    assert store.log() == []
