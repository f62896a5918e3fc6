"""The writer lease (``writer_lease``, see ``feeds.store.lease``): which writer instance owns the
write path, so that a second writer on the same database refuses to start.

One row, free (no holder, expired): the first writer to start claims it.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "writer_lease",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("renewed_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "holder": "", "location": "", "renewed_ms": 0, "expires_ms": 0}])


def downgrade() -> None:
    op.drop_table("writer_lease")
