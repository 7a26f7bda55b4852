"""Fixtures of the store suite: a fresh store on each database, and raw SQL access to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa

from poam_sync.model import Person, PoamItem, RiskLevel, Status
from poam_sync.store import Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def raw(db_url: str) -> Iterator[sa.Engine]:
    """The same database, behind the store's back."""
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


def make_item(poam_id: str = "V-1", **fields: object) -> PoamItem:
    values: dict[str, object] = {
        "poam_id": poam_id,
        "system": "acme",
        "title": f"Weakness {poam_id}",
        "controls": ["ac-2.1"],
        "owner": Person(name="Ann Lee", email="ann@example.gov"),
        "status": Status.OPEN,
        "original_risk": RiskLevel.HIGH,
        "detected_on": date(2026, 1, 5),
        "due_date": date(2026, 2, 4),
    }
    values.update(fields)
    return PoamItem.model_validate(values)
