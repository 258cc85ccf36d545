"""Fixtures for the store and install tests: small components, an isolated data and
config directory, a loopback HTTP server and local git repositories."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airssys.lifecycle import Store
from tests.conftest import ROOT, fixture_path

GIT = shutil.which("git")


@functools.cache
def tiny_wasm() -> bytes:
    """A real (618-byte) component: the echo fixture, assembled."""
    import wasmtime

    return bytes(wasmtime.wat2wasm(fixture_path("echo").read_text()))


def write_component(
    folder: Path,
    *,
    name: str = "tiny",
    version: str = "0.1.0",
    wasm: bytes | None = None,
    extra: str = "",
    files: dict[str, bytes] | None = None,
) -> Path:
    """A component folder: Component.toml, ``<name>.wasm`` and ``files``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Component.toml").write_text(
        f'[component]\nname = "{name}"\nversion = "{version}"\nwasm = "{name}.wasm"\n{extra}'
    )
    (folder / f"{name}.wasm").write_bytes(tiny_wasm() if wasm is None else wasm)
    for rel, data in (files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def make_archive(folder: Path, archive: Path, *, top: str | None = None) -> Path:
    """A .tar.gz of ``folder`` (under the directory ``top`` when given)."""
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname=top or ".")
    return archive


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing read from or written to the real data or config directories."""
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


@pytest.fixture
def component(tmp_path: Path) -> Path:
    return write_component(tmp_path / "src" / "tiny")


@pytest.fixture
def echo_copy(tmp_path: Path) -> Path:
    """A copy of components/echo (Component.toml, app.py and the built echo.wasm)."""
    source = ROOT / "components" / "echo"
    if not (source / "echo.wasm").is_file():
        pytest.skip("components/echo/echo.wasm is not built")
    return Path(shutil.copytree(source, tmp_path / "echo"))


# --- a loopback HTTP server --------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Served:
    root: Path
    url: str

    def __call__(self, name: str) -> str:
        return f"{self.url}/{name}"


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[Served]:
    """An HTTP server on 127.0.0.1 (a free port) serving the files of a directory."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http", daemon=True
    )
    thread.start()
    try:
        yield Served(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- local git repositories ---------------------------------------------------------------


def git(*args: str, cwd: Path | None = None) -> str:
    assert GIT is not None
    done = subprocess.run(
        [GIT, "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd or Path.cwd())},
    )
    return done.stdout.strip()


@dataclass(frozen=True)
class Repo:
    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return f"git+{self.bare.as_uri()}"

    def commit(self, message: str, *, tag: str | None = None) -> str:
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        if tag is not None:
            git("tag", tag, cwd=self.work)
        git("push", "-q", "origin", "HEAD:main", "--tags", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A bare repository (branch main) and a working clone that pushes to it."""
    if GIT is None:
        pytest.skip("git is not installed")
    bare = tmp_path / "repos" / "tiny.git"
    work = tmp_path / "work"
    bare.parent.mkdir()
    git("init", "-q", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    git("init", "-q", "--initial-branch=main", str(work), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=work)
    return Repo(bare, work)


# --- the CLI in a subprocess --------------------------------------------------------------

_HARNESS = """
import sys
from airssys.cli import app, main
if not any(c.name == "install" for c in app.registered_commands):
    from airssys.cli._store_cmds import register
    register(app)
main(sys.argv[1:])
"""


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``airssys ARGS`` (``python -m airssys.cli``) in a subprocess with private
    data and config directories; through a harness that adds the store commands while
    airssys.cli does not wire them in."""
    from airssys.cli import app

    wired = any(c.name == "install" for c in app.registered_commands)
    command = ["-m", "airssys.cli"] if wired else ["-c", _HARNESS]
    env = {
        **os.environ,
        "AIRSSYS_DATA_DIR": str(tmp_path / "data"),
        "AIRSSYS_CONFIG_DIR": str(tmp_path / "config"),
        "COLUMNS": "200",
    }

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *command, *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    return run
