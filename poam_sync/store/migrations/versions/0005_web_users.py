"""The workbench: its local accounts (name, role, argon2 hash, disabled, created), and
``item_facets``, the narrow row per item its items table filters, sorts and counts on (status,
effective risk, current due date, FedRAMP deadline, title, owner), filled in for the items
already stored.

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "item_facets",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("system", sa.String(200), nullable=False),
        sa.Column("poam_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("effective_risk", sa.String(20), nullable=True),
        sa.Column("current_due", sa.Date(), nullable=True),
        sa.Column("fedramp_due", sa.Date(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner_email", sa.String(320), nullable=True),
        sa.Column("owner_name", sa.String(320), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["uuid"], ["items.uuid"], name="fk_item_facets_uuid_items"),
        sa.PrimaryKeyConstraint("uuid", name="pk_item_facets"),
    )
    op.create_index("ix_item_facets_poam_id", "item_facets", ["poam_id"])
    op.create_index(
        "ix_item_facets_status_effective_risk", "item_facets", ["status", "effective_risk"]
    )
    _fill_facets()


def _fill_facets() -> None:
    """The facet rows of the items stored before this revision, computed as every write
    computes them from now on."""
    from poam_sync.model import PoamItem
    from poam_sync.store._browse import facet_row, write_facets
    from poam_sync.store._schema import items

    conn = op.get_bind()
    after = ""
    while True:
        rows = conn.execute(
            sa.select(items.c.uuid, items.c.system, items.c.data, items.c.updated_at)
            .where(items.c.uuid > after)
            .order_by(items.c.uuid)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        new = [
            facet_row(PoamItem.model_validate_json(r.data), r.uuid, r.system, r.updated_at)
            for r in rows
        ]
        write_facets(conn, new=new)
        after = rows[-1].uuid


def downgrade() -> None:
    op.drop_table("item_facets")
    op.drop_table("users")
