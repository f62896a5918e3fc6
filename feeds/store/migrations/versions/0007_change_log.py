"""The change log (``change_log``, see ``feeds.store.changes``): which feeds each committed write
changed, in commit order, for targeted invalidation of rendered documents in every process.

The table starts empty: a process that finds no row it knows drops everything once.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("scope", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("change_log")
