"""The Dockerfile, built and run with podman: non-root, the demo served, HEALTHCHECK passing,
keys (0600) in the instance volume, `init` idempotent across restarts, a clean stop on SIGTERM.
Plus the compose file, validated by podman-compose."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, free_port
from .containers import BASE_IMAGE, Podman, PodmanUnavailable

IMAGE = f"localhost/topicfeed:test-{os.getpid()}"  # own tag: other worktrees build on the same image store


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    try:
        return Podman(tmp_path_factory.mktemp("podman"))
    except PodmanUnavailable as exc:
        pytest.skip(f"podman cannot run here: {exc}")


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    podman.ensure_base_image()
    podman.run("build", "--format", "docker", "--secret", "id=hostca,src=/etc/ssl/certs/ca-certificates.crt",
               "--build-arg", f"BASE={BASE_IMAGE}", "-t", IMAGE, str(REPO), timeout=1200)
    yield IMAGE
    podman.run("rmi", "-f", IMAGE, check=False)


def bridge_network(podman: Podman) -> tuple[str, str]:
    """(subnet, gateway) of podman's default bridge: the host's requests to a published port
    reach the container from its gateway (docker's default bridge: 172.17.0.0/16)."""
    [subnet] = json.loads(podman.run("network", "inspect", "podman").stdout)[0]["subnets"][:1]
    return subnet["subnet"], subnet["gateway"]


@pytest.fixture
def container(podman: Podman, image: str) -> Iterator[tuple[str, str]]:
    name = f"topicfeed-test-{secrets.token_hex(3)}"
    volume = f"{name}-instance"
    port = free_port()
    # as DEPLOY.md says: Prometheus on the host scrapes through the bridge, so allow its network
    podman.run("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", "-v", f"{volume}:/var/lib/topicfeed/instance",
               "-e", f"TOPICFEED_METRICS_ALLOW={bridge_network(podman)[0]}, ::1/128",
               image, "serve", "--demo", "--host", "0.0.0.0", "--port", "8080")
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        podman.run("rm", "-f", "-t", "5", name, check=False)
        podman.run("volume", "rm", "-f", volume, check=False)


def wait_healthy(url: str, podman: Podman, name: str) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and podman.run("container", "inspect", "--format", "{{.State.Running}}", name,
                                                      check=False).stdout.strip() != "false":
        try:
            return json.loads(urllib.request.urlopen(url + "/healthz", timeout=5).read())
        except OSError:
            time.sleep(0.5)
    logs = podman.run("logs", name, check=False)
    raise AssertionError(f"container never became healthy:\n{logs.stdout[-2000:]}\n{logs.stderr[-2000:]}")


def test_container_serves_the_demo_healthy_and_stops_cleanly(podman, container):
    name, url = container
    health = wait_healthy(url, podman, name)
    assert health["status"] == "ok" and health["public"] > 0 and health["last_import"]["result"] == "ok"
    assert b"<feed" in urllib.request.urlopen(url + "/feeds/topics/ai.atom", timeout=10).read()
    metrics = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()  # TOPICFEED_METRICS_ALLOW reached serve
    assert "topicfeed_http_requests_total{" in metrics and 'topicfeed_articles{state="public"}' in metrics
    inspected = json.loads(podman.run("image", "inspect", IMAGE).stdout)[0]
    assert "/healthz" in " ".join(inspected["Healthcheck"]["Test"]) and inspected["Config"]["User"] == "10001:10001"
    healthcheck = podman.run("healthcheck", "run", name, check=False)  # no systemd timer here: run it
    assert healthcheck.returncode == 0, healthcheck.stderr
    assert podman.run("exec", name, "id", "-u").stdout.strip() == "10001"
    assert podman.run("exec", name, "stat", "-c", "%a %U", "/var/lib/topicfeed/instance/keys.json").stdout.split() \
        == ["600", "topicfeed"]
    keys = podman.run("exec", name, "cat", "/var/lib/topicfeed/instance/keys.json").stdout

    podman.run("stop", "-t", "30", name)  # SIGTERM; SIGKILL only after 30 s
    state = json.loads(podman.run("inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 0, podman.run("logs", name, check=False).stderr[-2000:]

    default = podman.run("run", "--rm", IMAGE, "config").stdout  # without the variable: loopback only
    assert "metrics_allow = ['127.0.0.1/32', '::1/128']" in default

    podman.run("start", name)  # same instance volume: init leaves the keys alone
    wait_healthy(url, podman, name)
    logs = podman.run("logs", name).stdout
    assert "initialised: /var/lib/topicfeed/instance" in logs and "already initialised" in logs
    assert podman.run("exec", name, "cat", "/var/lib/topicfeed/instance/keys.json").stdout == keys


def test_compose_file_is_valid():
    """podman-compose (PyPI; Debian's 1.0.3 has no `config`) resolves the file; the images cannot
    be pulled here, so the same topology runs without compose in test_postgres and test_nginx_proxy."""
    pytest.importorskip("podman_compose", reason="podman-compose is not installed (pip install '.[test]')")
    compose = [sys.executable, "-m", "podman_compose", "-f", str(REPO / "deploy" / "compose.yaml"), "config"]
    proc = subprocess.run(compose, capture_output=True, text=True, timeout=120, cwd=REPO / "deploy",
                          env={**os.environ, "POSTGRES_PASSWORD": "s3cret"})
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert set(resolved["services"]) == {"topicfeed", "sync", "postgres", "nginx"}
    assert resolved["services"]["sync"]["command"] == ["import", "--watch"]
    # the image's HEALTHCHECK polls the server's /healthz, which the watcher does not serve
    assert resolved["services"]["sync"]["healthcheck"]["disable"] is True
    assert "s3cret@postgres/topicfeed" in resolved["services"]["topicfeed"]["environment"]["TOPICFEED_DATABASE_URL"]
    unset = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    refused = subprocess.run(compose, capture_output=True, text=True, timeout=120, cwd=REPO / "deploy", env=unset)
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr  # no built-in default password
