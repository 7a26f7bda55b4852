"""Settling a conflict, called directly as the CLI, the daemon and the web workbench call it,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from poam_sync.errors import SettlementRefused, UsageError
from poam_sync.model import PoamItem
from poam_sync.store import Store
from poam_sync.sync.conflicts import settle_conflict
from tests.sync.conftest import poam


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    try:
        yield store
    finally:
        store.close()


def conflicted(store: Store) -> tuple[PoamItem, int]:
    """An item whose title was changed here and in Jira to different values."""
    item = poam(1, title="ISSO title")
    with store.begin() as tx:
        tx.save(item, source="cli", actor="isso@example.com", reason="test")
        tx.set_baselines(item.uuid, "jira", {"title": "Weakness number 1"})
        row = tx.open_conflict(
            item_uuid=item.uuid,
            connector="jira",
            field="title",
            baseline="Weakness number 1",
            local="ISSO title",
            remote="Engineer title",
            remote_actor="bob@example.com",
            remote_changed_at=None,
        )
    return item, row.id


@pytest.mark.parametrize(
    ("take", "value", "expected", "taken_from"),
    [
        ("local", None, "ISSO title", "local"),
        ("jira", None, "Engineer title", "jira"),
        (None, "Agreed in review", "Agreed in review", "value"),
    ],
)
def test_a_settlement_is_logged_acknowledges_the_remote_and_closes_the_conflict(
    store: Store, take: str | None, value: str | None, expected: str, taken_from: str
) -> None:
    item, conflict_id = conflicted(store)
    with store.begin() as tx:
        settled = settle_conflict(
            tx,
            conflict_id,
            take=take,
            **({"value": value} if value is not None else {}),
            reason="agreed in the weekly review",
            actor="isso@example.com",
        )
    assert (settled.field, settled.value, settled.taken_from) == ("title", expected, taken_from)
    assert store.item("acme", "V-1").title == expected
    with store.read() as tx:
        row = tx.conflict(conflict_id)
        assert row.state == "resolved"
        assert row.resolution_value == expected and row.taken_from == taken_from
        assert row.resolved_by == "isso@example.com"
        # the remote's value is the new baseline: the next cycle pushes the choice to it
        assert tx.baselines(item.uuid, "jira")["title"] == "Engineer title"
        assert tx.conflicts(state="open") == []
    (last,) = [r for r in store.log() if r.field == "title" and "settled" in (r.reason or "")]
    assert last.source == "cli" and last.actor == "isso@example.com"
    assert f"conflict {conflict_id} on title settled ({taken_from})" in (last.reason or "")
    assert store.verify_log().ok


def test_a_json_null_is_a_value_of_ones_own(store: Store) -> None:
    item, _conflict_id = conflicted(store)
    with store.begin() as tx:
        tx.open_conflict(
            item_uuid=item.uuid,
            connector="jira",
            field="due_date",
            baseline="2026-12-31",
            local="2026-12-31",
            remote="2027-01-15",
            remote_actor=None,
            remote_changed_at=None,
        )
    with store.read() as tx:
        (due,) = [c for c in tx.conflicts(state="open") if c.field == "due_date"]
    with store.begin() as tx:
        settled = settle_conflict(tx, due.id, value=None, reason="no date yet", actor="isso")
    assert settled.value is None and settled.taken_from == "value"
    assert store.item("acme", "V-1").due_date is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"take": "servicenow"}, "is with jira, not servicenow"),
        ({"take": "local", "reason": "  "}, "must say why"),
        ({}, "exactly one"),
        ({"take": "local", "value": "x"}, "exactly one"),
    ],
)
def test_a_wrong_settlement_is_refused_and_writes_nothing(
    store: Store, kwargs: dict[str, object], message: str
) -> None:
    _item, conflict_id = conflicted(store)
    before = len(store.log())
    args: dict[str, object] = {"reason": "because", "actor": "isso"} | kwargs
    with pytest.raises(SettlementRefused, match=message), store.begin() as tx:
        settle_conflict(tx, conflict_id, **args)  # type: ignore[arg-type]
    assert len(store.log()) == before
    with store.read() as tx:
        assert tx.conflict(conflict_id).state == "open"


def test_a_settled_conflict_cannot_be_settled_again(store: Store) -> None:
    _item, conflict_id = conflicted(store)
    with store.begin() as tx:
        settle_conflict(tx, conflict_id, take="jira", reason="engineer is right", actor="isso")
    with pytest.raises(SettlementRefused, match="already resolved") as caught, store.begin() as tx:
        settle_conflict(tx, conflict_id, take="local", reason="changed my mind", actor="isso")
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    assert store.item("acme", "V-1").title == "Engineer title"
