"""The instance folder: config.toml, master keys (0600) and the SQLite index."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from feeds.atomic import create_atomic, write_atomic

KEYS_FILE = "keys.json"
ID_FILE = "instance-id"  # the writer identity (server.writerlock); kept by backups, so a restore is the same writer


def default_instance() -> Path:
    return Path(os.environ.get("TOPICFEED_INSTANCE", "instance"))


def init_instance(instance: Path) -> bool:
    """Create the folder, a commented config and the first master key; False if it existed.

    Safe to run by several processes at once on one folder (the app's and the watcher's
    containers starting together): each file is created whole or not at all, and only the
    first process to create ``keys.json`` writes it, so all of them end with the same key."""
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = create_atomic(instance / "config.toml", (
        "# topicfeed settings; `topicfeed config` lists them all.\n"
        "# content_dirs = [\"/srv/news\"]\n# public_base_url = \"https://feeds.example.org\"\n").encode(), 0o644)
    keys = (json.dumps({"keys": [secrets.token_urlsafe(32)]}, indent=2) + "\n").encode()
    return create_atomic(instance / KEYS_FILE, keys, 0o600) or created


def require_instance(instance: Path) -> None:
    """``FileNotFoundError`` with the one-line fix when ``instance`` was never initialised."""
    if not (instance / KEYS_FILE).is_file():
        raise FileNotFoundError(f"no instance at {instance}: run `topicfeed init --instance {instance}` "
                                "(or cd to the folder that holds ./instance)")


def load_keys(instance: Path) -> list[str]:
    """Master keys, oldest first: the last one signs, all verify."""
    path = instance / KEYS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no master keys at {path}: run `topicfeed init --instance {instance}`")
    keys = json.loads(path.read_text(encoding="utf-8"))["keys"]
    if not keys or not all(isinstance(k, str) and len(k) >= 32 for k in keys):
        raise ValueError(f"{path}: 'keys' must be a non-empty list of secrets of 32+ characters")
    return keys


def save_keys(instance: Path, keys: list[str]) -> None:
    write_atomic(instance / KEYS_FILE, (json.dumps({"keys": keys}, indent=2) + "\n").encode(), mode=0o600)


class KeyRing:
    """Master keys of an instance, re-read when keys.json changes (rotation needs no restart)."""

    def __init__(self, instance: Path) -> None:
        self.path = instance / KEYS_FILE
        self.instance = instance
        self._cached: tuple[int, list[str]] = (-1, [])

    def keys(self) -> list[str]:
        mtime = self.path.stat().st_mtime_ns
        if mtime != self._cached[0]:
            self._cached = (mtime, load_keys(self.instance))
        return self._cached[1]
