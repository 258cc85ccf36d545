"""The persistent backends' files: settings, crashes, refusals; data dirs; open_backend."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airssys.errors import InvalidName, StorageError
from airssys.storage import (
    INSTALL_HINT,
    LmdbBackend,
    MemoryBackend,
    SqliteBackend,
    Usage,
    default_data_dir,
    open_backend,
)

ROOT = Path(__file__).resolve().parents[2]


# --- sqlite -------------------------------------------------------------------------------------


def test_sqlite_runs_wal_with_normal_sync(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with SqliteBackend(path) as store:
        store.set("/a/x", b"k", b"v")
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with SqliteBackend(path, durability="full") as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="durability"):
        SqliteBackend(path, durability="none")  # type: ignore[arg-type]


def test_sqlite_is_one_table_with_a_primary_key(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with SqliteBackend(path) as store:
        store.set("/a/x", b"k", b"v")
    conn = sqlite3.connect(path)
    try:
        info = conn.execute("PRAGMA table_info(kv)").fetchall()
        assert [(row[1], row[5]) for row in info] == [("namespace", 1), ("key", 2), ("value", 0)]
        # the usage counters follow even hand-written SQL (they are triggers)
        with conn:
            conn.execute("INSERT INTO kv VALUES ('/a/x', x'6a', x'0102')")
        assert conn.execute("SELECT bytes, keys FROM usage").fetchall() == [(5, 2)]
    finally:
        conn.close()


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot open"):
        SqliteBackend(path)


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SqliteBackend(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StorageError, match="schema 99"):
        SqliteBackend(path)


def test_two_sqlite_backends_on_one_file_see_each_other(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "s.db") as one, SqliteBackend(tmp_path / "s.db") as two:
        one.set("/a/x", b"k", b"v")
        assert two.get("/a/x", b"k") == b"v"
        assert two.increment("/a/x", b"n", 1) == 1
        assert one.increment("/a/x", b"n", 1) == 2


_CRASH = """
import os, sys
sys.path.insert(0, {root!r})
from airssys.storage import {cls}
store = {cls}({path!r})
store.set_many("/app/a/default", [(b"k%d" % i, b"v" * 100) for i in range(100)])
for _ in range(50):
    store.increment("/app/a/default", b"n", 1)
os._exit(0)  # no close, no flush: as a crash
"""


@pytest.mark.parametrize("cls", ["SqliteBackend", "LmdbBackend"])
def test_a_process_crash_loses_nothing_committed(tmp_path: Path, cls: str) -> None:
    if cls == "LmdbBackend":
        pytest.importorskip("lmdb")
    path = str(tmp_path / "store")
    script = textwrap.dedent(_CRASH).format(root=str(ROOT), cls=cls, path=path)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = SqliteBackend(path) if cls == "SqliteBackend" else LmdbBackend(path)
    try:
        assert store.get("/app/a/default", b"n") == b"50"
        assert store.usage("/app/a/default").keys == 101
        assert store.get("/app/a/default", b"k99") == b"v" * 100
    finally:
        store.close()


# --- lmdb ---------------------------------------------------------------------------------------


def test_lmdb_is_opened_once_at_a_time(tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    with LmdbBackend(tmp_path / "s.lmdb"):
        with pytest.raises(StorageError, match="open elsewhere"):
            LmdbBackend(tmp_path / "s.lmdb")
    with LmdbBackend(tmp_path / "s.lmdb") as again:  # closed: free again
        assert again.namespaces() == []


def test_lmdb_full_map_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    with LmdbBackend(tmp_path / "s.lmdb", map_size=1 << 20) as store:
        store.set("/a/x", b"small", b"v")
        with pytest.raises(StorageError, match="is full") as caught:
            store.set_many("/a/x", [(b"%d" % i, b"x" * 4000) for i in range(1000)])
        assert "map_size" in str(caught.value)
        assert store.usage("/a/x") == Usage(6, 1)
        assert store.list_keys("/a/x").keys == [b"small"]
        store.set("/a/x", b"after", b"still works")
        assert store.get("/a/x", b"after") == b"still works"


def test_lmdb_durability_levels(tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    for level in ("full", "normal", "none"):
        with LmdbBackend(tmp_path / level, durability=level) as store:
            store.set("/a/x", b"k", b"v")
            store.sync()
            flags = store._env.flags()
            assert flags["sync"] is (level != "none")
            assert flags["metasync"] is (level == "full")
    with pytest.raises(ValueError, match="durability"):
        LmdbBackend(tmp_path / "x", durability="fast")  # type: ignore[arg-type]


def test_lmdb_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lmdb", None)  # import lmdb -> ImportError
    with pytest.raises(StorageError, match=r"pip install 'airssys\[storage\]'"):
        LmdbBackend(tmp_path / "s.lmdb")
    with pytest.raises(StorageError, match="storage"):
        open_backend("lmdb", tmp_path)
    assert INSTALL_HINT == "pip install 'airssys[storage]'"


# --- data dirs and open_backend ----------------------------------------------------------


def test_default_data_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AIRSSYS_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    home_default = tmp_path / "home" / ".local" / "share" / "airssys"
    assert default_data_dir(create=False) == home_default
    assert not home_default.exists()
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")
    assert default_data_dir(create=False) == home_default
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir(create=False) == tmp_path / "xdg" / "airssys"
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "mine"))
    made = default_data_dir()
    assert made == tmp_path / "mine"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_open_backend_by_kind(tmp_path: Path) -> None:
    with open_backend("sqlite", tmp_path / "data") as store:
        assert isinstance(store, SqliteBackend)
        assert store.path == tmp_path / "data" / "airssys.sqlite3"
        store.set("/a/x", b"k", b"v")
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    other = open_backend("sqlite", tmp_path / "data", system="other")
    assert other.get("/a/x", b"k") is None  # one file per system
    other.close()
    assert isinstance(open_backend("memory", tmp_path), MemoryBackend)
    with pytest.raises(ValueError, match="sqlite, lmdb, memory"):
        open_backend("redis", tmp_path)
    with pytest.raises(InvalidName):
        open_backend("sqlite", tmp_path, system="../escape")
    with pytest.raises(ValueError, match="'normal' or 'full'"):
        open_backend("sqlite", tmp_path, durability="none")


def test_open_backend_lmdb(tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    store = open_backend("lmdb", tmp_path, map_size=8 << 20, durability="none")
    try:
        assert isinstance(store, LmdbBackend)
        assert store.path == tmp_path / "airssys.lmdb"
        assert store.map_size == 8 << 20
    finally:
        store.close()


def test_open_backend_defaults_to_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "d"))
    store = open_backend()
    try:
        assert isinstance(store, SqliteBackend)
        assert store.path == tmp_path / "d" / "airssys.sqlite3"
    finally:
        store.close()


def test_the_public_face_lists_what_it_exports() -> None:
    import types

    import airssys.storage as storage

    assert isinstance(storage.__all__, tuple)
    public = {
        name
        for name, value in vars(storage).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations"}
    }
    assert public <= set(storage.__all__), public - set(storage.__all__)
    assert all(hasattr(storage, name) for name in storage.__all__)
