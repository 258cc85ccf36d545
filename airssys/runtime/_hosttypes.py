"""The host's function types, and checking a component's imports against them at load.

The host registers its imports untyped (:mod:`._hostcall`, :mod:`._hostvalues`): wasmtime
links any signature to them and the first call of another shape traps ("type mismatch:
expected option, found tuple") on every message, so a restart loops. Each ``define_*``
function therefore also declares what it implements, as a :data:`HostTypes` (interface ->
function -> :class:`Signature`), and :func:`check_imports` compares every function a
component imports from those interfaces with it before anything runs: parameters,
results, records, variants, enums, and resources by name. A mismatch is an
:class:`~airssys.errors.UnsupportedImport` naming the import, what the component expects
and what the host offers.

Types are compared structurally (a record by its fields, a variant by its cases), written
the way WIT writes them; names (``error``, ``key-response``) only make messages shorter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import wasmtime
from wasmtime import component as wc

from ..errors import UnsupportedImport
from . import _hostvalues as hv

if TYPE_CHECKING:
    from wasmtime.component._types import ComponentExtern

__all__ = (
    "NOTES",
    "Described",
    "EnumOf",
    "HostTypes",
    "Signature",
    "check_imports",
    "describe_shape",
    "signature",
)


@dataclass(frozen=True, slots=True)
class EnumOf:
    """An enum the host takes (it reads the case name): ``enum name { cases }``."""

    name: str
    cases: tuple[str, ...]


Described = hv.Shape | EnumOf


@dataclass(frozen=True, slots=True)
class _Text:
    """A type as WIT writes it: ``full`` (records, variants and enums spelled out: what is
    compared) and ``short`` (named types by their name: what messages show)."""

    full: str
    short: str


@dataclass(frozen=True, slots=True)
class Signature:
    """One host function's type: its parameter types and its result (None: no result)."""

    params: tuple[_Text, ...]
    result: _Text | None

    def full(self) -> str:
        return _func(self.params, self.result, full=True)

    def short(self) -> str:
        return _func(self.params, self.result, full=False)


HostTypes = dict[str, dict[str, Signature]]
"""Interface name -> function name -> the host's signature."""

NOTES: Final[dict[str, str]] = {}
"""Interface name -> what to say about the revision the host speaks (filled by the
modules that define interfaces with known look-alikes, e.g. wasi:keyvalue)."""


def _func(params: Sequence[_Text], result: _Text | None, *, full: bool) -> str:
    shown = ", ".join(p.full if full else p.short for p in params)
    tail = "" if result is None else f" -> {result.full if full else result.short}"
    return f"func({shown}){tail}"


def signature(params: Sequence[Described], result: Described | None) -> Signature:
    """The signature of a host function declared with these shapes."""
    return Signature(
        tuple(describe_shape(p) for p in params),
        None if result is None else describe_shape(result),
    )


def describe_shape(shape: Described) -> _Text:
    """A host shape (:mod:`._hostvalues`) or :class:`EnumOf` as WIT text."""
    if isinstance(shape, EnumOf):
        return _Text(f"enum {{ {', '.join(shape.cases)} }}", shape.name)
    if isinstance(shape, hv.Option):
        inner = describe_shape(shape.inner)
        return _Text(f"option<{inner.full}>", f"option<{inner.short}>")
    if isinstance(shape, hv.Result):
        ok = describe_shape(shape.ok) if shape.ok is not None else None
        err = describe_shape(shape.err) if shape.err is not None else None
        return _result(ok, err)
    if isinstance(shape, hv.List):
        element = describe_shape(shape.element)
        return _Text(f"list<{element.full}>", f"list<{element.short}>")
    if isinstance(shape, hv.Tuple):
        parts = [describe_shape(e) for e in shape.elements]
        return _Text(
            f"tuple<{', '.join(p.full for p in parts)}>",
            f"tuple<{', '.join(p.short for p in parts)}>",
        )
    if isinstance(shape, hv.Record):
        fields = ", ".join(f"{name}: {describe_shape(s).full}" for name, s in shape.fields)
        return _Text(f"record {{ {fields} }}", shape.wit)
    if isinstance(shape, hv.Variant):
        cases = ", ".join(
            name if s is None else f"{name}({describe_shape(s).full})"
            for name, s in shape.cases.items()
        )
        return _Text(f"variant {{ {cases} }}", shape.wit)
    return _Text(shape.wit, shape.wit)  # primitives, list<u8>, own<R>, borrow<R>


def _result(ok: _Text | None, err: _Text | None) -> _Text:
    def part(t: _Text | None, full: bool) -> str:
        return "_" if t is None else (t.full if full else t.short)

    if err is None:
        return _Text(f"result<{part(ok, True)}>", f"result<{part(ok, False)}>")
    return _Text(
        f"result<{part(ok, True)}, {part(err, True)}>",
        f"result<{part(ok, False)}, {part(err, False)}>",
    )


# --- the component's side: wasmtime's types as the same text ----------------------------


class _Names:
    """Names a component's imports give their types: resources (compared by identity,
    shown and compared by name) and records, variants, enums and flags (shown by name)."""

    def __init__(self, engine: wasmtime.Engine, imports: Mapping[str, ComponentExtern]) -> None:
        self.resources: list[tuple[str, wc.ResourceType]] = []
        self.types: list[tuple[str, Any]] = []
        for item in imports.values():
            ty = item.ty
            if not isinstance(ty, wc.ComponentInstanceType):
                continue
            for name, export in ty.exports(engine).items():
                inner = export.ty
                if isinstance(inner, wc.ResourceType):
                    self.resources.append((name, inner))
                elif isinstance(inner, wc.RecordType | wc.VariantType | wc.EnumType | wc.FlagsType):
                    self.types.append((name, inner))

    def resource(self, ty: wc.ResourceType) -> str:
        for name, known in self.resources:
            if known == ty:
                return name
        return "resource"

    def named(self, ty: Any) -> str | None:
        for name, known in self.types:
            if type(known) is type(ty) and known == ty:
                return name
        return None


_PRIMITIVES: Final[dict[type, str]] = {
    wc.Bool: "bool",
    wc.S8: "s8",
    wc.S16: "s16",
    wc.S32: "s32",
    wc.S64: "s64",
    wc.U8: "u8",
    wc.U16: "u16",
    wc.U32: "u32",
    wc.U64: "u64",
    wc.F32: "f32",
    wc.F64: "f64",
    wc.Char: "char",
    wc.String: "string",
}


def _describe(ty: Any, names: _Names) -> _Text:
    """A wasmtime component value type as WIT text."""
    primitive = _PRIMITIVES.get(type(ty))
    if primitive is not None:
        return _Text(primitive, primitive)
    if isinstance(ty, wc.ListType):
        e = _describe(ty.element, names)
        return _Text(f"list<{e.full}>", f"list<{e.short}>")
    if isinstance(ty, wc.OptionType):
        p = _describe(ty.payload, names)
        return _Text(f"option<{p.full}>", f"option<{p.short}>")
    if isinstance(ty, wc.ResultType):
        ok = _describe(ty.ok, names) if ty.ok is not None else None
        err = _describe(ty.err, names) if ty.err is not None else None
        return _result(ok, err)
    if isinstance(ty, wc.TupleType):
        parts = [_describe(e, names) for e in ty.elements]
        return _Text(
            f"tuple<{', '.join(p.full for p in parts)}>",
            f"tuple<{', '.join(p.short for p in parts)}>",
        )
    if isinstance(ty, wc.OwnType | wc.BorrowType):
        kind = "own" if isinstance(ty, wc.OwnType) else "borrow"
        text = f"{kind}<{names.resource(ty.ty)}>"
        return _Text(text, text)
    if isinstance(ty, wc.RecordType):
        fields = ", ".join(f"{n}: {_describe(t, names).full}" for n, t in ty.fields)
        full = f"record {{ {fields} }}"
    elif isinstance(ty, wc.VariantType):
        full = (
            "variant { "
            + ", ".join(
                name if payload is None else f"{name}({_describe(payload, names).full})"
                for name, payload in ty.cases
            )
            + " }"
        )
    elif isinstance(ty, wc.EnumType):
        full = f"enum {{ {', '.join(ty.names)} }}"
    elif isinstance(ty, wc.FlagsType):
        full = f"flags {{ {', '.join(ty.names)} }}"
    else:  # futures, streams, error-context: nothing the host takes
        text = type(ty).__name__.removesuffix("Type").lower()
        return _Text(text, text)
    return _Text(full, names.named(ty) or full)


def _component_signature(fty: wc.FuncType, names: _Names) -> tuple[Signature, list[str]]:
    """The component's view of a function: its signature and its parameter names."""
    params = tuple(_describe(ty, names) for _, ty in fty.params)
    result = _describe(fty.result, names) if fty.result is not None else None
    return Signature(params, result), [name for name, _ in fty.params]


def _with_names(signature: Signature, names: list[str], *, full: bool) -> str:
    shown = ", ".join(
        f"{n}: {p.full if full else p.short}" for n, p in zip(names, signature.params, strict=True)
    )
    result = signature.result
    tail = "" if result is None else f" -> {result.full if full else result.short}"
    return f"func({shown}){tail}"


def check_imports(
    name: str,
    engine: wasmtime.Engine,
    imports: Mapping[str, ComponentExtern],
    host: HostTypes,
) -> None:
    """Raise :class:`UnsupportedImport` for the first function ``imports`` (a component's
    imports) takes from an interface in ``host`` with another type than the host's."""
    names: _Names | None = None
    for interface, item in imports.items():
        offered = host.get(interface)
        ty = item.ty
        if offered is None or not isinstance(ty, wc.ComponentInstanceType):
            continue
        for func, export in ty.exports(engine).items():
            fty = export.ty
            ours = offered.get(func)
            if ours is None or not isinstance(fty, wc.FuncType):
                continue  # names the host lacks are refused elsewhere, with the list
            if names is None:
                names = _Names(engine, imports)
            theirs, param_names = _component_signature(fty, names)
            if theirs.full() == ours.full():
                continue
            # named types that differ inside (a record's field) are spelled out
            full = theirs.short() == ours.short()
            shown = _with_names(theirs, param_names, full=full)
            offered_text = ours.full() if full else ours.short()
            note = NOTES.get(interface)
            raise UnsupportedImport(
                f"component {name!r} imports {interface}#{func} as {shown}, but the host "
                f"offers {func}: {offered_text}"
                + (f"; {note}" if note else "")
                + "; rebuild the component against the WIT the host implements "
                "(wit/airssys.wit with wit/deps)"
            )
