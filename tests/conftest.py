"""Fixtures shared by the whole suite.

``db_url`` runs a test on both databases: a fresh SQLite file, and a fresh schema of the
PostgreSQL server named by ``POAM_SYNC_TEST_POSTGRES_URL``. Without that variable the
PostgreSQL half is skipped, except under CI (``CI=true``), where it fails instead: CI must run it.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import settings

POSTGRES_ENV = "POAM_SYNC_TEST_POSTGRES_URL"

# A pytest-xdist worker starts with COLUMNS and LINES set (80 x 24): the CLI's rich consoles,
# made at import, would keep that width for good, where in one process they follow the COLUMNS
# a test sets. A worker drops them before any test module is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


# Under CI, property tests draw the same examples every run and have no per-example deadline
# (a busy 2-core machine must not turn a slow example into a failure).
settings.register_profile("ci", derandomize=True, deadline=None)
# The long runs, outside CI: fresh random draws, LONG_FACTOR times the examples of every property
# test (`python3 dev.py test --long`, or pytest's `--hypothesis-profile=long`).
LONG_FACTOR = 10
settings.register_profile("long", max_examples=100 * LONG_FACTOR, deadline=None)
if _in_ci():
    settings.load_profile("ci")


def examples(n: int) -> int:
    """A property test's example count: ``n``, or ``n * LONG_FACTOR`` under the "long" profile.

    Read when the test module is imported, after pytest has loaded ``--hypothesis-profile``."""
    return n * max(1, settings.default.max_examples // 100)


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a schema of their own, dropped after the test."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        _unavailable(f"{POSTGRES_ENV} is not set")
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable(f"cannot reach PostgreSQL at {base}: {exc.orig}")
        return
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'poam-sync.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts from structlog's defaults: a command run in-process (typer's runner)
    configures logging for itself, and that must not filter the next test's captured logs."""
    yield
    import structlog

    structlog.reset_defaults()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """A module that lets its resources go unclosed (``ignore::ResourceWarning``: daemons in
    threads, subprocess pipes) has them collected before its test ends, while its filter still
    holds: left to a later garbage collection, a dropped connection would fail whichever test
    happened to be running then."""
    yield
    if any(
        "ResourceWarning" in str(arg)
        for mark in item.iter_markers("filterwarnings")
        for arg in mark.args
    ):
        gc.collect()
