"""The change log's hash chain: verify passes, and catches edits and deletions behind our back
(made after dropping the append-only triggers, as a database administrator could)."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading

import pytest
import sqlalchemy as sa

from poam_sync.errors import ChainBroken
from poam_sync.model import Status
from poam_sync.store import Store

from .factory import make_item
from .tamper import drop_append_only_guards


def _fill(store: Store, n: int = 3) -> None:
    with store.begin() as tx:
        for i in range(1, n + 1):
            tx.save(make_item(f"V-{i}"), source="import", actor="ann", batch_id="b1")
    with store.begin() as tx:
        tx.save(make_item("V-1", status=Status.REMEDIATING), source="jira", actor="bob")


def test_verify_passes_on_an_untouched_log(store: Store) -> None:
    empty = store.verify_log()
    assert (empty.ok, empty.rows_checked, empty.first_bad_seq) == (True, 0, None)
    _fill(store)
    result = store.verify_log()
    assert result.ok
    assert result.rows_checked == len(store.log())
    assert result.first_bad_seq is None
    result.raise_if_broken()


def test_the_hash_is_sha256_of_prev_hash_and_the_canonical_row(store: Store) -> None:
    """docs/store.md promises this formula; an auditor can recompute it without our code."""
    _fill(store, 1)
    row = store.log()[1]
    canonical = json.dumps(
        {
            "seq": row.seq,
            "at": row.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "item_uuid": row.item_uuid,
            "system": row.system,
            "poam_id": row.poam_id,
            "field": row.field,
            "old_value": row.old_value,
            "new_value": row.new_value,
            "source": row.source,
            "actor": row.actor,
            "reason": row.reason,
            "batch_id": row.batch_id,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert row.hash == hashlib.sha256(f"{row.prev_hash}\n{canonical}".encode()).hexdigest()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("new_value", """'"closed"'"""),
        ("new_value", "'not json'"),
        ("actor", "'mallory'"),
        ("at", "'2020-01-01T00:00:00.000000Z'"),
    ],
)
def test_an_edited_row_is_named(store: Store, raw: sa.Engine, column: str, value: str) -> None:
    _fill(store)
    target = store.log()[4].seq
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text(f"UPDATE change_log SET {column} = {value} WHERE seq = {target}"))
    result = store.verify_log()
    assert not result.ok
    assert result.first_bad_seq == target
    assert result.rows_checked == target - 1
    assert f"row {target} was altered" in result.message
    with pytest.raises(ChainBroken) as caught:
        result.raise_if_broken()
    assert caught.value.seq == target


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link(
    store: Store, raw: sa.Engine
) -> None:
    _fill(store)
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text("UPDATE change_log SET hash = :h WHERE seq = 3"), {"h": "f" * 64})
    result = store.verify_log()
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_a_deleted_row_is_named(store: Store, raw: sa.Engine) -> None:
    _fill(store)
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text("DELETE FROM change_log WHERE seq = 4"))
    result = store.verify_log()
    assert not result.ok
    assert result.first_bad_seq == 4
    assert result.message == "row 4 is missing (the next row is 5)"


def test_deleting_the_last_rows_is_caught(store: Store, raw: sa.Engine) -> None:
    _fill(store)
    last = store.log()[-1].seq
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text(f"DELETE FROM change_log WHERE seq >= {last - 1}"))
    result = store.verify_log()
    assert not result.ok
    assert result.first_bad_seq == last - 1
    assert result.message == f"rows {last - 1} to {last} are missing at the end of the log"


def test_concurrent_writers_keep_one_linear_chain(db_url: str) -> None:
    """Two Store objects (as two processes would) append from two threads at once."""
    stores = [Store.open(db_url), Store.open(db_url)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(store: Store, prefix: str) -> None:
        try:
            start.wait()
            for i in range(15):
                with store.begin() as tx:
                    tx.save(make_item(f"{prefix}-{i}"), source="cli", actor=prefix)
                    tx.save(
                        make_item(f"{prefix}-{i}", title="retitled"), source="cli", actor=prefix
                    )
        except Exception as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(s, p))
        for s, p in zip(stores, ("A", "B"), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        rows = stores[0].log()
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
        assert {r.actor for r in rows} == {"A", "B"}
        per_item = len([r for r in rows if r.poam_id == "A-0"])
        assert len(rows) == 30 * per_item
        result = stores[1].verify_log()
        assert (result.ok, result.rows_checked) == (True, len(rows))
    finally:
        for s in stores:
            s.close()


def test_a_deleted_chain_head_stops_appends_and_fails_verify(store: Store, raw: sa.Engine) -> None:
    _fill(store)
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text("DELETE FROM chain_head"))
    result = store.verify_log()
    assert (result.ok, result.message) == (False, "the chain head record is missing")
    with pytest.raises(ChainBroken, match="chain head record is missing"), store.begin() as tx:
        tx.save(make_item("V-9"), source="cli", actor="ann")
    assert store.find("V-9") == []
