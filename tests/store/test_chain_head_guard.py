"""The database refuses to move the chain head anywhere but forward to the log's last row
(migration 0007), on both databases; with the guards dropped, a checkpoint still catches it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from poam_sync import audit_checkpoint as ac
from poam_sync.store import Store

from .factory import make_item
from .tamper import truncate_and_rewrite_head

REFUSED = "the chain head only moves forward to the last row of the change log"


def _fill(store: Store, first: int = 1, n: int = 2) -> None:
    with store.begin() as tx:
        for i in range(first, first + n):
            tx.save(make_item(f"V-{i}"), source="import", actor="ann")


def _head(raw: sa.Engine) -> list[tuple[int, int, str]]:
    with raw.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, seq, hash FROM chain_head ORDER BY id"))
        return [(int(i), int(s), str(h)) for i, s, h in rows]


def _hash_of(raw: sa.Engine, seq: int) -> str:
    with raw.connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT hash FROM change_log WHERE seq = :s"), {"s": seq}
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("statement", "verb"),
    [
        # what hides the last changes once rows are gone: the head pointed back at an earlier row
        ("UPDATE chain_head SET seq = :back, hash = :back_hash", "UPDATE"),
        ("UPDATE chain_head SET seq = seq - 1", "UPDATE"),
        ("UPDATE chain_head SET hash = :back_hash", "UPDATE"),
        # forward, but past the log, or to a hash the log does not hold
        ("UPDATE chain_head SET seq = seq + 5", "UPDATE"),
        ("UPDATE chain_head SET seq = seq + 1, hash = :back_hash", "UPDATE"),
        ("UPDATE chain_head SET id = 2", "UPDATE"),
        ("DELETE FROM chain_head", "DELETE"),
        ("INSERT INTO chain_head (id, seq, hash) VALUES (2, :back, :back_hash)", "INSERT"),
    ],
)
def test_a_direct_statement_on_the_head_fails(
    store: Store, raw: sa.Engine, statement: str, verb: str
) -> None:
    _fill(store)
    before = _head(raw)
    last = before[0][1]
    params = {"back": last - 1, "back_hash": _hash_of(raw, last - 1)}
    with pytest.raises(sa.exc.DBAPIError) as caught, raw.begin() as conn:
        conn.execute(sa.text(statement), params)
    assert f"{REFUSED}: {verb} on chain_head is refused" in str(caught.value)
    assert _head(raw) == before
    assert store.verify_log().ok


def test_replacing_the_head_row_on_sqlite_must_still_name_the_last_row(
    sqlite_url: str,
) -> None:
    with Store.open(sqlite_url) as store:
        _fill(store)
    raw = sa.create_engine(sqlite_url)
    try:
        before = _head(raw)
        back = before[0][1] - 1
        refused = pytest.raises(sa.exc.DBAPIError, match="INSERT on chain_head is refused")
        with refused, raw.begin() as conn:
            conn.execute(
                sa.text("INSERT OR REPLACE INTO chain_head (id, seq, hash) VALUES (1, :s, :h)"),
                {"s": back, "h": _hash_of(raw, back)},
            )
        assert _head(raw) == before
    finally:
        raw.dispose()


def test_truncate_of_the_head_fails_on_postgresql(postgres_url: str) -> None:
    with Store.open(postgres_url) as store:
        _fill(store)
    raw = sa.create_engine(postgres_url)
    try:
        before = _head(raw)
        refused = pytest.raises(sa.exc.DBAPIError, match="TRUNCATE on chain_head is refused")
        with refused, raw.begin() as conn:
            conn.execute(sa.text("TRUNCATE chain_head"))
        assert _head(raw) == before
    finally:
        raw.dispose()


def test_appends_move_the_head_forward(store: Store, raw: sa.Engine) -> None:
    _fill(store)
    _fill(store, first=3, n=1)
    with store.begin() as tx:
        tx.save(make_item("V-1", title="retitled"), source="cli", actor="bob")
    last = store.log()[-1]
    assert _head(raw) == [(1, last.seq, last.hash)]
    assert store.verify_log().ok


def test_with_the_guards_dropped_a_checkpoint_catches_the_rewritten_head(
    store: Store, raw: sa.Engine, tmp_path: Path
) -> None:
    key = tmp_path / "poam-sync.key"
    ac.generate_key(key)
    _fill(store, n=3)
    signed = ac.make_checkpoint(store, ac.load_private_key(key, env={}))
    last = signed.checkpoint.seq
    truncate_and_rewrite_head(raw, keep=last - 3)  # drops the 0003 and 0007 triggers first
    assert store.verify_log().ok  # the chain alone cannot tell
    result = ac.check(store, signed, ac.verifying_key(None, key, env={}))
    assert not result.ok
    assert f"rows {last - 2} to {last} were removed" in result.message
