"""What components hold on the host is checked at every admission, against every
component admitted before: no mount inside a writable mount, and no granted command a
component (or another user) could rewrite."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airssys.actors import open_system
from airssys.errors import PolicyViolation
from tests.conftest import fixture_path

ECHO = fixture_path("echo")  # no WASI needed: only the admission is under test


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app" / "sub").mkdir(parents=True)
    (tmp_path / "app" / "bin").mkdir()
    tool = tmp_path / "app" / "bin" / "tool"
    tool.write_text("#!/bin/sh\nid\n")
    tool.chmod(0o755)
    (tmp_path / "tools").mkdir()
    safe = tmp_path / "tools" / "tool"
    safe.write_text("#!/bin/sh\necho safe\n")
    safe.chmod(0o755)
    return tmp_path / "app"


def files(*mounts: tuple[Path, str, bool]) -> list[dict[str, Any]]:
    return [{"host": str(h), "guest": g, "writable": w} for h, g, w in mounts]


def refusals(system: Any) -> list[Any]:
    return [r for r in system.audit.query() if r.decision == "deny"]


async def test_a_mount_inside_the_components_own_writable_mount_is_refused(app: Path) -> None:
    """The issue's layout: /rw writable at app, /sub at app/sub."""
    async with open_system() as system:
        caps = {"files": files((app, "/rw", True), (app / "sub", "/sub", False))}
        with pytest.raises(PolicyViolation, match="inside the writable mount /rw") as info:
            await system.spawn_component(ECHO, name="c", trust="trusted", capabilities=caps)
        assert info.value.excesses and "files /sub" in info.value.excesses[0]
        assert [(r.kind, r.resource) for r in refusals(system)] == [("files", "/sub")]
        # the same directory twice, or siblings, do not nest
        caps = {"files": files((app / "sub", "/a", True), (app / "sub", "/b", False))}
        await system.spawn_component(ECHO, name="d", trust="trusted", capabilities=caps)


@pytest.mark.parametrize("first_writable", [True, False])
async def test_mounts_never_nest_across_components_whichever_comes_first(
    app: Path, first_writable: bool
) -> None:
    outer = files((app, "/rw", True))
    inner = files((app / "sub", "/sub", False))
    first, second = (outer, inner) if first_writable else (inner, outer)
    async with open_system() as system:
        await system.spawn_component(
            ECHO, name="first", trust="trusted", capabilities={"files": first}
        )
        with pytest.raises(PolicyViolation, match="writable"):
            await system.spawn_component(
                ECHO, name="second", trust="trusted", capabilities={"files": second}
            )
        assert [r.kind for r in refusals(system)] == ["files"]


async def test_a_command_inside_a_writable_mount_is_refused(app: Path) -> None:
    tool = str(app / "bin" / "tool")
    async with open_system() as system:
        caps = {"files": files((app, "/rw", True)), "process": [{"command": tool}]}
        with pytest.raises(PolicyViolation, match="under the writable mount /rw"):
            await system.spawn_component(ECHO, name="own", trust="trusted", capabilities=caps)
        # a command granted first, a writable mount over it later: the later one is refused
        await system.spawn_component(
            ECHO, name="runner", trust="trusted", capabilities={"process": [{"command": tool}]}
        )
        with pytest.raises(PolicyViolation, match="granted to"):
            await system.spawn_component(
                ECHO,
                name="writer",
                trust="trusted",
                capabilities={"files": files((app, "/w", True))},
            )
        # and the other way round: a writable mount first, a command under it later
        await system.spawn_component(
            ECHO,
            name="writer2",
            trust="trusted",
            capabilities={"files": files((app / "sub", "/w", True))},
        )
        with pytest.raises(PolicyViolation, match="under the writable mount /w"):
            await system.spawn_component(
                ECHO,
                name="runner2",
                trust="trusted",
                capabilities={"process": [{"command": str(app / "sub" / "tool")}]},
            )
        assert [r.kind for r in refusals(system)] == ["process", "files", "process"]


@pytest.mark.parametrize("what", ["file", "directory", "owner"])
async def test_a_command_another_user_could_rewrite_is_refused(app: Path, what: str) -> None:
    tool = app.parent / "tools" / "tool"
    if what == "file":
        tool.chmod(0o777)
    elif what == "directory":
        tool.parent.chmod(0o777)  # anyone could rename it away and put their own there
    elif os.geteuid() == 0:
        os.chown(tool, 4242, 4242)
    else:
        pytest.skip("giving a file to another user needs root")
    caps = {"process": [{"command": str(tool)}]}
    async with open_system() as system:
        with pytest.raises(PolicyViolation, match="process"):
            await system.spawn_component(ECHO, name="c", trust="trusted", capabilities=caps)
        assert [(r.kind, r.resource) for r in refusals(system)] == [("process", str(tool))]


async def test_a_command_only_root_or_this_user_can_write_is_admitted(app: Path) -> None:
    tool = app.parent / "tools" / "tool"
    tool.parent.chmod(0o1777)  # sticky, like /tmp: others cannot rename what is ours
    caps = {"process": [{"command": str(tool)}, {"command": "/bin/sh"}]}
    async with open_system() as system:
        await system.spawn_component(ECHO, name="c", trust="trusted", capabilities=caps)
        assert refusals(system) == []


async def test_a_stopped_components_mounts_no_longer_hold(app: Path) -> None:
    async with open_system() as system:
        writer = await system.spawn_component(
            ECHO, name="writer", trust="trusted", capabilities={"files": files((app, "/w", True))}
        )
        await writer.stop()
        del writer
        await system.spawn_component(
            ECHO,
            name="reader",
            trust="trusted",
            capabilities={"files": files((app / "sub", "/sub", False))},
        )
        assert refusals(system) == []
