"""The probe component (tests/services/probe), built once, and helpers to drive it.

The probe answers JSON messages ``{"op": ..., ...}`` by calling the host services
through the SDK (key-value, HTTP, processes); see its ``app.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from airssys import codec
from airssys.actors import ActorRef
from tests.host.conftest import start_server  # noqa: F401  (the loopback-server fixture, shared)

HERE = Path(__file__).resolve().parent
BUILD_TIMEOUT = pytest.mark.timeout(600)


@pytest.fixture(scope="session")
def probe(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe's Component.toml, in a copy built with the session's cache."""
    from airssys.build import build_component

    target = tmp_path_factory.mktemp("services") / "probe"
    shutil.copytree(HERE / "probe", target, ignore=shutil.ignore_patterns("*.wasm", "__pycache__"))
    build_component(target, cache_dir=shared_cache)
    return target / "Component.toml"


@pytest.fixture
def cache_env(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Systems opened by the test compile into the session's cache."""
    monkeypatch.setenv("AIRSSYS_CACHE_DIR", str(shared_cache))
    return shared_cache


async def ask(ref: ActorRef, timeout: float = 10.0, **message: Any) -> Any:
    """Send the probe one op and return its decoded reply."""
    reply = await ref.ask(codec.encode(message, "json"), timeout=timeout)
    return codec.decode(reply)


class ServicesHost:
    """A Host with services (in-memory storage, every bucket granted), for an
    instance driven without an actor system."""

    def __init__(self, address: str = "/t") -> None:
        from airssys.security import Grants
        from airssys.storage import KeyValue, MemoryBackend

        self.address = address
        self.services = self
        self.keyvalue = KeyValue(MemoryBackend(), checks=Grants.everything().compile(address))

    def time_left(self) -> float:
        return 60.0

    def self_address(self) -> str:
        return self.address

    def send(self, to: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        return ""
