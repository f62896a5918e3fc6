"""Every row of every table of a database, for comparing two imports (bench/compare_imports.py)."""
from __future__ import annotations

from sqlalchemy import MetaData, create_engine, select


def all_rows(url: str) -> dict[str, tuple[list[str], list[tuple]]]:
    """``{table: (column names, rows)}`` of the database at ``url`` (SQLAlchemy URL), read with
    the tables its schema has (reflected, so another checkout's database reads too)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = MetaData()
            found.reflect(conn)
            return {name: ([c.name for c in table.columns], [tuple(r) for r in conn.execute(select(table))])
                    for name, table in found.tables.items()}
    finally:
        engine.dispose()
