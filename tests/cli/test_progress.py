"""Progress instead of silence (issue 28, item 1): every wait over a second says so
on stderr (a line per phase in a pipe, JSON with --json), and a signal during
start-up stops ``airssys serve`` with one line. Every command runs in a subprocess;
nothing here asserts how long anything took."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from airssys.runtime import default_cache_dir
from tests.conftest import ROOT, fixture_path
from tests.node.conftest import COMPONENTS, cli, deployment_text
from tests.node.conftest import _sample_components_built as _sample_components_built
from tests.node.conftest import start_node as start_node
from tests.waiting import poll

pytestmark = pytest.mark.timeout(300)  # cold compiles and builds, on purpose

_TIMED = r"\d+\.\d s"


def _package(root: Path, fixture: str, version: str) -> Path:
    folder = root / f"svc-{version}"
    folder.mkdir()
    (folder / "svc.wasm").write_bytes(wasmtime.wat2wasm(fixture_path(fixture).read_text()))
    (folder / "Component.toml").write_text(
        f'[component]\nname = "svc"\nversion = "{version}"\nwasm = "svc.wasm"\n'
    )
    return folder


def _ok(*args: str) -> subprocess.CompletedProcess[str]:
    result = cli(*args)
    assert result.returncode == 0, f"airssys {' '.join(args)}:\n{result.stderr}"
    return result


def test_install_and_update_show_each_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_node: Any
) -> None:
    """Piped: update prints each step (load, compile with the cache's word, start,
    probe, switch) with its time; --json makes them JSON events; install too."""
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("AIRSSYS_CACHE_DIR", str(tmp_path / "cache"))  # nothing compiled yet
    _ok("install", str(_package(tmp_path, "echo", "1.0.0")))
    installed = _ok("install", str(_package(tmp_path, "echo-text", "2.0.0")), "--json")
    events = [json.loads(line) for line in installed.stderr.splitlines()]
    assert [(e["progress"], e["state"]) for e in events] == [
        (step, state)
        for step in ("fetch", "check", "verify", "store")
        for state in ("start", "done")
    ]
    assert json.loads(installed.stdout)["version"] == "2.0.0"

    node = start_node(
        body='[[supervisor]]\nname = "app"\n\n[[supervisor.component]]\n'
        'id = "svc"\npackage = "svc@1.0.0"\n',
        metrics=False,
    )
    updated = _ok("update", "/app/svc", "2.0.0", "--socket", str(node.socket))
    assert updated.stdout.startswith("/app/svc: 1.0.0 -> svc@2.0.0")
    lines = updated.stderr.splitlines()
    for step in ("load", "start", "probe", "switch"):
        assert any(re.fullmatch(f"/app/svc: {step} {_TIMED}", line) for line in lines), lines
    assert not any("catch up" in line for line in lines)  # not durable: nothing to catch up
    compiled = [line for line in lines if line.startswith("/app/svc: compile")]
    assert len(compiled) == 1
    assert re.fullmatch(
        f"/app/svc: compile {_TIMED} \\(\\d+ B; not in the compile cache yet\\)", compiled[0]
    )

    back = _ok("rollback", "/app/svc", "--json", "--socket", str(node.socket))
    events = [json.loads(line) for line in back.stderr.splitlines()]
    steps = {(e["progress"], e["state"]) for e in events}
    assert {("start", "done"), ("probe", "done"), ("switch", "done")} <= steps
    assert all(e["subject"] == "/app/svc" for e in events)
    assert all(isinstance(e["seconds"], float) for e in events if e["state"] == "done")
    assert json.loads(back.stdout)["package"] == "svc@1.0.0"


def _serve(deployment: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airssys.cli", "serve", str(deployment)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _read_until(proc: subprocess.Popen[str], wanted: str) -> list[str]:
    """stderr's lines up to (and with) the first that holds ``wanted``."""
    assert proc.stderr is not None
    seen: list[str] = []

    def arrived() -> bool:
        line = proc.stderr.readline() if proc.stderr else ""
        assert line or proc.poll() is None, f"exited {proc.returncode}:\n{''.join(seen)}"
        seen.append(line)
        return wanted in line

    poll(arrived, timeout=240.0, interval=0.0)
    return seen


def _env(tmp_path: Path, *, builds: bool) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "AIRSSYS_SOCKET"}
    cache = tmp_path / "cache"
    cache.mkdir()
    if builds:  # the builds, not the compiled components: the node compiles
        shutil.copytree(default_cache_dir() / "builds", cache / "builds")
    env["AIRSSYS_CACHE_DIR"] = str(cache)
    return env


def _echo_deployment(tmp_path: Path, component: Path) -> Path:
    body = (
        f'[[supervisor]]\nname = "app"\n\n[[supervisor.component]]\n'
        f'id = "echo"\nmanifest = "{component}"\n'
    )
    deployment = tmp_path / "deployment.toml"
    deployment.write_text(deployment_text(tmp_path / "run", None, body=body))
    return deployment


def test_a_cold_node_shows_its_compile_and_stops_on_a_signal_during_it(tmp_path: Path) -> None:
    """serve's start-up: the compile is announced (with the cache's word) and timed;
    SIGTERM during it stops the node with one line and status 0, never ready."""
    env = _env(tmp_path, builds=True)
    proc = _serve(_echo_deployment(tmp_path, COMPONENTS / "echo"), env)
    try:
        before = _read_until(proc, "/app/echo: compile...")
        assert "(18." in before[-1] or "MB; not in the compile cache yet)" in before[-1]
        proc.send_signal(signal.SIGTERM)
        _out, rest = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    lines = [*before, *rest.splitlines(keepends=True)]
    stopping = [line for line in lines if "during start-up" in line]
    assert len(stopping) == 1
    assert stopping[0].strip() == (
        "airssys node 'test' stopping: SIGTERM during start-up (once the step in progress ends)"
    )
    assert any(
        re.fullmatch(f"/app/echo: compile {_TIMED} \\(.*not in the compile cache yet\\)", line)
        for line in (line.strip() for line in lines)
    ), lines
    assert not any("ready:" in line or line.startswith("final ") for line in lines), lines


def test_a_signal_while_serve_builds_stops_it_with_one_line(tmp_path: Path) -> None:
    """The build before the node starts: announced in a pipe; SIGTERM during it stops
    serve at once (the build killed) with one line and status 0."""
    folder = tmp_path / "echo"
    shutil.copytree(
        COMPONENTS / "echo", folder, ignore=shutil.ignore_patterns("*.wasm", "__pycache__")
    )
    proc = _serve(_echo_deployment(tmp_path, folder), _env(tmp_path, builds=False))
    try:
        before = _read_until(proc, "echo: build...")
        proc.send_signal(signal.SIGTERM)
        _out, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert rest.strip().splitlines() == [
        "airssys serve: stopped by SIGTERM during start-up (before the node started)"
    ], before
    assert not (folder / "echo.wasm").exists()  # the build did not finish


def test_on_a_terminal_the_steps_are_rich_spinners_ticked_off(tmp_path: Path) -> None:
    """stderr a terminal (a pty): Rich's progress, each step ticked off; stdout (a
    pipe) keeps only the result."""
    import os
    import pty

    folder = _package(tmp_path, "echo", "1.0.0")
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": "160",
        "AIRSSYS_DATA_DIR": str(tmp_path / "data"),
        "AIRSSYS_CONFIG_DIR": str(tmp_path / "config"),
    }
    env.pop("NO_COLOR", None)
    main, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airssys.cli", "install", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        cwd=ROOT,
        env=env,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal's other end closed: the command is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    assert proc.wait(120) == 0, shown
    assert out.startswith("installed svc@1.0.0")
    text = shown.decode(errors="replace")
    assert "\x1b[" in text  # a terminal's control sequences: Rich drew it
    for step in ("fetch", "check"):
        assert re.search(f"✓ \\S*svc-1.0.0: {step} {_TIMED}", text), text
    for step in ("verify", "store"):
        assert re.search(f"✓ svc@1.0.0: {step} {_TIMED}", text), text
