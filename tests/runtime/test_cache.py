"""The compile cache: memory and disk hits, and recovery from bad entries."""

from __future__ import annotations

from pathlib import Path

from airssys.runtime import Runtime
from tests.conftest import fixture_path


def _entry(rt: Runtime, sha: str) -> Path:
    path = rt.cache.entry_path(sha)
    assert path is not None
    return path


def test_second_load_is_a_memory_hit(tmp_path: Path) -> None:
    with Runtime(cache_dir=tmp_path) as rt:
        rt.load_file(fixture_path("echo"))
        rt.load_file(fixture_path("echo"))
        assert (rt.cache.stats.compiled, rt.cache.stats.memory_hits) == (1, 1)


def test_new_runtime_reuses_the_disk_artifact(tmp_path: Path) -> None:
    with Runtime(cache_dir=tmp_path) as rt:
        sha = rt.load_file(fixture_path("echo")).sha256
        assert _entry(rt, sha).exists()
    with Runtime(cache_dir=tmp_path) as rt:
        component = rt.load_file(fixture_path("echo"))
        assert (rt.cache.stats.compiled, rt.cache.stats.disk_hits) == (0, 1)
        with rt.instantiate(component) as instance:
            assert instance.handle_message("s", b"ok") == b"ok"


def test_corrupted_entry_is_recompiled_and_replaced(tmp_path: Path) -> None:
    with Runtime(cache_dir=tmp_path) as rt:
        sha = rt.load_file(fixture_path("echo")).sha256
        path = _entry(rt, sha)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit in the machine code
    path.write_bytes(bytes(data))

    with Runtime(cache_dir=tmp_path) as rt:
        component = rt.load_file(fixture_path("echo"))
        assert (rt.cache.stats.replaced, rt.cache.stats.compiled) == (1, 1)
        with rt.instantiate(component) as instance:
            assert instance.handle_message("s", b"fine") == b"fine"
    with Runtime(cache_dir=tmp_path) as rt:  # the replacement is a good entry
        rt.load_file(fixture_path("echo"))
        assert (rt.cache.stats.disk_hits, rt.cache.stats.replaced) == (1, 0)


def test_truncated_and_foreign_entries_are_recompiled(tmp_path: Path) -> None:
    with Runtime(cache_dir=tmp_path) as rt:
        sha = rt.load_file(fixture_path("echo")).sha256
        path = _entry(rt, sha)
    for junk in (b"", b"AIRSSYS", path.read_bytes()[:100], b"\0asm" * 50):
        path.write_bytes(junk)
        with Runtime(cache_dir=tmp_path) as rt:
            rt.load_file(fixture_path("echo"))
            assert rt.cache.stats.compiled == 1


def test_unwritable_cache_dir_still_loads(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    with Runtime(cache_dir=blocker) as rt:
        component = rt.load_file(fixture_path("echo"))
        with rt.instantiate(component) as instance:
            assert instance.handle_message("s", b"a") == b"a"


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("AIRSSYS_CACHE_DIR", str(tmp_path / "env-cache"))
    with Runtime() as rt:
        sha = rt.load_file(fixture_path("echo")).sha256
        assert _entry(rt, sha).is_relative_to(tmp_path / "env-cache")
        assert _entry(rt, sha).exists()
