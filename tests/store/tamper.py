"""Tampering as a database administrator would: first drop the append-only triggers that
migration 0003 puts on ``change_log`` and the forward-only triggers that migration 0007 puts on
``chain_head`` (an owner of the tables can), then edit the rows."""

from __future__ import annotations

import sqlalchemy as sa


def drop_append_only_guards(conn: sa.Connection) -> None:
    """Remove the triggers that refuse UPDATE, DELETE and TRUNCATE on the change log and
    anything but a forward move on the chain head."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("DROP TRIGGER change_log_append_only ON change_log"))
        conn.execute(sa.text("DROP TRIGGER change_log_no_truncate ON change_log"))
        conn.execute(sa.text("DROP TRIGGER chain_head_forward_only ON chain_head"))
        conn.execute(sa.text("DROP TRIGGER chain_head_no_truncate ON chain_head"))
        return
    conn.execute(sa.text("DROP TRIGGER change_log_no_update"))
    conn.execute(sa.text("DROP TRIGGER change_log_no_delete"))
    for name in ("chain_head_no_delete", "chain_head_insert_last_row", "chain_head_update_forward"):
        conn.execute(sa.text(f"DROP TRIGGER {name}"))


def truncate_and_rewrite_head(raw: sa.Engine, keep: int) -> None:
    """What an administrator hiding the last changes does: drop the triggers, cut the rows
    after ``keep``, and point the chain head at the new last row (the chain then verifies)."""
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text("DELETE FROM change_log WHERE seq > :keep"), {"keep": keep})
        new_head = conn.execute(
            sa.text("SELECT hash FROM change_log WHERE seq = :keep"), {"keep": keep}
        ).scalar_one()
        conn.execute(
            sa.text("UPDATE chain_head SET seq = :s, hash = :h"), {"s": keep, "h": new_head}
        )
