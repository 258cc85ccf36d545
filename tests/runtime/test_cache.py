"""The compile cache: memory and disk hits, and recovery from bad entries."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime
from structlog.testing import capture_logs

from airssys.errors import CacheError
from airssys.runtime import CacheStats, Runtime
from airssys.runtime._cache import entry_bound
from tests.conftest import fixture_path


def _entry(rt: Runtime, sha: str) -> Path:
    path = rt.cache.entry_path(sha)
    assert path is not None
    return path


def test_second_load_is_a_memory_hit(tmp_path: Path) -> None:
    wat = fixture_path("echo").read_text()
    with Runtime(cache_dir=tmp_path) as rt:
        rt.load_wat(wat)
        rt.load_wat(wat)
        assert (rt.cache.stats.compiled, rt.cache.stats.memory_hits) == (1, 1)


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    copy = tmp_path / "echo.wat"
    copy.write_text(fixture_path("echo").read_text())
    with Runtime(cache_dir=tmp_path) as rt:
        first = rt.load_file(copy)
        assert rt.load_file(copy) is first
        assert rt.cache.stats.memory_hits == 0  # not even hashed again
        copy.write_text(copy.read_text() + "\n;; changed\n")
        assert rt.load_file(copy) is not first


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


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRSSYS_CACHE_DIR", str(tmp_path / "env-cache"))
    with Runtime() as rt:
        sha = rt.load_file(fixture_path("echo")).sha256
        assert _entry(rt, sha).is_relative_to(tmp_path / "env-cache")
        assert _entry(rt, sha).exists()


# --- hardening (issue 8, items 13-16) ----------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _echo_entry(cache_dir: Path) -> Path:
    """Where the echo fixture's artifact goes in ``cache_dir`` (nothing is written)."""
    wasm = bytes(wasmtime.wat2wasm(fixture_path("echo").read_text()))
    with Runtime(cache_dir=cache_dir, disk_cache=True) as rt:
        return _entry(rt, hashlib.sha256(wasm).hexdigest())


def _load_echo(cache_dir: Path) -> CacheStats:
    with Runtime(cache_dir=cache_dir) as rt:
        component = rt.load_file(fixture_path("echo"))
        with rt.instantiate(component) as instance:
            assert instance.handle_message("s", b"still works") == b"still works"
        return rt.cache.stats


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


# item 13: temporaries left by a writer killed mid-write

_STALL_WRITE = """
import os, sys, time
os.replace = lambda src, dst: (print("writing", flush=True), time.sleep(600))
from airssys.runtime import Runtime
Runtime(cache_dir=sys.argv[1]).load_file(sys.argv[2])
"""


def test_temporary_of_a_writer_killed_mid_write_is_removed(tmp_path: Path) -> None:
    writer = _python(_STALL_WRITE, str(tmp_path), str(fixture_path("echo")))
    assert writer.stdout is not None
    assert writer.stdout.readline() == "writing\n"  # the temporary is written, not renamed
    writer.kill()  # SIGKILL: no cleanup handler runs
    writer.wait()
    writer.stdout.close()
    assert writer.stdin is not None
    writer.stdin.close()
    (left,) = (tmp_path / "compiled").glob(".tmp-*")
    assert str(writer.pid) in left.name  # the writer's pid is in the name
    _age(left, 120)

    stats = _load_echo(tmp_path)
    assert stats.stale_removed == 1
    assert not list((tmp_path / "compiled").glob(".tmp-*"))
    assert _echo_entry(tmp_path).is_file()


def test_only_abandoned_temporaries_are_removed(tmp_path: Path) -> None:
    directory = tmp_path / "compiled"
    directory.mkdir(mode=0o700)
    dead = _dead_pid()
    files = {
        "dead-old": directory / f".tmp-{dead}-aaaa.cwasm",  # writer gone: removed
        "ancient": directory / ".tmp-x1y2z3.cwasm",  # no pid, untouched for hours: removed
        "dead-fresh": directory / f".tmp-{dead}-bbbb.cwasm",  # may still be renaming: kept
        "live": directory / f".tmp-{os.getpid()}-cccc.cwasm",  # writer alive: kept
    }
    for path in files.values():
        path.write_bytes(b"partial")
    _age(files["dead-old"], 120)
    _age(files["ancient"], 2 * 3600)
    _age(files["live"], 120)

    assert _load_echo(tmp_path).stale_removed == 2
    left = {name for name, path in files.items() if path.exists()}
    assert left == {"dead-fresh", "live"}


# item 14: only regular files of bounded size are read


def test_fifo_at_an_entry_is_replaced_not_waited_on(tmp_path: Path) -> None:
    entry = _echo_entry(tmp_path)
    entry.parent.mkdir(mode=0o700, parents=True)
    os.mkfifo(entry)  # reading it the ordinary way blocks for a writer forever
    stats = _load_echo(tmp_path)
    assert (stats.replaced, stats.compiled) == (1, 1)
    assert stat.S_ISREG(entry.lstat().st_mode)
    assert _load_echo(tmp_path).disk_hits == 1


@pytest.mark.parametrize("target", ["/dev/zero", "a good entry elsewhere"])
def test_symlinked_entry_is_never_followed(tmp_path: Path, target: str) -> None:
    entry = _echo_entry(tmp_path / "cache")
    if target == "/dev/zero":
        pointee = Path("/dev/zero")  # read whole: MemoryError
    else:
        _load_echo(tmp_path / "elsewhere")
        pointee = _echo_entry(tmp_path / "elsewhere")
    entry.parent.mkdir(mode=0o700, parents=True)
    entry.symlink_to(pointee)
    stats = _load_echo(tmp_path / "cache")
    assert (stats.replaced, stats.compiled, stats.disk_hits) == (1, 1, 0)
    assert not entry.is_symlink()
    assert entry.is_file()


def test_oversized_entry_is_not_read(tmp_path: Path) -> None:
    entry = _echo_entry(tmp_path)
    entry.parent.mkdir(mode=0o700, parents=True)
    wasm = wasmtime.wat2wasm(fixture_path("echo").read_text())
    with entry.open("wb") as f:  # sparse: takes no disk space
        f.truncate(entry_bound(len(wasm)) + 1)
    entry.chmod(0o600)
    with capture_logs() as logs:
        stats = _load_echo(tmp_path)
    assert (stats.replaced, stats.compiled) == (1, 1)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "cache entry too large; recompiling"  # refused by its size, before reading it
    ]
    assert entry.stat().st_size < entry_bound(len(wasm))


# item 15: one process compiles, the others wait and reuse its artifact

_RACE = """
import sys, time
from airssys.runtime import CompileCache, Runtime

compile_for_real = CompileCache._compile


def slow_compile(self, wasm):
    time.sleep(0.3)  # widen the window in which an unlocked peer would compile too
    return compile_for_real(self, wasm)


CompileCache._compile = slow_compile
with Runtime(cache_dir=sys.argv[1]) as rt:
    print("ready", flush=True)
    sys.stdin.readline()  # the parent starts everyone at once
    rt.load_file(sys.argv[2])
    print(rt.cache.stats.compiled, rt.cache.stats.disk_hits, flush=True)
"""


def test_processes_loading_the_same_new_component_compile_it_once(tmp_path: Path) -> None:
    procs = [_python(_RACE, str(tmp_path), str(fixture_path("echo"))) for _ in range(3)]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    counts = []
    for proc in procs:
        out, _ = proc.communicate()
        assert proc.returncode == 0
        compiled, disk_hits = map(int, out.split())
        counts.append((compiled, disk_hits))
    assert sorted(counts) == [(0, 1), (0, 1), (1, 0)]


# item 16: a private directory, and nothing loaded from one others can write


def test_new_cache_directories_are_private(tmp_path: Path) -> None:
    _load_echo(tmp_path / "new" / "cache")
    for path in (tmp_path / "new", tmp_path / "new" / "cache", tmp_path / "new/cache/compiled"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777], ids=oct)
def test_cache_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    _load_echo(tmp_path)
    directory = tmp_path / "compiled"
    directory.chmod(mode)
    with Runtime(cache_dir=tmp_path) as rt:
        with pytest.raises(CacheError) as info:
            rt.load_file(fixture_path("echo"))
    message = str(info.value)
    assert f"'{directory}'" in message
    assert f"chmod 700 {directory}" in message


def test_directory_above_the_cache_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could swap the cache directory for their own
    with Runtime(cache_dir=shared / "airssys") as rt:
        with pytest.raises(CacheError, match=rf"'{shared}'.*chmod go-w {shared}"):
            rt.load_file(fixture_path("echo"))
    shared.chmod(0o1777)  # sticky, like /tmp: others cannot rename or remove our names
    assert _load_echo(shared / "airssys").compiled == 1


def test_entry_others_can_write_is_refused(tmp_path: Path) -> None:
    _load_echo(tmp_path)
    entry = _echo_entry(tmp_path)
    entry.chmod(0o666)
    with Runtime(cache_dir=tmp_path) as rt:
        with pytest.raises(CacheError) as info:
            rt.load_file(fixture_path("echo"))
    assert f"'{entry}'" in str(info.value)
    assert f"rm {entry}" in str(info.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("what", ["directory", "entry"])
def test_cache_owned_by_another_user_is_refused(tmp_path: Path, what: str) -> None:
    _load_echo(tmp_path)
    path = tmp_path / "compiled" if what == "directory" else _echo_entry(tmp_path)
    os.chown(path, 4242, 4242)
    with Runtime(cache_dir=tmp_path) as rt:
        with pytest.raises(CacheError, match=rf"'{path}'.*owned by uid 4242"):
            rt.load_file(fixture_path("echo"))
