"""The operator's day with a node (issue 28): stale sockets, ``logs`` in a pipe,
crash noise, ``send`` and ``ask`` at the edges. Every node and every command runs
in a subprocess, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airssys.node import NodeNotRunning
from tests.conftest import ROOT
from tests.waiting import poll

from .conftest import COMPONENTS, NodeProcess, cli

pytestmark = pytest.mark.timeout(300)  # a cold cache compiles the components first

ECHO_BODY = f"""
[[supervisor]]
name = "app"

[[supervisor.component]]
id = "echo"
manifest = "{COMPONENTS / "echo"}"
"""


class _Env:
    """A private run base (``XDG_RUNTIME_DIR``) and the environment for commands and
    nodes that pick their socket there, as a user's shell would."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.base = where / "xdg"
        self.base.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if k != "AIRSSYS_SOCKET"}
        env["XDG_RUNTIME_DIR"] = str(self.base)
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []

    def deployment(self, name: str, body: str = ECHO_BODY, extra: str = "") -> Path:
        path = self.where / f"{name}.toml"
        path.write_text(
            f'[node]\nname = "{name}"\ndata-dir = "{self.where / name / "data"}"\n'
            f'storage = "memory"\n{extra}\n{body}'
        )
        return path

    def serve(self, deployment: Path) -> subprocess.Popen[bytes]:
        stderr = deployment.with_suffix(".stderr").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "airssys.cli", "serve", str(deployment)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=ROOT,
            env=self.env,
        )
        stderr.close()
        self.procs.append(proc)
        return proc

    def run_dir(self, name: str) -> Path:
        return self.base / "airssys" / name

    def wait_ready(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        ready = self.run_dir(name) / "ready"

        def up() -> bool:
            assert proc.poll() is None, (self.where / f"{name}.stderr").read_text()
            return ready.exists()

        poll(up, timeout=180.0)

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airssys.cli", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[_Env]:
    env = _Env(tmp_path)
    try:
        yield env
    finally:
        env.close()


# --- 3. a stale control socket ---------------------------------------------------------


def test_a_node_killed_with_9_does_not_block_the_commands(shell: _Env) -> None:
    """Item 3: the socket a killed node left is found dead by connecting, cleaned, and
    the commands without --node talk to the node that is running."""
    alive = shell.serve(shell.deployment("alive"))
    doomed = shell.serve(shell.deployment("doomed"))
    shell.wait_ready("alive", alive)
    shell.wait_ready("doomed", doomed)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    stale = shell.run_dir("doomed") / "control.sock"
    assert stale.exists()  # what -9 leaves behind

    result = shell.cli("list")
    assert result.returncode == 0, result.stderr
    assert "/app/echo" in result.stdout
    assert "several" not in result.stderr
    assert not stale.exists()
    status = shell.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["node"] == "alive"


def test_the_only_node_killed_with_9_is_reported_not_running(shell: _Env) -> None:
    doomed = shell.serve(shell.deployment("doomed"))
    shell.wait_ready("doomed", doomed)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    result = shell.cli("list")
    assert result.returncode == 1
    assert "no airssys node is running" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (shell.run_dir("doomed") / "control.sock").exists()


# keep the imports used by later sections of this file
_ = (NodeNotRunning, NodeProcess, cli, time)
