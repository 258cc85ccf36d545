"""``airssys bench`` reads nothing outside the repository: its peers live in benches/peers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benches._common import PEERS
from tests.conftest import ROOT

SKIPPED_DIRS = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
# a path that climbs out of the repository to its neighbour "shared"
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|parent\s*/\s*[\"']" + "shared")


def _texts() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        if SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix in {".py", ".md", ".toml", ".wat", ".wit", ".cfg", ".txt", ""}:
            files.append(path)
    return files


def test_the_peers_live_in_the_repository() -> None:
    assert PEERS.resolve().is_relative_to(ROOT.resolve())
    named = set()
    for bench in (ROOT / "benches").glob("*.py"):
        named.update(re.findall(r"PEERS\s*/\s*\"([^\"]+)\"", bench.read_text()))
    assert named, "no benchmark names a peer plugin: did the path change?"
    for name in named:
        assert (PEERS / name).is_file(), f"benches name {name}, missing from {PEERS}"


def test_nothing_reads_from_beside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _texts()
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_the_extism_peer_echoes() -> None:
    extism = pytest.importorskip("extism")
    wasmtime = pytest.importorskip("wasmtime")

    wasm = bytes(wasmtime.wat2wasm((PEERS / "extism_echo.wat").read_text()))
    plugin = extism.Plugin(wasm, wasi=False)
    assert bytes(plugin.call("echo", b"peer")) == b"peer"
