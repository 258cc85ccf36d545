"""airssys:component/http from a real Python component, against loopback servers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airssys.actors import open_system
from airssys.errors import DeadlineExceeded
from airssys.runtime import Limits
from tests.host.conftest import Handler, Server
from tests.services.conftest import BUILD_TIMEOUT, ask

pytestmark = BUILD_TIMEOUT


def network(*origins: str) -> dict[str, Any]:
    return {"network": list(origins)}


async def test_an_allowed_host_answers(
    probe: Path, shared_cache: Path, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server()
    server.routes["/hello"] = lambda h: h.reply(201, "hé ✓".encode(), (("X-Answer", "42"),))
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe, name="p", trust="trusted", capabilities=network(server.origin)
        )
        answer = await ask(
            ref,
            op="fetch",
            method="POST",
            url=server.origin + "/hello?x=1",
            headers={"X-Token": "t"},
            body="payload ✓",
            timeout_ms=5000,
        )
    assert answer["status"] == 201 and answer["body"] == "hé ✓"
    assert ["x-answer", "42"] in answer["headers"]
    [(method, path, headers, body)] = server.requests
    assert (method, path, body) == ("POST", "/hello?x=1", "payload ✓".encode())
    assert ("X-Token", "t") in headers


async def test_a_denied_port_and_a_denied_host_never_get_a_connection(
    probe: Path, shared_cache: Path, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    allowed, other = start_server(), start_server()
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe, name="p", trust="trusted", capabilities=network(allowed.origin)
        )
        answer = await ask(ref, op="fetch", url=other.origin + "/x")
        assert answer["type"] == "HttpDenied"
        assert answer["error"] == (
            f"capability denied: network {other.origin}/x; granted: {allowed.origin}"
        )
        by_name = f"http://localhost:{allowed.port}/x"
        answer = await ask(ref, op="fetch", url=by_name)
        assert answer["error"].startswith(f"capability denied: network {by_name}")
        denials = system.audit.query(decision="deny")
        assert [(d.kind, d.resource) for d in denials] == [
            ("network", other.origin + "/x"),
            ("network", by_name),
        ]
    assert other.settled() == 0
    assert allowed.settled() == 0


async def test_a_redirect_to_a_denied_host_is_refused(
    probe: Path, shared_cache: Path, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    allowed, other = start_server(), start_server()
    allowed.routes["/away"] = lambda h: h.reply(302, headers=(("Location", other.origin + "/"),))
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe, name="p", trust="trusted", capabilities=network(allowed.origin)
        )
        answer = await ask(ref, op="fetch", url=allowed.origin + "/away")
    assert answer["type"] == "HttpDenied" and other.origin in answer["error"]
    assert other.settled() == 0


async def test_no_network_grant_names_the_missing_grant(
    probe: Path, shared_cache: Path, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server()
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p")  # unknown trust, no network
        answer = await ask(ref, op="fetch", url=server.origin + "/")
    assert answer["error"] == f"capability denied: network {server.origin}/; granted: nothing"
    assert server.settled() == 0


async def test_a_call_is_bounded_by_the_message_deadline(
    probe: Path, shared_cache: Path, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server()

    def stall(handler: Handler) -> None:
        handler.server.release.wait(30)
        handler.reply(200)

    server.routes["/slow"] = stall
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe,
            name="p",
            trust="trusted",
            capabilities=network(server.origin),
            limits=Limits(timeout_ms=400),
        )
        try:  # no timeout asked for: the message's deadline bounds the call
            answer = await ask(ref, op="fetch", url=server.origin + "/slow")
        except DeadlineExceeded:
            pass  # the deadline struck as the call returned: equally bounded
        else:
            assert answer["type"] == "HttpError" and "timed out" in answer["error"]


@pytest.mark.parametrize("size", [0, 70_000])
async def test_bodies_cross_both_ways(
    probe: Path,
    shared_cache: Path,
    tmp_path: Path,
    start_server: Callable[..., Server],
    size: int,
) -> None:
    server = start_server()
    server.routes["/echo"] = lambda h: h.reply(200, h.server.requests[-1][3])
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(
            probe, name="p", trust="trusted", capabilities=network(server.origin)
        )
        body = "".join(chr(0x41 + i % 26) for i in range(size))
        answer = await ask(ref, op="fetch", method="PUT", url=server.origin + "/echo", body=body)
    assert answer["status"] == 200 and answer["body"] == body
