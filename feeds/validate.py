"""``topicfeed check``: validate content roots without touching any index."""
from __future__ import annotations

import tempfile
from pathlib import Path

from .importer import SyncReport, sync
from .store import Store


def check_tree(roots: list[Path]) -> SyncReport:
    """Run the full import logic against a throw-away SQLite file, so that check and import
    report exactly the same problems."""
    with tempfile.TemporaryDirectory(prefix="topicfeed-check-") as tmp:
        store = Store(f"sqlite:///{tmp}/check.db")
        try:
            return sync(store, roots)
        finally:
            store.close()
