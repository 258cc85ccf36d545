"""The build cache has the compile cache's checks: nothing another user could have
written is served, and only an intact artifact (its digest verified) is used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import airssys.build as build
from airssys.build import build_component
from airssys.errors import CacheError
from airssys.manifest import ComponentManifest

WASM = b"\0asm\x0d\0\x01\0" + b"fresh build"


class FakeBuilder:
    """componentize-py's stand-in: what the cache does around it is under test."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, manifest: ComponentManifest, work: Path, out: Path) -> None:
        self.runs += 1
        out.write_bytes(WASM)


@pytest.fixture
def builder(monkeypatch: pytest.MonkeyPatch) -> FakeBuilder:
    fake = FakeBuilder()
    monkeypatch.setattr(build, "_componentize", fake)
    return fake


@pytest.fixture
def component(tmp_path: Path) -> Path:
    directory = tmp_path / "probe"
    directory.mkdir()
    (directory / "Component.toml").write_text(
        '[component]\nname = "probe"\nversion = "0.1.0"\nsource = "app.py"\nwasm = "probe.wasm"\n'
    )
    (directory / "app.py").write_text("VALUE = 1\n")
    return directory


def _artifact(cache: Path) -> Path:
    """The one cached build in ``cache`` (whatever the code names it)."""
    (found,) = [p for p in (cache / "builds").iterdir() if not p.name.startswith(".")]
    return found


def _built(component: Path, cache: Path, builder: FakeBuilder) -> Path:
    first = build_component(component, cache_dir=cache)
    assert not first.cached and builder.runs == 1
    (component / "probe.wasm").unlink()
    return _artifact(cache)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_cached_build_owned_by_another_user_is_refused(
    component: Path, tmp_path: Path, builder: FakeBuilder
) -> None:
    artifact = _built(component, tmp_path / "cache", builder)
    os.chown(artifact, 4242, 4242)  # as if another user had planted it
    with pytest.raises(CacheError, match=rf"'{artifact}'.*owned by uid 4242"):
        build_component(component, cache_dir=tmp_path / "cache")
    assert not (component / "probe.wasm").exists()


def test_a_cached_build_others_can_write_is_refused(
    component: Path, tmp_path: Path, builder: FakeBuilder
) -> None:
    artifact = _built(component, tmp_path / "cache", builder)
    artifact.chmod(0o666)
    with pytest.raises(CacheError, match=rf"'{artifact}'.*rm {artifact}"):
        build_component(component, cache_dir=tmp_path / "cache")
    assert not (component / "probe.wasm").exists()


@pytest.mark.parametrize("mode", [0o777, 0o1777], ids=oct)
def test_a_build_cache_directory_others_can_write_is_refused(
    component: Path, tmp_path: Path, builder: FakeBuilder, mode: int
) -> None:
    _built(component, tmp_path / "cache", builder)
    builds = tmp_path / "cache" / "builds"
    builds.chmod(mode)  # anyone could plant a build there, sticky or not
    with pytest.raises(CacheError, match=rf"'{builds}'.*chmod 700 {builds}"):
        build_component(component, cache_dir=tmp_path / "cache")
    assert not (component / "probe.wasm").exists()


def test_a_corrupt_cached_build_is_rebuilt_not_served(
    component: Path, tmp_path: Path, builder: FakeBuilder
) -> None:
    artifact = _built(component, tmp_path / "cache", builder)
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the wasm: its digest no longer matches
    artifact.write_bytes(bytes(data))
    again = build_component(component, cache_dir=tmp_path / "cache")
    assert not again.cached and builder.runs == 2
    assert (component / "probe.wasm").read_bytes() == WASM
    assert build_component(component, cache_dir=tmp_path / "cache").cached  # replaced


@pytest.mark.parametrize("what", ["symlink", "directory", "fifo"])
def test_anything_but_a_regular_file_at_a_cached_build_is_rebuilt(
    component: Path, tmp_path: Path, builder: FakeBuilder, what: str
) -> None:
    artifact = _built(component, tmp_path / "cache", builder)
    elsewhere = tmp_path / "elsewhere"
    artifact.rename(elsewhere)  # a good artifact, but reached through a link
    if what == "symlink":
        artifact.symlink_to(elsewhere)
    elif what == "directory":
        (artifact / "inside").mkdir(parents=True)
    else:
        os.mkfifo(artifact)
    again = build_component(component, cache_dir=tmp_path / "cache")
    assert not again.cached and builder.runs == 2
    assert artifact.is_file() and not artifact.is_symlink()
    assert (component / "probe.wasm").read_bytes() == WASM
    assert build_component(component, cache_dir=tmp_path / "cache").cached


def test_an_intact_cached_build_is_served_without_building(
    component: Path, tmp_path: Path, builder: FakeBuilder
) -> None:
    _built(component, tmp_path / "cache", builder)
    again = build_component(component, cache_dir=tmp_path / "cache")
    assert again.cached and builder.runs == 1
    assert (component / "probe.wasm").read_bytes() == WASM
