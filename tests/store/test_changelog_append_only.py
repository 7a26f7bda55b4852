"""The database itself refuses to rewrite the change log (migration 0003), on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from poam_sync.errors import StoreError
from poam_sync.store import Store

from .factory import make_item
from .tamper import drop_append_only_guards


def _fill(store: Store) -> None:
    with store.begin() as tx:
        tx.save(make_item("V-1"), source="import", actor="ann")
        tx.save(make_item("V-2"), source="import", actor="ann")


def _rows(raw: sa.Engine) -> list[tuple[int, str]]:
    with raw.connect() as conn:
        return [
            (int(seq), str(value))
            for seq, value in conn.execute(
                sa.text("SELECT seq, new_value FROM change_log ORDER BY seq")
            )
        ]


@pytest.mark.parametrize(
    ("statement", "verb"),
    [
        ("UPDATE change_log SET new_value = '\"closed\"' WHERE seq = 2", "UPDATE"),
        ("UPDATE change_log SET actor = 'mallory'", "UPDATE"),
        ("DELETE FROM change_log WHERE seq = 2", "DELETE"),
        ("DELETE FROM change_log", "DELETE"),
    ],
)
def test_a_direct_update_or_delete_fails(
    store: Store, raw: sa.Engine, statement: str, verb: str
) -> None:
    _fill(store)
    before = _rows(raw)
    with pytest.raises(sa.exc.DBAPIError) as caught, raw.begin() as conn:
        conn.execute(sa.text(statement))
    assert f"the change log is append-only: {verb} on change_log is refused" in str(caught.value)
    assert _rows(raw) == before
    assert store.verify_log().ok


def test_truncate_fails_on_postgresql(postgres_url: str) -> None:
    with Store.open(postgres_url) as store:
        _fill(store)
    raw = sa.create_engine(postgres_url)
    try:
        before = _rows(raw)
        refused = pytest.raises(sa.exc.DBAPIError, match="TRUNCATE on change_log is refused")
        with refused, raw.begin() as conn:
            conn.execute(sa.text("TRUNCATE change_log"))
        assert _rows(raw) == before
    finally:
        raw.dispose()


def test_through_the_store_the_refusal_is_a_store_error(store: Store) -> None:
    _fill(store)
    with pytest.raises(StoreError, match="append-only") as caught, store.begin() as tx:
        tx._conn.execute(sa.text("DELETE FROM change_log WHERE seq = 1"))
    assert "rolled back" in (caught.value.hint or "")
    assert store.verify_log().rows_checked == len(store.log())


def test_appends_still_work_and_the_chain_moves_on(store: Store) -> None:
    _fill(store)
    count = len(store.log())
    with store.begin() as tx:
        tx.save(make_item("V-1", title="retitled"), source="cli", actor="bob")
    rows = store.log()
    assert len(rows) == count + 1
    assert rows[-1].new_value == "retitled"
    assert store.verify_log().ok


def test_the_guards_can_only_be_removed_on_purpose(store: Store, raw: sa.Engine) -> None:
    """Dropping the triggers (what a table owner could do) is what the tamper tests simulate."""
    _fill(store)
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text("DELETE FROM change_log WHERE seq = 2"))
    assert not store.verify_log().ok
