"""Backends for the storage tests: every kind, fresh per test, closed after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airssys.storage import Backend, LmdbBackend, MemoryBackend, SqliteBackend

KINDS = ("memory", "sqlite", "lmdb")
PERSISTENT = ("sqlite", "lmdb")

Opener = Callable[[], Backend]


def opener(kind: str, root: Path) -> Opener:
    """A function opening the same store again each time it is called."""
    if kind == "memory":
        return MemoryBackend
    if kind == "sqlite":
        return lambda: SqliteBackend(root / "store.sqlite3")
    pytest.importorskip("lmdb")
    # no fsync per commit: fast tests (the durability levels have tests of their own)
    return lambda: LmdbBackend(root / "store.lmdb", map_size=64 << 20, durability="none")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    store = opener(kind, tmp_path)()
    yield store
    store.close()


@pytest.fixture(params=PERSISTENT)
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same persistent store each call (the caller closes each)."""
    return opener(str(request.param), tmp_path)
