"""Browsing items in SQL (the workbench's items table and dashboard) gives what the Python rules
of poam_sync.deadlines give, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

from poam_sync.deadlines import current_due_date, due_state, effective_risk, scheduled_completion
from poam_sync.model import PoamItem, with_fields
from poam_sync.store import ItemFilter, Store

from .factory import make_item

TODAY = date(2026, 3, 1)


def _variety() -> list[PoamItem]:
    """Items covering each way a due date and a risk are found."""
    return [
        make_item("V-1"),  # due 2026-02-04: overdue
        make_item("V-2", due_date=None, scheduled_completion_date=date(2026, 3, 10)),
        make_item("V-3", due_date=None, original_risk="moderate", detected_on=date(2026, 1, 1)),
        make_item("V-4", due_date=None, original_risk="low", detected_on=date(2025, 1, 1)),
        make_item("V-5", due_date=date(2026, 6, 1), kev_due_date=date(2026, 2, 20)),
        make_item("V-6", due_date=None, original_risk=None, detected_on=None),
        make_item(
            "V-7",
            original_risk="high",
            adjusted_risk="low",
            deviation={"risk_adjustment": "approved"},
            due_date=None,
            detected_on=date(2026, 1, 1),
        ),
        make_item(
            "V-8",
            original_risk="critical",
            adjusted_risk="low",
            deviation={"risk_adjustment": "pending"},
            status="completed",
        ),
        make_item("V-9", title="Deprecated TLS 100% of hosts", owner={"name": "Bo_Ray"}),
        make_item("V-10", system="other", due_date=date(2026, 3, 5)),
    ]


def _store_with(store: Store, items: list[PoamItem]) -> None:
    with store.begin() as tx:
        for item in items:
            tx.save(item, source="cli", actor="ann", reason="test")


def _ids(store: Store, f: ItemFilter) -> list[str]:
    with store.read() as tx:
        page = tx.browse_items(f, today=TODAY)
    return [json.loads(d)["poam_id"] for d in page.rows]


def test_due_dates_and_risks_in_sql_are_those_of_the_python_rules(store: Store) -> None:
    items = _variety()
    _store_with(store, items)
    by_due = _ids(store, ItemFilter(sort="due", per_page=100))
    expected = sorted(
        (i for i in items if current_due_date(i) is not None),
        key=lambda i: (current_due_date(i), i.system, i.poam_id),
    )
    undated = sorted(i.poam_id for i in items if current_due_date(i) is None)
    assert by_due == [i.poam_id for i in expected] + undated
    overdue = {i.poam_id for i in items if due_state(i, TODAY) == "overdue"}
    assert set(_ids(store, ItemFilter(overdue=True))) == overdue
    for risk in ("low", "moderate", "high", "critical"):
        wanted = {i.poam_id for i in items if (r := effective_risk(i)) and r.value == risk}
        assert set(_ids(store, ItemFilter(risk=risk))) == wanted, risk
    past = {
        i.poam_id
        for i in items
        if not i.status.is_closed and (d := scheduled_completion(i)) is not None and d < TODAY
    }
    with store.read() as tx:
        total, rows = tx.past_fedramp_deadline(None, today=TODAY)
    assert total == len(past) and {json.loads(r)["poam_id"] for r in rows} == past


def test_filters_search_sort_and_pages(store: Store) -> None:
    _store_with(store, _variety())
    assert _ids(store, ItemFilter(system="other")) == ["V-10"]
    assert _ids(store, ItemFilter(status="closed")) == ["V-8"]
    assert "V-8" not in _ids(store, ItemFilter(status="open", per_page=100))
    # search and owner match a part, any case; % and _ are letters, not wildcards
    assert _ids(store, ItemFilter(search="100%")) == ["V-9"]
    assert _ids(store, ItemFilter(search="tls")) == ["V-9"]
    assert _ids(store, ItemFilter(owner="bo_r")) == ["V-9"]
    assert _ids(store, ItemFilter(owner="b_")) == []
    assert len(_ids(store, ItemFilter(owner="ANN@", per_page=100))) == 9
    first = _ids(store, ItemFilter(per_page=4, page=1))
    second = _ids(store, ItemFilter(per_page=4, page=2))
    third = _ids(store, ItemFilter(per_page=4, page=3))
    assert first == ["V-1", "V-10", "V-2", "V-3"] and len(second) == 4 and len(third) == 2
    with store.read() as tx:
        assert tx.browse_items(ItemFilter(per_page=4, page=3), today=TODAY).total == 10
    assert _ids(store, ItemFilter(sort="risk", descending=True))[0] == "V-8"  # critical


def test_has_conflict_counts_open_conflicts_only(store: Store) -> None:
    items = _variety()
    _store_with(store, items)
    with store.begin() as tx:
        row = tx.open_conflict(
            item_uuid=items[2].uuid,
            connector="jira",
            field="title",
            baseline="a",
            local="b",
            remote="c",
            remote_actor=None,
            remote_changed_at=None,
        )
    assert _ids(store, ItemFilter(has_conflict=True)) == ["V-3"]
    with store.read() as tx:
        page = tx.browse_items(ItemFilter(has_conflict=True), today=TODAY)
    assert page.open_conflicts == {items[2].uuid: 1}
    with store.begin() as tx:
        tx.resolve_conflict(row.id, value="b", taken_from="local", by="ann", reason="r")
    assert _ids(store, ItemFilter(has_conflict=True)) == []


def test_the_open_trend_follows_the_status_changes_of_the_change_log(store: Store) -> None:
    items = _variety()
    _store_with(store, items)
    with store.read() as tx:
        trend = tx.open_trend(None)
        counts = tx.status_risk_counts(None)
        owners = tx.due_by_owner(None, today=TODAY, soon_days=14)
    assert trend[-1][1] == 9  # ten items, one saved as completed
    assert counts[("completed", "critical")] == 1
    assert sum(counts.values()) == 10
    ann = next(o for o in owners if o.owner == "ann@example.gov")
    late = [i for i in items if i.owner and i.owner.email == "ann@example.gov"]
    assert ann.overdue == sum(1 for i in late if due_state(i, TODAY) == "overdue")
    assert ann.due_soon == sum(1 for i in late if due_state(i, TODAY) == "due_soon")
    with store.begin() as tx:
        current = tx.get("acme", "V-1")
        assert current is not None
        tx.save(with_fields(current, {"status": "completed"}), source="cli", actor="ann")
    with store.read() as tx:
        assert tx.open_trend(None)[-1][1] == 8
        assert tx.open_trend("other")[-1][1] == 1


def test_the_migration_fills_the_browsing_columns_of_items_stored_before_it(
    store: Store, db_url: str
) -> None:
    import sqlalchemy as sa
    from alembic import command

    from poam_sync.store._engine import alembic_config

    items = _variety()
    _store_with(store, items)
    store.close()
    engine = sa.create_engine(db_url)
    try:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    with Store.open(db_url) as again:
        assert set(_ids(again, ItemFilter(overdue=True))) == {
            i.poam_id for i in items if due_state(i, TODAY) == "overdue"
        }
        assert _ids(again, ItemFilter(search="tls")) == ["V-9"]
