"""The operator's day with a node (issue 28): stale sockets, ``logs`` in a pipe,
crash noise, ``send`` and ``ask`` at the edges. Every node and every command runs
in a subprocess, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airssys.node import ControlError
from tests.conftest import ROOT
from tests.waiting import poll

from .conftest import COMPONENTS, NodeProcess, cli, deployment_text

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

    def serve(self, deployment: Path, *options: str) -> subprocess.Popen[bytes]:
        stderr = deployment.with_suffix(".stderr").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "airssys.cli", "serve", str(deployment), *options],
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


@pytest.fixture(scope="module")
def wat_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node for the module serving the echo fixture (WAT: no build, no long
    compile) at /app/echo."""
    where = tmp_path_factory.mktemp("watnode")
    deployment = where / "deployment.toml"
    body = ECHO_BODY.replace(str(COMPONENTS / "echo"), str(COMPONENTS / "fixtures" / "echo.wat"))
    deployment.write_text(deployment_text(where / "run", None, body=body))
    process = NodeProcess(deployment, where / "run", None)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


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


# --- 5. a component's crash: one line ------------------------------------------------------

CRASHER_BODY = f"""
[[supervisor]]
name = "app"
intensity = 100

[[supervisor.component]]
id = "crasher"
manifest = "{COMPONENTS / "crasher"}"
"""
_NOISE = ("Traceback", "panicked at", "RUST_BACKTRACE", "threw an unexpected exception")


@pytest.mark.parametrize("level", ["info", "debug"])
def test_a_component_crash_is_one_line_with_the_guests_message(shell: _Env, level: str) -> None:
    """Item 5: a Python exception in a component is one warning naming the guest's
    message, without the traceback and componentize-py's panic notes at info; at
    debug level the full text is there."""
    proc = shell.serve(shell.deployment("n", CRASHER_BODY), "--log-level", level)
    shell.wait_ready("n", proc)
    crashed = shell.cli("ask", "/app/crasher", '"poison"')
    assert crashed.returncode == 1
    assert "guest said: RuntimeError: poisoned" in crashed.stderr

    def died() -> list[str]:
        lines = _node_stderr(shell, "n").splitlines()
        return [line for line in lines if "component instance died" in line]

    poll(died, timeout=60.0)
    proc.send_signal(signal.SIGTERM)  # every line written: the node's stderr is whole
    proc.wait(60)
    lines = _node_stderr(shell, "n").splitlines()
    assert len(died()) == 1, lines
    assert "[warning" in died()[0] and "guest said: RuntimeError: poisoned" in died()[0]
    noisy = [line for line in lines if any(noise in line for noise in _NOISE)]
    if level == "info":
        assert noisy == []
    else:
        assert any("RuntimeError: poisoned" in line and "[debug" in line for line in lines)
        assert noisy and all("[debug" in line for line in noisy), noisy


# --- 6. send, ask and the errors the commands give ------------------------------------------


def _slow_component(where: Path) -> Path:
    """A component that spins on every message until its 4 s deadline (then traps and
    is restarted): a mailbox of one fills up behind it."""
    folder = where / "slow"
    folder.mkdir()
    (folder / "spin.wat").write_text((ROOT / "components" / "fixtures" / "spin.wat").read_text())
    (folder / "Component.toml").write_text(
        '[component]\nname = "slow"\nversion = "0.1.0"\nwasm = "spin.wat"\n\n'
        "[limits]\ntimeout-ms = 4000\nmailbox = 1\n"
    )
    return folder


def test_send_to_a_full_mailbox_waits_for_room_bounded_by_timeout(
    shell: _Env, start_node: Any
) -> None:
    """Item 6: ``send`` meets a full mailbox (strategy wait) by waiting for room, up to
    --timeout; past it, one line saying the mailbox stayed full."""
    slow = _slow_component(shell.where)
    node = start_node(
        body=f"""
[[supervisor]]
name = "app"
intensity = 1000

[[supervisor.component]]
id = "slow"
manifest = "{slow}"
mailbox = 1
"""
    )
    with node.client() as client:
        for n in range(2):  # one in hand (spinning), one queued: the mailbox is full
            client.request("send", address="/app/slow", message=str(n))
    waited = cli("send", "/app/slow", "2", "--timeout", "120", "--socket", str(node.socket))
    assert waited.returncode == 0, waited.stderr
    assert waited.stderr == ""
    # full again (one spinning, the one just sent queued): a short bound runs out
    with node.client() as client, pytest.raises(ControlError) as refused:
        client.request("send", address="/app/slow", message="3", timeout=0.05)
    assert refused.value.kind == "MailboxFull"
    assert "the mailbox of /app/slow stayed full (1 messages) for 0.05 s" in str(refused.value)


@pytest.mark.parametrize("op", ["ask", "send"])
def test_malformed_json_is_refused_naming_the_position(wat_node: NodeProcess, op: str) -> None:
    """Item 6: ``{"a": 1`` is refused (it was sent as a string); text that is not
    JSON at all is still sent as text."""
    result = cli(op, "/app/echo", '{"a": 1', "--socket", str(wat_node.socket))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "the message is not valid JSON: expecting ',' delimiter at line 1 column 8" in line
    assert "(character 8)" in line
    text = cli(op, "/app/echo", "hello there", "--socket", str(wat_node.socket))
    assert text.returncode == 0, text.stderr
    if op == "ask":
        assert text.stdout == '"hello there"\n'


def test_ask_prints_a_bytes_reply_as_json(wat_node: NodeProcess) -> None:
    """Item 6/docs: ``ask`` promises JSON; a raw reply prints as {"$bytes": base64}."""
    result = cli("ask", "/app/echo", "abc", "--codec", "raw", "--socket", str(wat_node.socket))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"$bytes": "YWJj"}


def test_serve_of_a_missing_file_says_so_once(tmp_path: Path) -> None:
    result = cli("serve", str(tmp_path / "missing.toml"))
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {tmp_path / 'missing.toml'}: cannot read the deployment: no such file\n"
    )


BAD_INPUTS: list[tuple[str, ...]] = [
    ("serve", "{dep}"),
    ("ask", "/app/echo", "1", "--timeout", "0", "--socket", "{sock}"),
    ("send", "no-slash", "1", "--socket", "{sock}"),
    ("status", "--node", "../etc"),
    ("run", "{dir}/nope"),
    ("install", "{dir}/nope"),
    ("update", "/app/echo", "ghost@9.9.9", "--socket", "{sock}"),
    ("logs", "--lines", "abc", "--socket", "{sock}"),
    ("ask", "/app/echo", "1", "--timeout", "abc", "--socket", "{sock}"),
    ("status", "--interval", "0", "--socket", "{sock}"),
    ("demo", "--strategy", "bogus"),
]


@pytest.mark.parametrize("args", BAD_INPUTS, ids=lambda a: a[0])
def test_errors_are_in_the_projects_own_words(
    wat_node: NodeProcess, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Item 6: no pydantic wording ("Value error, ...", "Input should be ...") and no
    traceback reaches a user: one line naming what was wrong."""
    dep = tmp_path / "bad.toml"
    dep.write_text('[node]\nname = "x"\nshutdown-timeout = "soon"\n')
    argv = [a.format(dep=dep, dir=tmp_path, sock=wat_node.socket) for a in args]
    result = cli(*argv)
    assert result.returncode in (1, 2), result.stdout
    for wording in ("Value error", "Input should be", "validation error", "Traceback"):
        assert wording not in result.stderr, result.stderr


def test_digests_stay_whole_on_one_line_when_piped(tmp_path: Path) -> None:
    """Item 6: ``airssys package`` into a pipe: each digest is whole on its line."""
    import re

    import wasmtime

    folder = tmp_path / "svc"
    folder.mkdir()
    wat = (ROOT / "components" / "fixtures" / "echo.wat").read_text()
    (folder / "svc.wasm").write_bytes(wasmtime.wat2wasm(wat))
    (folder / "Component.toml").write_text(
        '[component]\nname = "svc"\nversion = "1.0.0"\nwasm = "svc.wasm"\n'
    )
    env = {**os.environ, "AIRSSYS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "60"}
    env["AIRSSYS_CONFIG_DIR"] = str(tmp_path / "config")

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airssys.cli", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("install", str(folder))
    shown = run("package", "svc@1.0.0")
    digests = re.findall(r"sha256:[0-9a-f]+", shown)
    assert digests and any(len(d) == len("sha256:") + 64 for d in digests), shown
    for line in shown.splitlines():
        for digest in re.findall(r"sha256:[0-9a-f]+", line):
            assert len(digest) in (len("sha256:") + 12, len("sha256:") + 64), line
