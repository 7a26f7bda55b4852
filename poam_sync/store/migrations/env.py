"""Alembic environment of the canonical store.

At run time :func:`poam_sync.store._engine.migrate` hands over an open connection (in
``config.attributes["connection"]``). Developers running the ``alembic`` command use the
``sqlalchemy.url`` of ``poam_sync/store/alembic.ini`` or ``-x db=URL`` (see docs/store.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from poam_sync.store._schema import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    url = context.get_x_argument(as_dictionary=True).get("db") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database: alembic -x db=URL ... (or sqlalchemy.url)")
    from poam_sync.store._engine import create_engine

    engine = create_engine(sa.make_url(url))
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


_main()
