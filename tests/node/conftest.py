"""A node run as a user runs it: ``python -m airssys.cli serve DEPLOYMENT`` in a
subprocess, with a private run dir and a free loopback port; stopped (SIGTERM,
then a kill) when the test is done, so nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airssys.node import ControlClient, NodeNotRunning
from tests.conftest import ROOT

COMPONENTS = ROOT / "components"
# the first start compiles the components into the user's cache (~10 s each); after
# that a node is ready in well under a second
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deployment_text(
    run_dir: Path,
    port: int | None,
    *,
    name: str = "test",
    body: str | None = None,
    data_dir: Path | None = None,
) -> str:
    metrics = f'metrics = "127.0.0.1:{port}"\n' if port is not None else ""
    supervisors = body if body is not None else DEFAULT_BODY
    # a data dir of its own (one node of a name per data dir), unless the test chose one
    if data_dir is None and not os.environ.get("AIRSSYS_DATA_DIR"):
        data_dir = run_dir.parent / "data"
    data = "" if data_dir is None else f'data-dir = "{data_dir}"\n'
    return (
        f'[node]\nname = "{name}"\nrun-dir = "{run_dir}"\n{metrics}{data}'
        f'storage = "memory"\nshutdown-timeout = 30\n\n{supervisors}'
    )


DEFAULT_BODY = f"""
[[supervisor]]
name = "app"

[[supervisor.component]]
id = "echo"
manifest = "{COMPONENTS / "echo"}"

[[supervisor.component]]
id = "counter"
manifest = "{COMPONENTS / "counter"}"
mailbox = 100000

[[supervisor]]
name = "risky"
intensity = 1000
period = 2.0
unhealthy-after = 3

[[supervisor.component]]
id = "crasher"
manifest = "{COMPONENTS / "crasher"}"
"""


def cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """The airssys command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "airssys.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


class NodeProcess:
    """``airssys serve`` running in a subprocess; stderr goes to a file."""

    def __init__(
        self, deployment: Path, run_dir: Path, port: int | None, *, prelude: str | None = None
    ) -> None:
        """``prelude``: Python run in the node's process before ``airssys serve`` (a
        test's instrumentation, e.g. a slowed replay)."""
        self.deployment = deployment
        self.run_dir = run_dir
        self.port = port
        self.socket = run_dir / "control.sock"
        self.stderr_path = deployment.with_suffix(".stderr")
        self._stderr = self.stderr_path.open("wb")
        command = [sys.executable, "-m", "airssys.cli", "serve", str(deployment)]
        if prelude is not None:
            serve = f"from airssys.cli import main; main(['serve', {str(deployment)!r}])"
            command = [sys.executable, "-c", f"{prelude}\n{serve}"]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=ROOT,
        )
        self.returncode: int | None = None

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def client(self, timeout: float = 30.0) -> ControlClient:
        return ControlClient(self.socket, timeout=timeout)

    def request(self, op: str, **fields: Any) -> Any:
        with self.client() as client:
            return client.request(op, **fields)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the node exited with {self.proc.returncode}:\n{self.stderr[-3000:]}"
                )
            if (self.run_dir / "ready").exists():
                try:
                    if self.request("ping")["ready"]:
                        return
                except NodeNotRunning:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"the node was not ready in {timeout} s:\n{self.stderr[-3000:]}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait; a kill if it does not exit in time. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        self.returncode = self.proc.returncode
        return self.returncode


def http_get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET; an HTTP error status is returned too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.fixture(scope="session", autouse=True)
def _sample_components_built() -> None:
    """The sample Python components the deployments name, built in place as
    ``airssys build`` would (a fresh clone has no wasm; a build is cached)."""
    from airssys.build import build_component

    for name in ("echo", "counter", "crasher"):
        build_component(COMPONENTS / name)


@pytest.fixture
def start_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``start_node(body=None, metrics=True)``: a running node, stopped after the test."""
    nodes: list[NodeProcess] = []

    def start(body: str | None = None, metrics: bool = True) -> NodeProcess:
        where = tmp_path_factory.mktemp("node")
        run_dir = where / "run"
        port = free_port() if metrics else None
        deployment = where / "deployment.toml"
        deployment.write_text(deployment_text(run_dir, port, body=body))
        node = NodeProcess(deployment, run_dir, port)
        nodes.append(node)
        node.wait_ready()
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node for a whole test module."""
    where = tmp_path_factory.mktemp("node")
    run_dir = where / "run"
    port = free_port()
    deployment = where / "deployment.toml"
    deployment.write_text(deployment_text(run_dir, port))
    process = NodeProcess(deployment, run_dir, port)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def environment_without_socket() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "AIRSSYS_SOCKET"}
