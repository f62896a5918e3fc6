"""``topicfeed backup`` and ``restore``: what no import can rebuild, in one ``.tar.gz``.

Members: ``topicfeed-backup.json`` (manifest), ``config.toml``, ``keys.json`` (mode 0600),
``instance-id`` (the writer identity: the restored instance is the same writer, README "Scaling out"),
``topicfeed.db`` (SQLite only, copied with the online backup API: paired clients, import log)
and ``records/*.md`` — the record files of the *last* content root's ``_news/``, the folder
curator writes go to. Only that folder is kept because the other roots (and the rest of the
last one) are content checkouts with their own history (git); the curator's folder may hold
files that exist nowhere else. With PostgreSQL the database is not in the file: dump it with
``pg_dump`` alongside.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from feeds.atomic import write_atomic
from feeds.store.backup import copy_sqlite, sqlite_path

from .instance import ID_FILE, KEYS_FILE
from .settings import load_settings

MANIFEST, CONFIG, DATABASE, RECORDS = "topicfeed-backup.json", "config.toml", "topicfeed.db", "records/"


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every database file (https://sqlite.org/fileformat.html)


class BackupError(Exception):
    """A backup that cannot be written or read; the message is one line naming the file."""


@dataclass
class BackupSummary:
    """What a backup holds: whether the SQLite index is in it and how many record files."""

    database: bool
    records: int

    def __str__(self) -> str:
        index = "the SQLite index" if self.database else "no database (PostgreSQL: use pg_dump)"
        return f"config, keys, {index}, {self.records} curator record file(s)"


def backup(instance: Path, database_url: str, records_root: Path | None, out: Path) -> BackupSummary:
    """Write the backup of ``instance`` to ``out`` (mode 0600: it holds the master keys).

    Raises ``BackupError`` (one line naming ``out``) when ``out``'s folder does not exist or
    cannot be written. An instance that has no index yet (right after ``init``) is backed up
    without one."""
    if not out.parent.is_dir():
        raise BackupError(f"{out}: folder {out.parent} does not exist")
    db = sqlite_path(database_url)
    if db is not None and not db.exists():
        db = None  # nothing to copy yet; SQLite's mode=ro would fail on a missing file
    news = records_root / "_news" if records_root else None
    record_files = sorted(news.glob("*.md")) if news and news.is_dir() else []
    manifest = {"format": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "topicfeed": version("topicfeed"), "database": "sqlite" if db else "other",
                "records_root": str(records_root) if records_root else None}
    with tempfile.TemporaryDirectory() as tmp:
        buffer = Path(tmp) / "backup.tar.gz"
        with tarfile.open(buffer, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode(), 0o644)
            for name in (CONFIG, KEYS_FILE, ID_FILE):  # the instance id: a restore is the same writer
                if (instance / name).exists():
                    tar.add(instance / name, name)
            if db:
                copy = Path(tmp) / DATABASE
                copy_sqlite(db, copy)
                tar.add(copy, DATABASE)
            for path in record_files:
                tar.add(path, RECORDS + path.name)
        try:
            write_atomic(out, buffer.read_bytes(), mode=0o600)
        except OSError as exc:
            raise BackupError(f"{out}: cannot write the backup ({exc.strerror or exc})") from None
    return BackupSummary(db is not None, len(record_files))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, time.time()
    tar.addfile(info, io.BytesIO(data))


def read_manifest(archive: Path) -> dict:
    """The manifest of a backup file; ``BackupError`` if it is not one."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            return json.loads(member.read()) if member else {}
    except (OSError, EOFError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{archive}: not a topicfeed backup ({exc})") from None


def configured_records_root(instance: Path) -> Path | None:
    """The content root curator writes go to: the last of the instance's ``content_dirs``
    (``config.toml`` and ``TOPICFEED_CONTENT_DIRS``). Raises ``ValueError`` for a bad config."""
    dirs = load_settings(instance)["CONTENT_DIRS"]
    return Path(dirs[-1]) if dirs else None


def _root_after_restore(archive: Path, tar: tarfile.TarFile, instance: Path) -> Path | None:
    """The records root the instance will read once restored: its settings with the backup's
    ``config.toml`` (when it holds one) in place of its own, environment variables included."""
    member = tar.extractfile(CONFIG) if CONFIG in tar.getnames() else None
    try:
        if member is None:
            return configured_records_root(instance)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / CONFIG).write_bytes(member.read())
            return configured_records_root(Path(tmp))
    except ValueError as exc:
        raise BackupError(f"{archive}: {str(exc).splitlines()[0]}") from None


def _records_target(archive: Path, backed_up_from: str | None, configured: Path | None) -> Path:
    """Where record files go without ``--records-root``: the instance's configured records
    root, only when it is the one they were backed up from (else the next import, reading the
    configured root, would not see them: refuse rather than write where nothing reads)."""
    if configured is None:
        raise BackupError(f"{archive}: holds record files but this instance has no content_dirs: "
                          "pass --records-root DIR")
    if backed_up_from and Path(backed_up_from).resolve() != configured.resolve():
        raise BackupError(f"{archive}: record files were backed up from {backed_up_from} but this instance's "
                          f"records root is {configured}: pass --records-root DIR to choose where they go")
    return configured


def restore(archive: Path, instance: Path, records_root: Path | None, force: bool) -> BackupSummary:
    """Put a backup back: config, keys (0600), the SQLite index, and the record files into
    ``records_root/_news/``; without ``records_root``, into the instance's configured records
    root (``content_dirs`` after the restore), which must be the one the backup was made from.
    Refuses an instance that already has keys or an index unless ``force``; the server must be
    stopped. Every refusal is a ``BackupError`` raised before anything is written."""
    manifest = read_manifest(archive)
    existing = [n for n in (KEYS_FILE, DATABASE) if (instance / n).exists()]
    if existing and not force:
        raise BackupError(f"{instance} already holds {', '.join(existing)}: restore into an empty instance "
                          "folder or pass --force to replace them")
    records = 0
    with tarfile.open(archive, "r:gz") as tar:
        try:  # reads the whole archive: a file cut short fails here, before anything is written
            members = [m for m in tar.getmembers() if m.name != MANIFEST]
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise BackupError(f"{archive}: not a topicfeed backup ({exc})") from None
        root = records_root
        for member in members:  # check every name before writing anything
            if not member.isfile() or not (member.name in (CONFIG, KEYS_FILE, ID_FILE, DATABASE) or _record_name(member.name)):
                raise BackupError(f"{archive}: unexpected member {member.name!r}")
            if _record_name(member.name) and root is None:
                root = _records_target(archive, manifest.get("records_root"), _root_after_restore(archive, tar, instance))
            if member.name == DATABASE and tar.extractfile(member).read(16) != SQLITE_HEADER:  # type: ignore[union-attr]
                raise BackupError(f"{archive}: {DATABASE} is not an SQLite database")
        instance.mkdir(parents=True, exist_ok=True, mode=0o700)
        for member in members:
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == DATABASE:
                for suffix in ("-wal", "-shm"):  # a stale log would be replayed over the restored file
                    (instance / (DATABASE + suffix)).unlink(missing_ok=True)
                write_atomic(instance / DATABASE, data, mode=0o600)
            elif member.name in (CONFIG, KEYS_FILE, ID_FILE):
                write_atomic(instance / member.name, data, mode=0o600 if member.name == KEYS_FILE else 0o644)
            else:
                target = root / "_news" / _record_name(member.name)  # type: ignore[operator]
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, data)
                os.utime(target, (member.mtime, member.mtime))  # the next import sees the file as it was
                records += 1
    return BackupSummary(manifest.get("database") == "sqlite", records)


def _record_name(member: str) -> str | None:
    """``NAME.md`` for a ``records/NAME.md`` member; None for anything else (no sub-folders or
    hidden names, so nothing lands outside ``_news/``)."""
    name = member[len(RECORDS):] if member.startswith(RECORDS) else ""
    return name if name.endswith(".md") and "/" not in name and not name.startswith(".") else None
