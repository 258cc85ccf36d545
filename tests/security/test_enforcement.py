"""Capabilities enforced on live components: denials at the call, audit, health, policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airssys import codec
from airssys.actors import Actor, open_system
from airssys.errors import CapabilityDenied, HandlerError, PolicyViolation
from airssys.security import Policy
from tests.conftest import fixture_path

HELLO = codec.encode(b"hello", "raw")


class Inbox(Actor):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def on_message(self, message: object) -> object:
        assert isinstance(message, bytes)
        self.got.append(message)
        return None


def manifest(tmp_path: Path, capabilities: str, fixture: str = "host") -> Path:
    path = tmp_path / "Component.toml"
    path.write_text(
        f'[component]\nname = "{fixture}"\nversion = "1.2.3"\nwasm = "{fixture_path(fixture)}"\n'
        f"\n[capabilities]\n{capabilities}\n"
    )
    return path


async def test_undeclared_messaging_is_an_err_for_the_guest_and_nothing_else() -> None:
    async with open_system() as system:
        await system.spawn(Inbox, name="inbox")
        await system.spawn_component(fixture_path("host"), name="host")  # declares nothing
        echo = await system.spawn_component(fixture_path("echo"), name="echo")
        with pytest.raises(HandlerError, match=r"^capability denied: send /inbox; granted: "):
            await system.ask("/host", HELLO, sender="/inbox")
        assert system.lookup("/inbox")._cell.actor.got == []  # type: ignore[union-attr]
        assert await echo.ask(HELLO) == HELLO  # the neighbour answers
        health = await system.health("/host")
        assert health.alive and health.denials == 1 and health.restarts == 0
        (letter,) = [d for d in system.dead_letters if d.sender == "/host"]
        assert letter.to == "/inbox" and letter.reason.startswith("capability denied")


async def test_each_import_is_checked_against_its_own_grant(tmp_path: Path) -> None:
    async with open_system() as system:
        inbox = await system.spawn(Inbox, name="inbox")
        path = manifest(tmp_path, 'messaging = { send = ["/inbox"] }')
        await system.spawn_component(path, name="host")
        with pytest.raises(HandlerError, match="capability denied: publish fixture.events"):
            await system.ask("/host", HELLO, sender="/inbox")
        assert len(inbox._cell.actor.got) == 1  # type: ignore[union-attr]  # send passed
        with pytest.raises(HandlerError, match="capability denied: send /elsewhere"):
            await system.ask("/host", HELLO, sender="/elsewhere")


async def test_granted_messaging_flows(tmp_path: Path) -> None:
    async with open_system() as system:
        await system.spawn(Inbox, name="inbox")
        path = manifest(tmp_path, 'messaging = { send = ["/inbox"], publish = ["fixture.*"] }')
        await system.spawn_component(path, name="host")
        reply = await system.ask("/host", HELLO, sender="/inbox")
        assert reply is not None  # the request's correlation id
        assert (await system.health("/host")).denials == 0


async def test_the_audit_log_records_grants_at_start_and_denials(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    async with open_system(audit_log=audit_file) as system:
        path = manifest(tmp_path, 'messaging = { send = ["/inbox"] }')
        await system.spawn_component(path, name="host")
        with pytest.raises(HandlerError):
            await system.ask("/host", HELLO, sender="/nobody")
        grants = system.audit.query(component="/host", decision="grant")
        assert [(r.kind, r.resource) for r in grants] == [("send", "/inbox")]
        (denial,) = system.audit.query(component="/host", decision="deny")
        assert (denial.kind, denial.resource, denial.version, denial.trust) == (
            "send",
            "/nobody",
            "1.2.3",
            "unknown",
        )
        assert denial.digest == system.lookup("/host")._cell.actor.component.sha256  # type: ignore[union-attr]
    lines = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert {(r["decision"], r["resource"]) for r in lines} >= {
        ("grant", "/inbox"),
        ("deny", "/nobody"),
    }


async def test_a_component_beyond_its_ceiling_does_not_start_and_every_excess_is_named(
    tmp_path: Path,
) -> None:
    path = manifest(
        tmp_path,
        'network = ["https://api.example.com"]\n'
        'process = [{ command = "/usr/bin/true" }]\n'
        'storage = { buckets = ["default"], quota = "1GiB" }',
    )
    async with open_system() as system:
        with pytest.raises(PolicyViolation) as caught:
            await system.spawn_component(path, name="greedy")
        message = str(caught.value)
        assert "https://api.example.com" in message
        assert "/usr/bin/true" in message
        assert "quota" in message
        assert isinstance(caught.value, PermissionError)
        assert system.lookup("/greedy") is None
        assert system.audit.query(component="/greedy", decision="deny")
        with pytest.raises(PolicyViolation):
            system.component_spec("greedy", path)
        # the same declarations start when trusted
        await system.spawn_component(path, name="trusted", trust="trusted")


async def test_dev_mode_grants_everything_and_is_refused_in_production(tmp_path: Path) -> None:
    async with open_system() as system:
        await system.spawn(Inbox, name="inbox")
        await system.spawn_component(fixture_path("host"), name="host", trust="dev")
        assert await system.ask("/host", HELLO, sender="/inbox") is not None
        assert (await system.health("/host")).trust == "dev"
    policy = tmp_path / "policy.toml"
    policy.write_text("production = true\n")
    async with open_system(policy=policy) as system:
        assert system.policy.production
        with pytest.raises(PolicyViolation, match="dev"):
            await system.spawn_component(fixture_path("host"), name="host", trust="dev")


async def test_a_policy_file_bounds_what_may_be_granted(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[unknown]\nmessaging = { send = ["/public/#"] }\n')
    async with open_system(policy=Policy.load(policy)) as system:
        ok = manifest(tmp_path, 'messaging = { send = ["/public/inbox"] }')
        await system.spawn_component(ok, name="ok")
        wide = tmp_path / "wide"
        wide.mkdir()
        with pytest.raises(PolicyViolation, match="/#"):
            await system.spawn_component(
                manifest(wide, 'messaging = { send = ["/#"] }'), name="wide"
            )


async def test_subscribing_a_component_needs_a_subscribe_grant() -> None:
    async with open_system() as system:
        ref = await system.spawn_component(
            fixture_path("echo"),
            name="echo",
            capabilities={"messaging": {"subscribe": ["orders.#"]}},
        )
        system.subscribe("orders.eu.*", ref)
        with pytest.raises(CapabilityDenied, match="subscribe"):
            system.subscribe("payments.#", ref)
        assert system.broker.subscribers("payments.x") == []
        python_actor = await system.spawn(Inbox, name="inbox")
        system.subscribe("payments.#", python_actor)  # Python actors are trusted code
