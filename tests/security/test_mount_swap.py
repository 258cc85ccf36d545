"""Mounts pinned to the directory admitted: a directory swapped for a symlink (or for
another directory) is refused at the restart, typed and audited, and the component
never sees what now stands there; escaping symlinks left in a writable mount are
removed when the component stops or restarts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airssys import codec
from airssys.actors import ActorState, open_system
from airssys.errors import ComponentTrap, MountChanged
from airssys.security import Policy
from tests.waiting import until

pytestmark = pytest.mark.timeout(600)  # the first use builds and compiles the sample components


def ask(op: str, path: str) -> bytes:
    return codec.encode({"op": op, "path": path}, "json")


PROBE = "/sup/probe"
CRASH = codec.encode("not a request", "json")  # fileprobe calls .get on it: a trap


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    (tmp_path / "roots" / "app" / "sub").mkdir(parents=True)
    (tmp_path / "roots" / "app" / "sub" / "data.txt").write_text("admitted")
    (tmp_path / "etc").mkdir()  # outside every policy root
    (tmp_path / "etc" / "shadow").write_text("secret")
    return tmp_path


def denials(system: Any, resource_prefix: str) -> list[Any]:
    return [
        r
        for r in system.audit.query()
        if r.kind == "files" and r.decision == "deny" and r.resource.startswith(resource_prefix)
    ]


@pytest.mark.parametrize("swap", ["symlink", "directory"])
async def test_a_mount_swapped_between_restarts_is_refused_not_followed(
    built_components: Path, shared_cache: Path, roots: Path, swap: str
) -> None:
    sub = roots / "roots" / "app" / "sub"
    policy = Policy.from_dict({"trusted": {"files": [{"host": str(roots / "roots")}]}})
    async with open_system(cache_dir=shared_cache, policy=policy) as system:
        spec = system.component_spec(
            "probe",
            built_components / "fileprobe",
            trust="trusted",
            capabilities={"files": [{"host": str(sub), "guest": "/sub"}]},
        )
        await system.spawn_supervisor([spec], name="sup")
        ref = system.ref("/sup/probe")
        assert codec.decode(await system.ask(PROBE, ask("read", "/sub/data.txt"))) == "admitted"

        # what a component with write access to roots/app did in the issue, done here
        os.rename(sub, sub.with_name("away"))
        if swap == "symlink":
            os.symlink("../../etc", sub)  # the host's /etc, as far as this test goes
        else:
            os.rename(roots / "etc", sub)  # another directory moved into its place
        with pytest.raises(ComponentTrap):
            await system.ask(PROBE, CRASH, timeout=30)  # a trap: the supervisor restarts it

        refused = await until(lambda: denials(system, "/sub"), timeout=30)
        assert refused[0].component == "/sup/probe"
        reason = "without following a symlink" if swap == "symlink" else "another directory"
        assert reason in refused[0].reason
        await until(lambda: ref.state is ActorState.FAILED and ref._cell.last_error is not None)
        error = ref._cell.last_error
        assert isinstance(error, MountChanged), repr(error)
        assert error.component == "/sup/probe" and "/sub" in str(error)
        with pytest.raises(Exception) as info:  # never "secret": the instance did not start
            await system.ask(PROBE, ask("read", "/sub/shadow"), timeout=5)
        assert "secret" not in str(info.value)


async def test_an_unchanged_pinned_mount_restarts_as_before(
    built_components: Path, shared_cache: Path, roots: Path
) -> None:
    sub = roots / "roots" / "app" / "sub"
    policy = Policy.from_dict({"trusted": {"files": [{"host": str(roots / "roots")}]}})
    async with open_system(cache_dir=shared_cache, policy=policy) as system:
        spec = system.component_spec(
            "probe",
            built_components / "fileprobe",
            trust="trusted",
            capabilities={"files": [{"host": str(sub), "guest": "/sub"}]},
        )
        await system.spawn_supervisor([spec], name="sup")
        ref = system.ref("/sup/probe")
        with pytest.raises(ComponentTrap):
            await system.ask(PROBE, CRASH, timeout=30)
        await until(lambda: ref.restarts == 1 and ref.state is ActorState.RUNNING, timeout=30)
        (sub / "later.txt").write_text("written after the start")
        assert codec.decode(await system.ask(PROBE, ask("read", "/sub/later.txt"))) == (
            "written after the start"
        )
        assert denials(system, "/") == []


@pytest.mark.parametrize("how", ["restart", "stop"])
async def test_escaping_symlinks_in_a_writable_mount_are_removed_and_audited(
    built_components: Path, shared_cache: Path, roots: Path, how: str
) -> None:
    out = roots / "roots" / "out"
    (out / "deep" / "er").mkdir(parents=True)
    (out / "kept.txt").write_text("a file")
    policy = Policy.from_dict({"trusted": {"files": [{"host": str(roots), "writable": True}]}})
    async with open_system(cache_dir=shared_cache, policy=policy) as system:
        spec = system.component_spec(
            "probe",
            built_components / "fileprobe",
            trust="trusted",
            capabilities={"files": [{"host": str(out), "guest": "/out", "writable": True}]},
        )
        await system.spawn_supervisor([spec], name="sup")
        ref = system.ref("/sup/probe")
        assert codec.decode(await system.ask(PROBE, ask("write", "/out/note.txt"))) == 0
        # links as a guest makes them through WASI (it cannot follow the escaping ones)
        os.symlink("../../etc", out / "up")  # relative, out of the mount
        os.symlink(roots / "etc" / "shadow", out / "deep" / "er" / "abs")  # absolute
        os.symlink("../kept.txt", out / "deep" / "inside")  # stays inside: kept
        os.symlink("up/shadow", out / "chained")  # through another escaping link
        os.symlink(out / "kept.txt", out / "absolute-inside")  # kept
        if how == "restart":
            with pytest.raises(ComponentTrap):
                await system.ask(PROBE, CRASH, timeout=30)
            await until(lambda: ref.restarts == 1 and ref.state is ActorState.RUNNING, timeout=30)
        else:
            await ref.stop()
        removed = {r.resource for r in denials(system, "/out")}
        assert removed == {"/out/up", "/out/deep/er/abs", "/out/chained"}
        left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_symlink())
        assert left == ["absolute-inside", "deep/inside"]
        assert (out / "kept.txt").read_text() == "a file"
        assert (roots / "etc" / "shadow").read_text() == "secret"  # only links go
