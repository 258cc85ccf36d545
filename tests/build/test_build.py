"""Building real Python components: the cache, build errors, and running them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from airssys import codec, open_system
from airssys.actors import ActorState
from airssys.build import BuildError, build_component
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


def test_force_rebuilds(counter_dir: Path, shared_cache: Path) -> None:
    assert not build_component(counter_dir, cache_dir=shared_cache, force=True).cached


def test_build_error_shows_the_components_own_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "Component.toml").write_text(
        '[component]\nname = "broken"\nversion = "0.1.0"\nsource = "app.py"\nwasm = "b.wasm"\n'
    )
    (broken / "app.py").write_text("from airssys.sdk import on_message\n\nlimit = 1 / 0\n")
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
