"""The workbench: its local accounts (name, role, argon2 hash, disabled, created), and the
item columns its items table filters and sorts on in SQL (effective risk, current due date,
FedRAMP deadline, title, owner name), filled in for the items already stored.

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
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
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("effective_risk", sa.String(20), nullable=True))
        batch.add_column(sa.Column("current_due", sa.Date(), nullable=True))
        batch.add_column(sa.Column("fedramp_due", sa.Date(), nullable=True))
        batch.add_column(sa.Column("title", sa.Text(), nullable=True))
        batch.add_column(sa.Column("owner_name", sa.String(320), nullable=True))
        batch.create_index("ix_items_effective_risk", ["effective_risk"])
        batch.create_index("ix_items_current_due", ["current_due"])
    _fill_facets()


def _fill_facets() -> None:
    """The new columns of the items stored before this revision, computed as every write
    computes them from now on."""
    from poam_sync.model import PoamItem
    from poam_sync.store._browse import facets

    conn = op.get_bind()
    items = sa.table(
        "items",
        sa.column("uuid", sa.String),
        sa.column("data", sa.Text),
        sa.column("effective_risk", sa.String),
        sa.column("current_due", sa.Date),
        sa.column("fedramp_due", sa.Date),
        sa.column("title", sa.Text),
        sa.column("owner_name", sa.String),
    )
    update = (
        sa.update(items)
        .where(items.c.uuid == sa.bindparam("b_uuid"))
        .values({name: sa.bindparam(f"b_{name}") for name in _FACETS})
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(items.c.uuid, items.c.data)
            .where(items.c.uuid > after)
            .order_by(items.c.uuid)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        params = []
        for uuid, data in rows:
            values = facets(PoamItem.model_validate_json(data))
            params.append({"b_uuid": uuid, **{f"b_{k}": v for k, v in values.items()}})
        conn.execute(update, params)
        after = rows[-1][0]


_FACETS = ("effective_risk", "current_due", "fedramp_due", "title", "owner_name")


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_current_due")
        batch.drop_index("ix_items_effective_risk")
        for name in reversed(_FACETS):
            batch.drop_column(name)
    op.drop_table("users")
