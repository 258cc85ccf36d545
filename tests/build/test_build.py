"""Building real Python components: the cache, build errors, and running them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airssys import codec, open_system
from airssys.actors import ActorState
from airssys.build import (
    BuilderMissing,
    BuildError,
    build_component,
    check_sources,
    require_builder,
)
from airssys.errors import ComponentTrap, HandlerError
from tests.actors.helpers import settle

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def counter_dir(built_components: Path, tmp_path: Path) -> Path:
    target = tmp_path / "counter"
    shutil.copytree(built_components / "counter", target)
    return target


def test_second_build_of_unchanged_sources_is_a_cache_hit(
    counter_dir: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_toolchain(*args: object, **kwargs: object) -> None:
        raise AssertionError("componentize-py ran on a cache hit")

    (counter_dir / "counter.wasm").unlink()
    monkeypatch.setattr(subprocess, "run", no_toolchain)
    result = build_component(counter_dir, cache_dir=shared_cache)
    assert result.cached
    assert (counter_dir / "counter.wasm").read_bytes()[:4] == b"\0asm"


def test_a_changed_source_misses_the_cache(counter_dir: Path, shared_cache: Path) -> None:
    first = build_component(counter_dir, cache_dir=shared_cache)
    app = counter_dir / "app.py"
    app.write_text(app.read_text() + "\n# a comment changes the digest\n")
    second = build_component(counter_dir, cache_dir=shared_cache)
    assert first.key != second.key and not second.cached


def test_a_build_leaves_nothing_but_the_wasm_beside_the_sources(
    counter_dir: Path, tmp_path: Path
) -> None:
    (counter_dir / ".counter.wasm.build").write_text("left by an earlier airssys")
    cache = tmp_path / "cache"
    result = build_component(counter_dir, cache_dir=cache, force=True)  # componentize-py runs
    assert not result.cached
    assert sorted(os.listdir(counter_dir)) == ["Component.toml", "app.py", "counter.wasm"]
    # nor is a scratch directory left in the cache
    assert [p.name for p in (cache / "builds").iterdir()] == [f"counter-{result.key[:32]}.wasm"]
    (counter_dir / "counter.wasm").write_bytes(b"clobbered")
    assert build_component(counter_dir, cache_dir=cache).cached  # a hit puts it back
    assert (counter_dir / "counter.wasm").read_bytes()[:4] == b"\0asm"
    assert sorted(os.listdir(counter_dir)) == ["Component.toml", "app.py", "counter.wasm"]


def test_a_syntax_error_is_reported_before_componentize_py_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_toolchain(*args: object, **kwargs: object) -> None:
        raise AssertionError("componentize-py ran although a source does not compile")

    broken = _component(tmp_path / "broken", "from airssys.sdk import on_message\n")
    (broken / "helpers").mkdir()
    (broken / "helpers" / "util.py").write_text("x = 1\n\ndef f(:\n    pass\n")
    monkeypatch.setattr(subprocess, "run", no_toolchain)
    with pytest.raises(BuildError) as info:
        build_component(broken, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert message.endswith("broken/helpers/util.py:3: SyntaxError: invalid syntax"), message
    assert "\n" not in message
    assert not (broken / "b.wasm").exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f()\n    pass\n", r"app\.py:1: SyntaxError: expected ':'"),
        ("x = 1\n  y = 2\n", r"app\.py:2: IndentationError: unexpected indent"),
        ("x = (1,\n", r"app\.py:1: SyntaxError: '\(' was never closed"),
        ("x = 1\0\n", r"app\.py: (SyntaxError: )?source code (string )?cannot contain null bytes"),
        ("x = b'\xff' + '\xff\n", r"app\.py:1: SyntaxError: "),
    ],
)
def test_check_sources_names_file_and_line(tmp_path: Path, source: str, expected: str) -> None:
    (tmp_path / "app.py").write_text(source, encoding="latin-1")
    with pytest.raises(BuildError, match=expected):
        check_sources(tmp_path)


@pytest.mark.parametrize(
    "source",
    [
        'd = {"a": 1}\ny = f"{d["a"]}"\n',  # PEP 701
        "type Pair = tuple[int, int]\n",  # PEP 695
        "def first[T](xs: list[T]) -> T:\n    return xs[0]\n",
        "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",  # PEP 758
        'x = "\\d"  # an invalid escape warns, it is no error\n',
    ],
)
def test_check_sources_leaves_newer_syntax_to_the_guests_python(
    tmp_path: Path, source: str
) -> None:
    (tmp_path / "app.py").write_text(source)
    check_sources(tmp_path)  # the guest runs Python 3.14: this is valid there


def test_a_python_file_is_refused_naming_its_folder(counter_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"app\.py is Python source: pass its component folder"):
        build_component(counter_dir / "app.py", cache_dir=tmp_path / "cache")


def test_without_componentize_py_a_build_says_how_to_get_it(
    counter_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "componentize_py", None)  # import raises ImportError
    with pytest.raises(BuilderMissing) as info:
        build_component(counter_dir, cache_dir=tmp_path / "cache")
    assert str(info.value) == (
        "building Python components needs componentize-py, which is not installed: "
        "pip install 'airssys[build]'"
    )
    with pytest.raises(BuilderMissing):
        require_builder()


def _component(directory: Path, app: str) -> Path:
    directory.mkdir()
    (directory / "Component.toml").write_text(
        '[component]\nname = "broken"\nversion = "0.1.0"\nsource = "app.py"\nwasm = "b.wasm"\n'
    )
    (directory / "app.py").write_text(app)
    return directory


def test_build_error_shows_the_components_own_traceback(tmp_path: Path) -> None:
    broken = _component(
        tmp_path / "broken", "from airssys.sdk import on_message\n\nlimit = 1 / 0\n"
    )
    with pytest.raises(BuildError) as info:
        build_component(broken, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert 'File "app.py", line 3' in message
    assert "ZeroDivisionError" in message
    assert "_airssys_component" not in message  # our glue frames are cut


def test_manifest_without_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Component.toml").write_text(
        '[component]\nname = "x"\nversion = "0.1.0"\nwasm = "x.wasm"\n'
    )
    with pytest.raises(BuildError, match="component.source is not set"):
        build_component(tmp_path, cache_dir=tmp_path / "cache")


async def test_built_components_run_under_a_supervisor(
    built_components: Path, shared_cache: Path
) -> None:
    async with open_system(cache_dir=shared_cache) as system:
        await system.spawn_supervisor(
            [
                system.component_spec("counter", built_components / "counter"),
                system.component_spec("crasher", built_components / "crasher"),
            ],
            name="sup",
        )
        add = codec.encode({"add": 2}, "messagepack")
        assert codec.decode(await system.ask("/sup/counter", add, timeout=10)) == {"count": 2}
        with pytest.raises(HandlerError, match="'add' must be an integer"):
            await system.ask("/sup/counter", codec.encode({"add": "x"}), timeout=10)
        with pytest.raises(ComponentTrap, match="guest said: RuntimeError: poisoned"):
            await system.ask("/sup/crasher", codec.encode("poison"), timeout=10)
        crasher = system.ref("/sup/crasher")
        await settle(lambda: crasher.state is ActorState.RUNNING and crasher.restarts == 1, 30)
        reply = await system.ask("/sup/crasher", codec.encode("again"), timeout=10)
        assert codec.decode(reply) == {"ok": "again", "handled": 1}
        assert codec.decode(await system.ask("/sup/counter", add, timeout=10)) == {"count": 4}
