"""podman set up as ``../shared/TESTING.md`` describes for these machines (runc, cgroupfs, file
events), with a local Debian base image made by debootstrap and cached for the next run."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

BASE_IMAGE = "localhost/debian-base:bookworm"
CACHE = Path(os.environ.get("TOPICFEED_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "topicfeed"))
ROOTFS_TAR = CACHE / "bookworm-rootfs.tar"  # CI keeps this folder between runs: debootstrap takes minutes


class PodmanUnavailable(Exception):
    """podman cannot run at all on this machine (the reason is the message)."""


class Podman:
    """``podman`` with its own storage (images and layers in the cache folder) and configuration.
    The run root stays with the storage: podman's state database remembers the one it was made with."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("podman")
        if exe is None:
            raise PodmanUnavailable("podman is not installed (.ci/run installs podman, buildah, debootstrap, runc, …)")
        self.exe = exe
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        storage, conf = workdir / "storage.conf", workdir / "containers.conf"
        storage.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{CACHE / "podman"}"\nrunroot = "{CACHE / "podman-run"}"\n')
        conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={hard}:{hard}", "nproc=32768:32768"]\n'
                        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_CONF": str(conf)}
        info = self.run("info", check=False, timeout=120)
        if info.returncode != 0:
            raise PodmanUnavailable(f"`podman info` fails: {info.stderr.strip()[-300:]}")

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:3])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return proc

    def ensure_base_image(self) -> None:
        """The Debian base (python3 + venv): from the image store, the cached rootfs, or debootstrap."""
        if self.run("image", "exists", BASE_IMAGE, check=False).returncode == 0:
            return
        if not ROOTFS_TAR.exists():
            debootstrap_rootfs(ROOTFS_TAR)
        self.run("import", str(ROOTFS_TAR), BASE_IMAGE)


def debootstrap_rootfs(tar: Path) -> None:
    """A minimal Debian 12 with python3 and venv from the mirror apt uses, as a tar file."""
    if shutil.which("debootstrap") is None:
        raise PodmanUnavailable("debootstrap is not installed: no base image can be made (no registry is reachable)")
    sources = Path("/etc/apt/sources.list.d/debian.sources").read_text()
    mirror = next(line.split()[1] for line in sources.splitlines() if line.startswith("URIs:"))
    root = tar.parent / "rootfs.tmp"
    shutil.rmtree(root, ignore_errors=True)
    tar.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm",
                    str(root), mirror], check=True, capture_output=True, timeout=1200)
    partial = tar.with_suffix(".part")
    subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True, timeout=600)
    partial.rename(tar)
    shutil.rmtree(root)
