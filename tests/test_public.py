"""The public face: every public module lists what it exports, and only that."""

from __future__ import annotations

import importlib
import types

import pytest

import airssys
from airssys._demo import run
from airssys.actors import Strategy

PUBLIC_MODULES = [
    "airssys",
    "airssys.actors",
    "airssys.broker",
    "airssys.codec",
    "airssys.errors",
    "airssys.host",
    "airssys.manifest",
    "airssys.names",
    "airssys.runtime",
    "airssys.security",
    "airssys.storage",
    "airssys.sdk",
    "airssys.build",
    "airssys.testing",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_a_tuple_naming_every_public_attribute(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, tuple)

    def ours(value: object) -> bool:  # defined here, or re-exported from a submodule
        origin = getattr(value, "__module__", name) or ""
        return origin == name or origin.startswith(name + ".")

    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and ours(value)
        and attr not in {"annotations", "TYPE_CHECKING", "Final"}
    }
    assert public <= set(exported), f"missing from {name}.__all__: {public - set(exported)}"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"


def test_version_is_exposed() -> None:
    assert airssys.__version__ == "0.1.0"


@pytest.mark.parametrize("strategy", list(Strategy))
async def test_the_supervisor_demo_passes_its_own_checks(strategy: Strategy) -> None:
    assert await run(strategy) == []
