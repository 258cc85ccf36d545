"""airssys:component/process from a real Python component."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airssys.actors import open_system
from tests.services.conftest import BUILD_TIMEOUT, ask

pytestmark = BUILD_TIMEOUT


def process(*grants: dict[str, Any]) -> dict[str, Any]:
    return {"process": list(grants)}


async def test_a_granted_echo_runs(probe: Path, shared_cache: Path, tmp_path: Path) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe,
            name="p",
            trust="trusted",
            capabilities=process({"command": "/bin/echo", "args": ["**"]}, {"command": "/bin/cat"}),
        )
        answer = await ask(ref, op="run", command="/bin/echo", args=["hello", "wörld ✓"])
        assert answer == {
            "exit_code": 0,
            "stdout": "hello wörld ✓\n",
            "stderr": "",
            "truncated": False,
        }
        answer = await ask(ref, op="run", command="/bin/cat", stdin="fed through stdin")
        assert answer["stdout"] == "fed through stdin"


async def test_a_shell_and_an_argument_outside_the_pattern_are_denied_and_audited(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe,
            name="p",
            trust="trusted",
            capabilities=process({"command": "/bin/echo", "args": ["hello", "*"]}),
        )
        answer = await ask(ref, op="run", command="/bin/sh", args=["-c", "echo owned"])
        assert answer["type"] == "ProcessDenied"
        assert answer["error"] == (
            "capability denied: process /bin/sh -c 'echo owned'; granted: /bin/echo hello *"
        )
        answer = await ask(ref, op="run", command="/bin/echo", args=["bye", "x"])
        assert answer["type"] == "ProcessDenied"
        assert (await ask(ref, op="run", command="/bin/echo", args=["hello", "x"]))[
            "stdout"
        ] == "hello x\n"
        denials = system.audit.query(decision="deny")
        assert [(d.kind, d.resource) for d in denials] == [
            ("process", "/bin/sh -c 'echo owned'"),
            ("process", "/bin/echo bye x"),
        ]


async def test_no_process_grant_names_the_missing_grant(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p")
        answer = await ask(ref, op="run", command="/bin/echo", args=["hi"])
    assert answer["error"] == "capability denied: process /bin/echo hi; granted: nothing"


async def test_a_process_past_its_timeout_is_killed(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe,
            name="p",
            trust="trusted",
            capabilities=process({"command": "/bin/sleep", "args": ["*"]}),
        )
        answer = await ask(ref, op="run", command="/bin/sleep", args=["30"], timeout_ms=100)
    assert answer["type"] == "ProcessError" and "ran past its timeout" in answer["error"]
