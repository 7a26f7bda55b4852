"""Tampering as a database administrator would: first drop the append-only triggers that
migration 0003 puts on ``change_log`` (an owner of the tables can), then edit the rows."""

from __future__ import annotations

import sqlalchemy as sa


def drop_append_only_guards(conn: sa.Connection) -> None:
    """Remove the triggers that refuse UPDATE, DELETE and TRUNCATE on the change log."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("DROP TRIGGER change_log_append_only ON change_log"))
        conn.execute(sa.text("DROP TRIGGER change_log_no_truncate ON change_log"))
        return
    conn.execute(sa.text("DROP TRIGGER change_log_no_update"))
    conn.execute(sa.text("DROP TRIGGER change_log_no_delete"))
