"""``topicfeed check``: validate content roots and say what an import would do, changing nothing."""
from __future__ import annotations

import tempfile
from pathlib import Path

from .importer import SyncReport, sync
from .store import Store


def check_tree(roots: list[Path], store: Store | None = None) -> SyncReport:
    """Run the full import logic as a dry run: against ``store`` (rolled back, so the report
    says what an import would add, update and remove there), else against a throw-away SQLite
    file. Check and import report exactly the same problems; ``ImportRefused`` for roots that
    hold no record."""
    if store is not None:
        return sync(store, roots, max_removal=1.0, dry_run=True)
    with tempfile.TemporaryDirectory(prefix="topicfeed-check-") as tmp:
        scratch = Store(f"sqlite:///{tmp}/check.db")
        try:
            return sync(scratch, roots)
        finally:
            scratch.close()
