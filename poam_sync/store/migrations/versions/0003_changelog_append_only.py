"""The change log is append-only in the database itself: UPDATE, DELETE and TRUNCATE are refused.

The hash chain already names an edited or deleted row; with these triggers such a statement
fails outright, whoever sends it through the normal schema (the store's own code never updates
or deletes a change-log row). An owner of the tables can still drop the triggers: signed
checkpoints (``poam-sync log checkpoint``) kept outside the database catch what is done after.

- PostgreSQL: one trigger function that raises, a ``BEFORE UPDATE OR DELETE ... FOR EACH ROW``
  trigger and a ``BEFORE TRUNCATE ... FOR EACH STATEMENT`` trigger (row triggers do not fire on
  TRUNCATE; see https://www.postgresql.org/docs/current/sql-createtrigger.html).
- SQLite: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers with ``RAISE(ABORT, ...)``, which
  rolls back the statement (https://www.sqlite.org/lang_createtrigger.html#raise). SQLite has no
  TRUNCATE; its "truncate optimization" of an unqualified DELETE is switched off when the table
  has triggers (https://www.sqlite.org/lang_delete.html#truncateopt), so the trigger fires.

A later migration must not rebuild ``change_log`` in SQLite batch mode: that copies the table
and loses these triggers (and would be a rewrite of the log, which docs/store.md forbids).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "the change log is append-only"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION poam_sync_change_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}: % on change_log is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'change-log rows are never updated or deleted; a correction is a new change';
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER change_log_append_only BEFORE UPDATE OR DELETE ON change_log "
            "FOR EACH ROW EXECUTE FUNCTION poam_sync_change_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER change_log_no_truncate BEFORE TRUNCATE ON change_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION poam_sync_change_log_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER change_log_no_{verb.lower()} BEFORE {verb} ON change_log "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {verb} on change_log is refused'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS change_log_no_truncate ON change_log")
        op.execute("DROP TRIGGER IF EXISTS change_log_append_only ON change_log")
        op.execute("DROP FUNCTION IF EXISTS poam_sync_change_log_append_only()")
        return
    op.execute("DROP TRIGGER IF EXISTS change_log_no_update")
    op.execute("DROP TRIGGER IF EXISTS change_log_no_delete")
