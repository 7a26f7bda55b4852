"""Problems say what kind they are (write, read, item), the hint that would fix them, and the
remote record they are about (an item that failed is fetched again by it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("problems") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="write"))
        batch.add_column(sa.Column("hint", sa.Text(), nullable=True))
        batch.add_column(sa.Column("remote_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("remote_key", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("problems") as batch:
        for name in ("remote_key", "remote_id", "hint", "kind"):
            batch.drop_column(name)
