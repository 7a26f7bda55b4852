"""The canonical store: items, the hash-chained change log, and the sync engine's state.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("system", sa.String(200), nullable=False),
        sa.Column("poam_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("owner_email", sa.String(320), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_items"),
        sa.UniqueConstraint("system", "poam_id", name="uq_items_system_poam_id"),
    )
    op.create_index("ix_items_poam_id", "items", ["poam_id"])
    op.create_index("ix_items_status", "items", ["status"])
    op.create_index("ix_items_due_date", "items", ["due_date"])
    op.create_index("ix_items_owner_email", "items", ["owner_email"])

    op.create_table(
        "change_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),  # INTEGER: the rowid itself
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("item_uuid", sa.String(36), nullable=False),
        sa.Column("system", sa.String(200), nullable=False),
        sa.Column("poam_id", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=False),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(320), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(100), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_change_log"),
    )
    op.create_index("ix_change_log_item_uuid", "change_log", ["item_uuid"])

    op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chain_head"),
    )

    op.create_table(
        "links",
        sa.Column("item_uuid", sa.String(36), nullable=False),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("remote_id", sa.String(200), nullable=False),
        sa.Column("remote_key", sa.String(200), nullable=True),
        sa.Column("remote_version", sa.String(200), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("broken_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_uuid"], ["items.uuid"], name="fk_links_item_uuid_items"),
        sa.PrimaryKeyConstraint("item_uuid", "connector", name="pk_links"),
        sa.UniqueConstraint("connector", "remote_id", name="uq_links_connector_remote_id"),
    )

    op.create_table(
        "baselines",
        sa.Column("item_uuid", sa.String(36), nullable=False),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["item_uuid"], ["items.uuid"], name="fk_baselines_item_uuid_items"),
        sa.PrimaryKeyConstraint("item_uuid", "connector", "field", name="pk_baselines"),
    )
    op.create_index("ix_baselines_connector", "baselines", ["connector"])

    op.create_table(
        "intents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_uuid", sa.String(36), nullable=False),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("token", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["item_uuid"], ["items.uuid"], name="fk_intents_item_uuid_items"),
        sa.PrimaryKeyConstraint("id", name="pk_intents"),
    )
    op.create_index("ix_intents_connector_finished_at", "intents", ["connector", "finished_at"])

    op.create_table(
        "watermarks",
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("value", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", name="pk_watermarks"),
    )

    op.create_table(
        "conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_uuid", sa.String(36), nullable=False),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("baseline", sa.Text(), nullable=False),
        sa.Column("local", sa.Text(), nullable=False),
        sa.Column("remote", sa.Text(), nullable=False),
        sa.Column("remote_actor", sa.String(320), nullable=True),
        sa.Column("remote_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_value", sa.Text(), nullable=True),
        sa.Column("taken_from", sa.String(100), nullable=True),
        sa.Column("resolved_by", sa.String(320), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["item_uuid"], ["items.uuid"], name="fk_conflicts_item_uuid_items"),
        sa.PrimaryKeyConstraint("id", name="pk_conflicts"),
    )
    op.create_index("ix_conflicts_state", "conflicts", ["state"])
    op.create_index(
        "uq_conflicts_open",
        "conflicts",
        ["item_uuid", "connector", "field"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )

    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_uuid", sa.String(36), nullable=True),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("field", sa.String(100), nullable=True),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["item_uuid"], ["items.uuid"], name="fk_problems_item_uuid_items"),
        sa.PrimaryKeyConstraint("id", name="pk_problems"),
    )
    op.create_index("ix_problems_item_uuid_connector", "problems", ["item_uuid", "connector"])
    op.create_index("ix_problems_active", "problems", ["active"])


def downgrade() -> None:
    for table in (
        "problems",
        "conflicts",
        "watermarks",
        "intents",
        "baselines",
        "links",
        "chain_head",
        "change_log",
        "items",
    ):
        op.drop_table(table)
