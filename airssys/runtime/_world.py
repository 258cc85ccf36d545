"""The airssys world as the host sees it: names, and checking a component against it.

wit/airssys.wit is the contract; this module holds the same names for Python.
A component must export ``handler`` with ``handle-message(string, list<u8>)``;
it may export ``callback``; it may import ``messaging``, ``logging`` and WASI 0.2.
Anything else is refused at load time with the name of what is missing or extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import wasmtime
from wasmtime import component as wc

from ..errors import MissingExport, UnsupportedImport

if TYPE_CHECKING:
    from wasmtime.component._types import ComponentExtern

__all__ = (
    "CALLBACK",
    "HANDLER",
    "LOGGING",
    "MESSAGING",
    "PACKAGE",
    "WorldInfo",
    "check_world",
)

PACKAGE = "airssys:component"
VERSION = "0.1.0"
HANDLER = f"{PACKAGE}/handler@{VERSION}"
CALLBACK = f"{PACKAGE}/callback@{VERSION}"
MESSAGING = f"{PACKAGE}/messaging@{VERSION}"
LOGGING = f"{PACKAGE}/logging@{VERSION}"

# what the host provides under each airssys interface (functions and types)
PROVIDED: dict[str, frozenset[str]] = {
    MESSAGING: frozenset({"send", "publish", "request", "self-address"}),
    LOGGING: frozenset({"log", "level"}),
}
WASI_PREFIX = "wasi:"


@dataclass(frozen=True, slots=True)
class WorldInfo:
    """What a component brings: which optional exports and which imports."""

    has_callback: bool
    imports: tuple[str, ...]

    @property
    def uses_wasi(self) -> bool:
        return any(name.startswith(WASI_PREFIX) for name in self.imports)


def _instance_exports(
    engine: wasmtime.Engine, item: ComponentExtern
) -> dict[str, ComponentExtern] | None:
    ty = item.ty
    if not isinstance(ty, wc.ComponentInstanceType):
        return None
    return ty.exports(engine)


def _is_bytes(ty: object) -> bool:
    return isinstance(ty, wc.ListType) and isinstance(ty.element, wc.U8)


def check_world(name: str, engine: wasmtime.Engine, component: wc.Component) -> WorldInfo:
    """Validate ``component`` against the airssys world; raise naming what is wrong."""
    ctype = component.type
    exports = ctype.exports(engine)
    expected = "handle-message: func(sender: string, payload: list<u8>) -> result<...>"
    handler = exports.get(HANDLER)
    if handler is None:
        found = ", ".join(sorted(exports)) or "nothing"
        raise MissingExport(
            f"component {name!r} does not export {HANDLER!r} (it exports: {found}); "
            f"an airssys component must export the handler interface with {expected}"
        )
    funcs = _instance_exports(engine, handler) or {}
    hm = funcs.get("handle-message")
    fty = hm.ty if hm is not None else None
    if not isinstance(fty, wc.FuncType):
        raise MissingExport(
            f"component {name!r} exports {HANDLER!r} without a 'handle-message' function; "
            f"expected {expected}"
        )
    params = fty.params
    if len(params) != 2 or not isinstance(params[0][1], wc.String) or not _is_bytes(params[1][1]):
        raise MissingExport(
            f"component {name!r}: 'handle-message' takes "
            f"({', '.join(p for p, _ in params)}), expected {expected}"
        )

    has_callback = False
    callback = exports.get(CALLBACK)
    if callback is not None:
        cb_funcs = _instance_exports(engine, callback) or {}
        if "handle-callback" not in cb_funcs:
            raise MissingExport(
                f"component {name!r} exports {CALLBACK!r} without 'handle-callback'"
            )
        has_callback = True

    imports = ctype.imports(engine)
    for import_name, item in imports.items():
        if import_name.startswith(WASI_PREFIX):
            continue  # provided by the linker's WASI 0.2; versions are checked at link time
        provided = PROVIDED.get(import_name)
        if provided is None:
            offered = ", ".join([*PROVIDED, "wasi:*@0.2.x"])
            raise UnsupportedImport(
                f"component {name!r} imports {import_name!r}, which the host does not "
                f"provide (it provides: {offered})"
            )
        wanted = set((_instance_exports(engine, item) or {}).keys())
        extra = sorted(wanted - provided)
        if extra:
            raise UnsupportedImport(
                f"component {name!r} imports {', '.join(map(repr, extra))} from "
                f"{import_name!r}, which the host does not provide "
                f"(it provides: {', '.join(sorted(provided))})"
            )
    return WorldInfo(has_callback=has_callback, imports=tuple(sorted(imports)))
