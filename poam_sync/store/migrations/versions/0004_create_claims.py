"""Create claims: one row per (item, connector), its primary key the claim on the remote create.

Replaces the intents table, whose rows had an id of their own: two processes could each
announce the same create and both make it. Pending intents become pending claims (the oldest
per pair), owned by nobody alive, so the next cycle looks their records up by stamp first.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEGACY_OWNER = "poam-sync before revision 0004"


def upgrade() -> None:
    op.create_table(
        "create_claims",
        sa.Column("item_uuid", sa.String(36), nullable=False),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("token", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("leader", sa.Boolean(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_uuid"], ["items.uuid"], name="fk_create_claims_item_uuid_items"
        ),
        sa.PrimaryKeyConstraint("item_uuid", "connector", name="pk_create_claims"),
    )
    op.create_index(
        "ix_create_claims_connector_finished_at", "create_claims", ["connector", "finished_at"]
    )
    # Pending intents carry over (the oldest of a pair); finished ones were history only.
    # leader = true: whoever leads next may take them over at once (their writer is gone).
    op.execute(
        sa.text(
            "INSERT INTO create_claims (item_uuid, connector, token, owner, leader, attempt, "
            "claimed_at, finished_at) "
            "SELECT i.item_uuid, i.connector, i.token, :owner, :leader, 1, i.created_at, NULL "
            "FROM intents i WHERE i.finished_at IS NULL AND i.id = ("
            "SELECT min(j.id) FROM intents j WHERE j.item_uuid = i.item_uuid "
            "AND j.connector = i.connector AND j.finished_at IS NULL)"
        ).bindparams(owner=_LEGACY_OWNER, leader=True)
    )
    op.drop_index("ix_intents_connector_finished_at", table_name="intents")
    op.drop_table("intents")


def downgrade() -> None:
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
    op.execute(
        "INSERT INTO intents (item_uuid, connector, token, created_at, finished_at) "
        "SELECT item_uuid, connector, token, claimed_at, finished_at FROM create_claims"
    )
    op.drop_index("ix_create_claims_connector_finished_at", table_name="create_claims")
    op.drop_table("create_claims")
