"""The files capability: granted directories become WASI mounts, nothing else is seen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airssys import codec
from airssys.actors import open_system
from airssys.errors import HandlerError, PolicyViolation
from airssys.security import Policy

pytestmark = pytest.mark.timeout(600)  # the first use builds and compiles the sample components


def probe_manifest(built: Path, where: Path, files: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    path = where / "Component.toml"
    path.write_text(
        '[component]\nname = "fileprobe"\nversion = "0.1.0"\n'
        f'wasm = "{built / "fileprobe" / "fileprobe.wasm"}"\n'
        f"\n[capabilities]\nfiles = {files}\n"
    )
    return path


def ask(op: str, path: str, **more: str) -> bytes:
    return codec.encode({"op": op, "path": path, **more}, "json")


@pytest.fixture
def mounts(tmp_path: Path) -> Path:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "greeting.txt").write_text("hello from the host")
    (tmp_path / "rw").mkdir()
    (tmp_path / "secret.txt").write_text("not for components")
    os.symlink(tmp_path / "secret.txt", tmp_path / "ro" / "escape.txt")
    return tmp_path


async def test_granted_mounts_are_all_a_component_sees(
    built_components: Path, mounts: Path, shared_cache: Path
) -> None:
    manifest = probe_manifest(
        built_components,
        mounts / "app",
        '[{ host = "../ro", guest = "/data" },'
        ' { host = "../rw", guest = "/out", writable = true }]',
    )
    policy = Policy.from_dict({"trusted": {"files": [{"host": str(mounts), "writable": True}]}})
    async with open_system(cache_dir=shared_cache, policy=policy) as system:
        await system.spawn_component(manifest, name="probe", trust="trusted")

        async def call(message: bytes) -> object:
            return codec.decode(await system.ask("/probe", message, timeout=10))

        assert await call(ask("read", "/data/greeting.txt")) == "hello from the host"
        assert await call(ask("list", "/")) == ["data", "out"]
        assert await call(ask("write", "/out/note.txt", text="kept")) == 4
        assert (mounts / "rw" / "note.txt").read_text() == "kept"
        refusals = [
            ask("write", "/data/new.txt", text="x"),  # a read-only mount
            ask("read", "/data/../secret.txt"),  # '..' out of the mount
            ask("read", "/data/escape.txt"),  # a symlink pointing outside
            ask("read", str(mounts / "secret.txt")),  # an absolute host path
            ask("list", str(mounts)),
        ]
        for message in refusals:
            with pytest.raises(HandlerError):
                await system.ask("/probe", message, timeout=10)
        assert not (mounts / "ro" / "new.txt").exists()
        assert (await system.health("/probe")).restarts == 0


async def test_a_mount_outside_the_ceiling_does_not_start(
    built_components: Path, mounts: Path, shared_cache: Path
) -> None:
    manifest = probe_manifest(
        built_components, mounts / "app", '[{ host = "../ro", guest = "/d" }]'
    )
    async with open_system(cache_dir=shared_cache) as system:  # unknown: no files at all
        with pytest.raises(PolicyViolation, match="files"):
            await system.spawn_component(manifest, name="probe")


async def test_a_symlinked_mount_is_held_to_the_ceiling_by_its_real_path(
    built_components: Path, mounts: Path, shared_cache: Path
) -> None:
    allowed = mounts / "allowed"
    allowed.mkdir()
    os.symlink(mounts / "rw", allowed / "link")  # inside the root by name, outside in fact
    manifest = probe_manifest(
        built_components, mounts / "app", f'[{{ host = "{allowed / "link"}", guest = "/d" }}]'
    )
    policy = Policy.from_dict({"trusted": {"files": [{"host": str(allowed)}]}})
    async with open_system(cache_dir=shared_cache, policy=policy) as system:
        with pytest.raises(PolicyViolation, match="resolves to"):
            await system.spawn_component(manifest, name="probe", trust="trusted")
