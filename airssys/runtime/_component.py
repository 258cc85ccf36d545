"""A compiled, validated component: what :meth:`Runtime.load` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from wasmtime import component as wc

from ._world import WorldInfo

__all__ = ("Component",)


@final
@dataclass(frozen=True, slots=True, eq=False)
class Component:
    """A compiled, validated component. Immutable; instantiate it any number of times."""

    name: str
    sha256: str
    world: WorldInfo
    wasmtime_component: wc.Component

    @property
    def has_callback(self) -> bool:
        return self.world.has_callback
