"""The chain head only moves forward, to the change log's last row; it is never deleted.

Migration 0003 makes ``change_log`` append-only, but the one ``chain_head`` row (the seq and
hash of the last row, which ``log verify`` compares with the log) could still be rewritten by a
direct statement. With these triggers the database refuses:

- DELETE of the head (and TRUNCATE on PostgreSQL);
- an INSERT or UPDATE whose head is not exactly the last row of the change log (same seq, same
  hash), or whose id is not 1;
- an UPDATE that does not move the head forward (a lower or equal seq).

Appends (``_changelog.py``) insert the rows first and then move the head to the last of them,
in the same transaction, so they pass. What is left to an attacker is what is left against
0003: an owner of the tables can drop or disable the triggers; signed checkpoints kept outside
the database (``poam-sync log checkpoint``) catch what is done after that.

- PostgreSQL: one PL/pgSQL trigger function, ``BEFORE INSERT OR UPDATE OR DELETE ... FOR EACH
  ROW`` and ``BEFORE TRUNCATE ... FOR EACH STATEMENT`` (row triggers do not fire on TRUNCATE,
  https://www.postgresql.org/docs/current/sql-createtrigger.html); the function's queries see
  the rows inserted earlier in the same transaction
  (https://www.postgresql.org/docs/current/trigger-datachanges.html).
- SQLite: ``BEFORE`` triggers with a ``WHEN`` condition and ``RAISE(ABORT, ...)``
  (https://www.sqlite.org/lang_createtrigger.html). ``INSERT OR REPLACE`` deletes the old row
  without firing DELETE triggers unless recursive triggers are on
  (https://www.sqlite.org/lang_conflict.html), but its INSERT trigger still fires, so a
  replacing row must also name the last row of the log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "the chain head only moves forward to the last row of the change log"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION poam_sync_chain_head_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION '{MESSAGE}: % on chain_head is refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id <> 1 OR (TG_OP = 'UPDATE' AND (NEW.id <> OLD.id OR NEW.seq <= OLD.seq)) THEN
        RAISE EXCEPTION '{MESSAGE}: % on chain_head is refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT seq, hash INTO last_seq, last_hash FROM change_log ORDER BY seq DESC LIMIT 1;
    IF last_seq IS NULL OR NEW.seq <> last_seq OR NEW.hash <> last_hash THEN
        RAISE EXCEPTION '{MESSAGE}: % on chain_head is refused', TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'the head names the last change-log row; it moves only by appends';
    END IF;
    RETURN NEW;
END;
$$
"""  # noqa: S608 (our own constant text only)

# true when NEW (seq, hash) is not the last row of the change log
_NOT_LAST = (
    "NOT EXISTS (SELECT 1 FROM change_log WHERE seq = NEW.seq AND hash = NEW.hash "
    "AND seq = (SELECT max(seq) FROM change_log))"
)

_SQLITE_TRIGGERS = {
    "chain_head_no_delete": ("DELETE", ""),
    "chain_head_insert_last_row": ("INSERT", f"WHEN NEW.id <> 1 OR {_NOT_LAST} "),
    "chain_head_update_forward": (
        "UPDATE",
        f"WHEN NEW.id <> 1 OR NEW.id <> OLD.id OR NEW.seq <= OLD.seq OR {_NOT_LAST} ",
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER chain_head_forward_only BEFORE INSERT OR UPDATE OR DELETE "
            "ON chain_head FOR EACH ROW EXECUTE FUNCTION poam_sync_chain_head_forward_only()"
        )
        op.execute(
            "CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON chain_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION poam_sync_chain_head_forward_only()"
        )
        return
    for name, (verb, when) in _SQLITE_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {verb} ON chain_head {when}"
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {verb} on chain_head is refused'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS chain_head_no_truncate ON chain_head")
        op.execute("DROP TRIGGER IF EXISTS chain_head_forward_only ON chain_head")
        op.execute("DROP FUNCTION IF EXISTS poam_sync_chain_head_forward_only()")
        return
    for name in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
