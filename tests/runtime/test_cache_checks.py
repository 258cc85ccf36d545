"""The compile cache replaces whatever stands at an entry's path with a fresh compile."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import wasmtime

from airssys.runtime import CacheStats, Runtime
from tests.conftest import fixture_path


def _echo_entry(cache_dir: Path) -> Path:
    wasm = bytes(wasmtime.wat2wasm(fixture_path("echo").read_text()))
    with Runtime(cache_dir=cache_dir) as rt:
        path = rt.cache.entry_path(hashlib.sha256(wasm).hexdigest())
    assert path is not None
    return path


def _load_echo(cache_dir: Path) -> CacheStats:
    with Runtime(cache_dir=cache_dir) as rt:
        component = rt.load_file(fixture_path("echo"))
        with rt.instantiate(component) as instance:
            assert instance.handle_message("s", b"still works") == b"still works"
        return rt.cache.stats


def test_a_directory_at_an_entry_is_replaced_by_a_fresh_compile(tmp_path: Path) -> None:
    entry = _echo_entry(tmp_path)
    (entry / "inside").mkdir(mode=0o700, parents=True)  # not empty: rmdir alone fails
    (entry / "inside" / "file").write_bytes(b"x")
    stats = _load_echo(tmp_path)
    assert (stats.replaced, stats.compiled) == (1, 1)
    assert stat.S_ISREG(entry.lstat().st_mode)
    assert _load_echo(tmp_path).disk_hits == 1  # the fresh artifact took its place
    assert [p.name for p in entry.parent.iterdir() if p.name.startswith(".tmp-")] == []
