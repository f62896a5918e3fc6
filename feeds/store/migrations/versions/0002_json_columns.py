"""JSON columns: PostgreSQL stores them as ``json`` (SQLAlchemy's JSON type reads them).

SQLite has no JSON column type: SQLAlchemy's JSON reads and writes the same TEXT the
baseline stored, so only PostgreSQL converts (``json``, not ``jsonb``: it keeps the stored
text, so both databases serve byte-identical documents). ``meta.schema`` becomes "3" so
a topicfeed from before migrations refuses this index instead of misreading it.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = {"articles": ("topics", "record", "curated", "related"), "topics": ("data",), "providers": ("data",)}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in COLUMNS.items():
            changes = ", ".join(f"ALTER COLUMN {c} TYPE json USING {c}::json" for c in columns)
            op.execute(f"ALTER TABLE {table} {changes}")
    op.execute("UPDATE meta SET value = '3' WHERE key = 'schema'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in COLUMNS.items():
            changes = ", ".join(f"ALTER COLUMN {c} TYPE text USING {c}::text" for c in columns)
            op.execute(f"ALTER TABLE {table} {changes}")
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
