"""The layers hold at run time, not only in the import contract (pyproject.toml).

* Every module imports alone, in a fresh interpreter, and all of them import in
  any order: nothing depends on ``airssys/__init__.py``'s line order.
* A message walks down the layers: during an ask (and a component's send) no call
  chain enters a package it has already passed through (no actors -> broker ->
  actors round trip); the walk is the one docs/architecture.md draws.
"""

from __future__ import annotations

import asyncio
import os
import pkgutil
import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import airssys
from airssys import codec, open_system
from airssys.actors import Actor
from tests.conftest import fixture_path
from tests.waiting import until

PACKAGE = Path(airssys.__file__).resolve().parent
# imported by componentize-py inside a component, or only with an optional extra
GUEST_ONLY = {"airssys.sdk.kv"}


def modules() -> list[str]:
    found = ["airssys"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="airssys."):
        if info.name.endswith("__main__") or info.name in GUEST_ONLY:
            continue
        found.append(info.name)
    return sorted(found)


def _import(names: list[str]) -> tuple[list[str], str]:
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *names],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return names, done.stderr if done.returncode else ""


@pytest.mark.timeout(600)  # a hundred interpreters, each importing its module's layers
def test_every_module_imports_alone() -> None:
    names = modules()
    assert len(names) > 80  # the walk found the package
    with ThreadPoolExecutor(2 * (os.cpu_count() or 1)) as pool:
        failures = [(n, err) for n, err in pool.map(_import, ([n] for n in names)) if err]
    assert failures == [], "\n".join(f"{n[0]}: {err[-600:]}" for n, err in failures)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_all_modules_import_in_any_order(seed: int) -> None:
    names = modules()
    random.Random(seed).shuffle(names)
    _names, error = _import(names)
    assert error == "", f"order (seed {seed}): {names}\n{error[-2000:]}"


# --- the walk of a message ----------------------------------------------------------------


def _package(frame: FrameType) -> str | None:
    try:
        parts = Path(frame.f_code.co_filename).resolve().relative_to(PACKAGE).parts
    except ValueError:
        return None
    return parts[0].removesuffix(".py")


def _chain(frame: FrameType | None) -> Iterator[str]:
    """The airssys packages on the stack from ``frame`` outwards, each run collapsed."""
    last = None
    while frame is not None:
        package = _package(frame)
        if package is None:
            return
        if package != last:
            yield package
            last = package
        frame = frame.f_back


class Walk:
    """Records, with sys.setprofile, the packages each airssys call chain passes."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        """Packages in the order they were first entered."""
        self.round_trips: list[tuple[str, ...]] = []

    def __enter__(self) -> Walk:
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *_: object) -> None:
        sys.setprofile(None)

    def _profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or _package(frame) is None:
            return
        chain = tuple(reversed(list(_chain(frame))))
        if len(set(chain)) != len(chain) and chain not in self.round_trips:
            self.round_trips.append(chain)
        if chain[-1] not in self.entered:
            self.entered.append(chain[-1])


async def test_an_ask_walks_down_the_layers_once() -> None:
    async with open_system(storage="memory") as system:
        await system.spawn_component(fixture_path("echo"), name="echo", execution="inline")
        message = codec.encode({"walk": 1}, "json")
        await system.ask("/echo", message)  # warm: caches and lazy services made
        with Walk() as walk:
            reply = await system.ask("/echo", message)
    assert reply == message
    assert walk.round_trips == []
    # down: the system's front, the broker queues it, the actor hands it to the runtime
    assert walk.entered[:3] == ["actors", "broker", "messages"], walk.entered
    assert walk.entered.index("runtime") > walk.entered.index("broker"), walk.entered


class Sink(Actor):
    def __init__(self) -> None:
        self.got: list[Any] = []

    def on_message(self, message: Any) -> None:
        self.got.append(message)


async def test_a_components_send_goes_from_the_runtime_to_the_broker() -> None:
    grants = {"messaging": {"send": ["/#"], "publish": ["#"]}}
    async with open_system(storage="memory") as system:
        sink = Sink()
        await system.spawn(lambda: sink, name="sink")
        await system.spawn_component(
            fixture_path("host"), name="host", capabilities=grants, execution="inline"
        )
        message = codec.encode(b"hi", "raw")
        await system.ask("/host", message, sender="/sink")
        await until(lambda: len(sink.got) >= 2)  # the send and the request's callback
        with Walk() as walk:
            await system.ask("/host", message, sender="/sink")
            await until(lambda: len(sink.got) >= 4)
            await asyncio.sleep(0)
    assert walk.round_trips == []
    assert {"actors", "broker", "runtime", "security"} <= set(walk.entered), walk.entered
