"""The airssys world as the host sees it: names, and checking a component against it.

wit/airssys.wit is the contract; this module holds the same names for Python.
A component must export ``handler`` with ``handle-message(string, list<u8>)``;
it may export ``callback`` and ``snapshot`` (``snapshot() -> list<u8>`` and
``restore(list<u8>) -> result<_, string>``, checked at load); it may import
``messaging``, ``logging`` and what the runtime's linker defines from WASI 0.2
(wasmtime's ``add_wasip2``: cli, clocks, filesystem, io, random, sockets; not
``wasi:http``). Anything else is refused at load time with the name of what is
missing or extra, and every function imported from an interface the host defines
untyped (messaging, logging, wasi:keyvalue, storage, http, process) is compared with
the host's own type first (:mod:`._hosttypes`).

Which WASI interfaces (and which versions of them) the linker defines is not
written down here: the linker itself is asked, by a dry link (see :func:`_dry_link`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import wasmtime
from wasmtime import component as wc

from ..errors import MissingExport, UnsupportedImport
from ._hosttypes import HostTypes, check_imports

if TYPE_CHECKING:
    from wasmtime.component._types import ComponentExtern

__all__ = (
    "BULK",
    "BULK_TEXT",
    "CALLBACK",
    "HANDLER",
    "LOGGING",
    "MESSAGING",
    "PACKAGE",
    "SNAPSHOT",
    "WorldInfo",
    "check_world",
)

PACKAGE = "airssys:component"
VERSION = "0.1.0"
HANDLER = f"{PACKAGE}/handler@{VERSION}"
BULK = f"{PACKAGE}/bulk@{VERSION}"
BULK_TEXT = f"{PACKAGE}/bulk-text@{VERSION}"
CALLBACK = f"{PACKAGE}/callback@{VERSION}"
SNAPSHOT = f"{PACKAGE}/snapshot@{VERSION}"
MESSAGING = f"{PACKAGE}/messaging@{VERSION}"
LOGGING = f"{PACKAGE}/logging@{VERSION}"
STORAGE = f"{PACKAGE}/storage@{VERSION}"
HTTP = f"{PACKAGE}/http@{VERSION}"
PROCESS = f"{PACKAGE}/process@{VERSION}"

# what the host provides under each airssys interface (functions and types)
PROVIDED: dict[str, frozenset[str]] = {
    MESSAGING: frozenset({"send", "publish", "request", "self-address"}),
    LOGGING: frozenset({"log", "level"}),
    STORAGE: frozenset({"scan", "bucket", "error", "key-response"}),
    HTTP: frozenset({"fetch", "response"}),
    PROCESS: frozenset({"run", "process-result"}),
}
WASI_PREFIX = "wasi:"
WASI_HTTP_PREFIX = "wasi:http/"
WASI_KEYVALUE_PREFIX = "wasi:keyvalue/"
KV_VERSION = "0.2.0-draft2"
# wasmtime's link-time refusal: "component imports instance `NAME`, but a matching
# implementation was not found in the linker" (the kind may be instance, func, ...)
_UNLINKED = re.compile(r"component imports \w+ `([^`]+)`")


@dataclass(frozen=True, slots=True)
class WorldInfo:
    """What a component brings: which optional exports and which imports."""

    has_callback: bool
    imports: tuple[str, ...]
    has_snapshot: bool = False
    """It exports ``snapshot`` (``snapshot: func() -> list<u8>``, ``restore: func(state:
    list<u8>) -> result<_, string>``): its state can be taken and put back."""

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


def _wit(ty: object) -> str:
    """A component value type as WIT spells it (enough to say what a signature is)."""
    if isinstance(ty, wc.ListType):
        return f"list<{_wit(ty.element)}>"
    if isinstance(ty, wc.OptionType):
        return f"option<{_wit(ty.payload)}>"
    if isinstance(ty, wc.ResultType):
        ok = "_" if ty.ok is None else _wit(ty.ok)
        return f"result<{ok}, {_wit(ty.err)}>" if ty.err is not None else f"result<{ok}>"
    if isinstance(ty, wc.TupleType):
        return f"tuple<{', '.join(map(_wit, ty.elements))}>"
    return type(ty).__name__.removesuffix("Type").lower()


def _signature(fty: wc.FuncType) -> str:
    params = ", ".join(f"{name}: {_wit(ty)}" for name, ty in fty.params)
    result = fty.result
    return f"func({params})" + ("" if result is None else f" -> {_wit(result)}")


def _is_snapshot(fty: object) -> bool:
    """``func() -> list<u8>``"""
    return isinstance(fty, wc.FuncType) and not fty.params and _is_bytes(fty.result)


def _is_restore(fty: object) -> bool:
    """``func(state: list<u8>) -> result<_, string>``"""
    if not isinstance(fty, wc.FuncType) or len(fty.params) != 1:
        return False
    result = fty.result
    return (
        _is_bytes(fty.params[0][1])
        and isinstance(result, wc.ResultType)
        and result.ok is None
        and isinstance(result.err, wc.String)
    )


def _check_snapshot(name: str, engine: wasmtime.Engine, item: ComponentExtern) -> None:
    """Refuse a ``snapshot`` export whose functions are missing or of other shapes."""
    expected = (
        "snapshot: func() -> list<u8> and restore: func(state: list<u8>) -> result<_, string>"
    )
    funcs = _instance_exports(engine, item) or {}
    for func, fits in (("snapshot", _is_snapshot), ("restore", _is_restore)):
        found = funcs.get(func)
        fty = found.ty if found is not None else None
        if not isinstance(fty, wc.FuncType):
            raise MissingExport(
                f"component {name!r} exports {SNAPSHOT!r} without a {func!r} function; "
                f"expected {expected}"
            )
        if not fits(fty):
            raise MissingExport(
                f"component {name!r} exports {SNAPSHOT!r} with {func}: {_signature(fty)}; "
                f"expected {expected}"
            )


def _dry_link(
    engine: wasmtime.Engine, linker: wc.Linker, component: wc.Component
) -> tuple[str, str] | None:
    """Typecheck ``component``'s imports against ``linker`` without running guest code.

    wasmtime checks every import against the linker before it creates anything; a
    scratch Store that may hold no core instance, memory or table (and has no fuel)
    stops the instantiation right after that check. Returns (import name, wasmtime's
    reason) for the first import the linker cannot satisfy, else None.
    """
    store = wasmtime.Store(engine)
    try:
        store.set_limits(memory_size=0, table_elements=0, instances=0, tables=0, memories=0)
        linker.instantiate(store, component)
    except wasmtime.WasmtimeError as exc:
        reason = str(exc)
        unlinked = _UNLINKED.match(reason)
        if unlinked is not None:
            return unlinked.group(1), " ".join(reason.split())
        # anything else (the expected "instance count too high") means the imports linked
    finally:
        store.close()
    return None


def _unsupported_hint(import_name: str) -> str:
    if import_name.startswith(WASI_HTTP_PREFIX):
        return (
            "the host provides WASI 0.2 without wasi:http; componentize-js imports "
            "wasi:http unless the component is built with `--disable http fetch-event`"
        )
    if import_name.startswith(WASI_KEYVALUE_PREFIX):
        return (
            f"the host provides wasi:keyvalue {KV_VERSION} (store, atomics, batch: "
            "wit/deps/keyvalue, the revision Spin vendors); build the component against it"
        )
    if import_name.startswith(WASI_PREFIX):
        return (
            "the host provides WASI 0.2 cli, clocks, filesystem, io, random and sockets, and "
            f"wasi:keyvalue {KV_VERSION}; "
            "build the component for the airssys world (wit/airssys.wit) without this import"
        )
    return "build the component against wit/airssys.wit"


def check_world(
    name: str,
    engine: wasmtime.Engine,
    component: wc.Component,
    linker: wc.Linker,
    host_types: HostTypes | None = None,
) -> WorldInfo:
    """Validate ``component`` against the airssys world and ``linker``; raise naming
    what is wrong. ``host_types``: the signatures of the functions the host defined
    untyped (what :func:`~._host.define_imports` returned), each import of them compared
    with its type. Runs none of the component's code."""
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

    snapshot = exports.get(SNAPSHOT)
    if snapshot is not None:
        _check_snapshot(name, engine, snapshot)

    imports = ctype.imports(engine)
    for import_name, item in imports.items():
        if import_name.startswith(WASI_PREFIX):
            continue  # the dry link below asks the linker which WASI it defines
        provided = PROVIDED.get(import_name)
        if provided is None:
            offered = ", ".join([*PROVIDED, "WASI 0.2 except wasi:http"])
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
    if host_types is not None:
        check_imports(name, engine, imports, host_types)
    unlinked = _dry_link(engine, linker, component)
    if unlinked is not None:
        import_name, reason = unlinked
        raise UnsupportedImport(
            f"component {name!r} imports {import_name!r}, which the host does not provide; "
            f"{_unsupported_hint(import_name)} (wasmtime: {reason})"
        )
    return WorldInfo(
        has_callback=has_callback,
        imports=tuple(sorted(imports)),
        has_snapshot=snapshot is not None,
    )
