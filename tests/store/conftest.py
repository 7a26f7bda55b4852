"""Fixtures of the store suite: a fresh store on each database, and raw SQL access to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

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
