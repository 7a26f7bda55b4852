"""A failing database becomes a StoreError: one clear message, the transaction rolled back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from poam_sync.errors import StoreError
from poam_sync.model import PoamItem
from poam_sync.store import Store


def test_a_database_error_inside_a_transaction_is_a_store_error_and_rolls_back(
    db_url: str,
) -> None:
    store = Store.open(db_url)
    try:
        with pytest.raises(StoreError, match="database error on") as exc, store.begin() as tx:
            tx.save(PoamItem(poam_id="V-1"), source="cli", actor="t", reason="r")
            tx._conn.execute(sa.text("SELECT * FROM no_such_table"))
        assert "no_such_table" in str(exc.value)
        assert store.items() == []
        assert store.log() == []
        assert store.verify_log().ok
    finally:
        store.close()
