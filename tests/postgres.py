"""A throw-away PostgreSQL cluster for tests (Debian's postgresql package, no systemd)."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Cluster:
    """initdb refuses root, so the cluster runs as the 'postgres' user; we connect over TCP."""

    def __init__(self, port: int) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (.ci/run installs Debian's postgresql)")
        self.bin, self.port = bindir, port
        self.data = Path(tempfile.mkdtemp(prefix="topicfeed-pg-"))
        shutil.chown(self.data, "postgres")
        as_pg = ["su", "postgres", "-s", "/bin/sh", "-c"] if os.geteuid() == 0 else ["sh", "-c"]
        self._run = lambda cmd: subprocess.run(as_pg + [cmd], check=True, capture_output=True, text=True)
        self._run(f"{bindir}/initdb -D {self.data} -U postgres -A trust -E UTF8 --no-sync")
        self._run(f"{bindir}/pg_ctl -D {self.data} -l {self.data}/log -w -o "
                  f"'-p {port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off' start")

    def create_db(self, name: str) -> str:
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
                       check=True, capture_output=True)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def restart(self) -> None:
        """A fast restart (as a minor-version upgrade does): every session is dropped."""
        self._run(f"{self.bin}/pg_ctl -D {self.data} -l {self.data}/log -m fast -w restart")

    def stop(self) -> None:
        self._run(f"{self.bin}/pg_ctl -D {self.data} -m fast -w stop")
        shutil.rmtree(self.data, ignore_errors=True)
