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


# --- 4. logs in a pipe, and when the node goes away --------------------------------------


def _logs(shell: _Env, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airssys.cli", "logs", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=shell.env,
    )


def _node_stderr(shell: _Env, name: str) -> str:
    return (shell.where / f"{name}.stderr").read_text(errors="replace")


@pytest.mark.parametrize("follow", [True, False], ids=["follow", "once"])
def test_logs_into_a_closed_pipe_ends_quietly_with_0(shell: _Env, follow: bool) -> None:
    """Item 4: ``logs [-f] | head`` whose reader is gone: status 0, nothing on the
    command's stderr, and no traceback in the node's (three tries)."""
    proc = shell.serve(shell.deployment("n"))
    shell.wait_ready("n", proc)
    for _ in range(3):
        reader = _logs(shell, *(["--follow"] if follow else []))
        assert reader.stdout is not None
        reader.stdout.close()  # the reader is gone before the first line is written
        for _ in range(3):  # events that a follower is sent, until it notices
            if reader.poll() is not None:
                break
            assert shell.cli("restart", "/app/echo").returncode == 0
        _out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        assert err == ""
    assert shell.cli("restart", "/app/echo").returncode == 0  # the node goes on serving
    stderr = _node_stderr(shell, "n")
    assert "Traceback" not in stderr
    assert "ConnectionResetError" not in stderr
    assert "never retrieved" not in stderr


def test_logs_follow_says_when_the_node_stops_and_fails_when_it_dies(shell: _Env) -> None:
    """Item 4: the node stopping ends ``logs -f`` with a line and status 0; a node
    killed with -9 ends it with an error and status 1."""
    for how, status, said in (
        (signal.SIGTERM, 0, "logs: the node ended the stream: the node is stopping"),
        (signal.SIGKILL, 1, "error: the node at"),
    ):
        proc = shell.serve(shell.deployment("n"))
        shell.wait_ready("n", proc)
        follower = _logs(shell, "--follow")
        assert follower.stdout is not None
        assert "[info" in follower.stdout.readline()  # following: the backlog arrived
        proc.send_signal(how)
        proc.wait(60)
        _out, err = follower.communicate(timeout=60)
        assert follower.returncode == status, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(said), err
        if how == signal.SIGKILL:
            assert "went away without ending the stream" in lines[0]


# keep the imports used by later sections of this file
_ = (NodeNotRunning, NodeProcess, cli, time)
