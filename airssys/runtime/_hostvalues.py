"""Host functions with richer signatures: values read and written by declared shape.

:mod:`._hostcall` reads strings and byte lists and writes four result shapes. The
host services (key-value, HTTP, processes) take and return records, options,
lists, tuples, variants and resources, which wasmtime-py's own conversions handle
slowly (a ``list<u8>`` one value per byte, the function type re-read on every call)
and in places not at all: its untagged ``result<option<T>, E>`` cannot be lowered
as ``err``, since every Python value passes its ``ok`` case's ``isinstance`` test.
So a service function is declared with :class:`Shape` values describing its WIT
signature, and :func:`add_typed_func` registers it with the same trampoline (and
the same guarantees: no exception ever reaches wasmtime-py's "last exception" slot)
reading the arguments and writing the result directly in wasmtime's
``wasmtime_component_val_t`` memory.

Python values, both ways:

* ``string`` ``str``; ``list<u8>`` ``bytes``; integers ``int``; ``bool`` ``bool``;
* ``option<T>`` ``None`` or the value; ``list<T>`` a list (any sequence written);
  ``tuple<...>`` a tuple; a record a tuple of its fields in order (written from any
  sequence, a NamedTuple for instance);
* ``result<T, E>`` and a variant :class:`wasmtime.component.Variant` (``tag``,
  ``payload``); a case without a payload has ``payload=None``;
* ``borrow<R>`` arrives as the resource's ``rep`` (an int), after checking it is a
  host resource of R's type; ``own<R>`` as a parameter arrives as its ``rep`` too,
  and with it the ownership: wasmtime does not run the destructor for it, the
  function must release what the rep stands for; an ``own<R>`` result is written
  from a ``rep``.

A call whose arguments are not the declared kinds (the component imported the
function with another signature) traps that call, naming the function; a result
that does not fit the declared shape traps it too. Writing is careful about
ownership: every value is complete before its kind byte is written, and anything
allocated for a result that cannot be finished is freed again.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable, Sequence
from typing import Any, Final

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as wc

from ._hostcall import (
    _BASE,
    _MEM,
    _VAL,
    _VAL_SIZE,
    _WMEM,
    HostContext,
    HostFunction,
    _byte_vec_new,
    _checked,
    _Mismatch,
    _read_bytes,
    _read_string,
    _val_new,
    register,
)

__all__ = (
    "BOOL",
    "BYTES",
    "S32",
    "S64",
    "STRING",
    "U16",
    "U32",
    "Borrow",
    "List",
    "Option",
    "Own",
    "Record",
    "Result",
    "Shape",
    "Tuple",
    "Variant",
    "add_typed_func",
)

_KIND: Final = {
    name: getattr(ffi, f"WASMTIME_COMPONENT_{name}").value
    for name in (
        "BOOL",
        "U8",
        "U16",
        "S32",
        "U32",
        "U64",
        "S64",
        "STRING",
        "LIST",
        "RECORD",
        "TUPLE",
        "VARIANT",
        "OPTION",
        "RESULT",
        "RESOURCE",
    )
}
_U64: Final = struct.Struct("<Q")
_PAIR: Final = struct.Struct("<QQ")
_ENTRY_SIZE: Final = 48  # wasmtime_component_valrecord_entry_t: name (16) + value (32)
_CHUNK: Final = 4096  # list<u8> elements written at a time
_BYTE_TEMPLATE: Final = bytes(
    b for _ in range(_CHUNK) for b in (_KIND["U8"], *([0] * (_VAL_SIZE - 1)))
)

_c = ctypes.c_void_p
_size = ctypes.c_size_t


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, ffi.dll))


# our own prototypes, taking plain addresses (wasmtime-py's want ctypes pointer objects)
_vallist_new_uninit: Final = _proto("wasmtime_component_vallist_new_uninit", None, _c, _size)
_valtuple_new_uninit: Final = _proto("wasmtime_component_valtuple_new_uninit", None, _c, _size)
_valrecord_new_uninit: Final = _proto("wasmtime_component_valrecord_new_uninit", None, _c, _size)
_val_delete: Final = _proto("wasmtime_component_val_delete", None, _c)
_any_to_host: Final = _proto("wasmtime_component_resource_any_to_host", _c, _c, _c, _c)
_host_new: Final = _proto(
    "wasmtime_component_resource_host_new", _c, ctypes.c_bool, ctypes.c_uint32, ctypes.c_uint32
)
_host_to_any: Final = _proto("wasmtime_component_resource_host_to_any", _c, _c, _c, _c)
_host_rep: Final = _proto("wasmtime_component_resource_host_rep", ctypes.c_uint32, _c)
_host_type: Final = _proto("wasmtime_component_resource_host_type", ctypes.c_uint32, _c)
_host_delete: Final = _proto("wasmtime_component_resource_host_delete", None, _c)


def _raise_error(err: int) -> None:
    if err:
        raise wasmtime.WasmtimeError._from_ptr(
            ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t))
        )


def _kind_at(at: int, kind: int) -> int:
    """``at`` as an offset into the memory views, after checking its kind byte."""
    offset = _checked(at)
    if _MEM[offset] != kind:
        raise _Mismatch
    return offset


def _word(offset: int) -> int:
    value: int = _U64.unpack_from(_MEM, offset)[0]
    return value


def _finish(at: int, kind: int) -> None:
    _WMEM[_checked(at)] = kind


def _discard(at: int, kind: int) -> None:
    """Free a container attached at ``at`` (its kind byte not yet written), and leave
    ``at`` holding ``bool false`` again."""
    offset = _checked(at)
    _WMEM[offset] = kind
    _val_delete(at)
    _WMEM[offset : offset + _VAL_SIZE] = bytes(_VAL_SIZE)


class Shape:
    """One WIT type: how to read it from, and write it into, a value's 32 bytes."""

    kind: int = 0
    wit: str = "?"

    def read(self, at: int, ctx: int) -> Any:
        raise NotImplementedError

    def write(self, store: HostContext, value: Any, at: int) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.wit


class _Bool(Shape):
    kind, wit = _KIND["BOOL"], "bool"

    def read(self, at: int, ctx: int) -> bool:
        return _MEM[_kind_at(at, self.kind) + 8] != 0

    def write(self, store: HostContext, value: Any, at: int) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"bool expected, got {type(value).__name__}")
        _WMEM[_checked(at) + 8] = int(value)
        _finish(at, self.kind)


class _Int(Shape):
    def __init__(self, kind: str, fmt: str, bits: int, signed: bool) -> None:
        self.kind, self.wit = _KIND[kind], kind.lower()
        self._struct = struct.Struct(fmt)
        self._lo = -(1 << (bits - 1)) if signed else 0
        self._hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def read(self, at: int, ctx: int) -> int:
        value: int = self._struct.unpack_from(_MEM, _kind_at(at, self.kind) + 8)[0]
        return value

    def write(self, store: HostContext, value: Any, at: int) -> None:
        if type(value) is not int or not self._lo <= value <= self._hi:
            raise TypeError(f"{self.wit} expected, got {value!r:.80}")
        offset = _checked(at)
        _WMEM[offset + 8 : offset + 16] = bytes(8)
        self._struct.pack_into(_WMEM, offset + 8, value)
        _finish(at, self.kind)


class _String(Shape):
    kind, wit = _KIND["STRING"], "string"

    def read(self, at: int, ctx: int) -> str:
        offset = _kind_at(at, self.kind)
        size, data = _PAIR.unpack_from(_MEM, offset + 8)
        return _read_string(size, data)

    def write(self, store: HostContext, value: Any, at: int) -> None:
        if not isinstance(value, str):
            raise TypeError(f"str expected, got {type(value).__name__}")
        # a lone surrogate lowered into a guest aborts inside wasmtime: never hand one over
        data = value.encode("utf-8", "replace")
        _byte_vec_new(at + 8, len(data), data)
        _finish(at, self.kind)


class _Bytes(Shape):
    kind, wit = _KIND["LIST"], "list<u8>"

    def read(self, at: int, ctx: int) -> bytes:
        offset = _kind_at(at, self.kind)
        size, data = _PAIR.unpack_from(_MEM, offset + 8)
        return _read_bytes(size, data)

    def write(self, store: HostContext, value: Any, at: int) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"bytes expected, got {type(value).__name__}")
        data = bytes(value)
        n = len(data)
        _vallist_new_uninit(at + 8, n)
        if n:
            start = _checked(_word(_checked(at) + 16))
            for i in range(0, n, _CHUNK):  # u8 values, one chunk of 32-byte slots at a time
                piece = data[i : i + _CHUNK]
                slots = bytearray(_BYTE_TEMPLATE[: len(piece) * _VAL_SIZE])
                slots[8::_VAL_SIZE] = piece
                base = start + i * _VAL_SIZE
                _WMEM[base : base + len(slots)] = slots
        _finish(at, self.kind)


class Option(Shape):
    """``option<T>``: None or the value."""

    kind = _KIND["OPTION"]

    def __init__(self, inner: Shape) -> None:
        self.inner = inner
        self.wit = f"option<{inner.wit}>"

    def read(self, at: int, ctx: int) -> Any:
        pointer = _word(_kind_at(at, self.kind) + 8)
        return None if not pointer else self.inner.read(pointer, ctx)

    def write(self, store: HostContext, value: Any, at: int) -> None:
        pointer = 0 if value is None else _boxed(self.inner, store, value)
        _U64.pack_into(_WMEM, _checked(at) + 8, pointer)
        _finish(at, self.kind)


def _boxed(shape: Shape, store: HostContext, value: Any) -> int:
    """``value`` written into a heap value wasmtime owns, as its address."""
    tmp = _VAL()  # zeroed: bool false, so a failed write leaves nothing to free
    address = ctypes.addressof(tmp)
    shape.write(store, value, address)
    boxed: int | None = _val_new(address)  # moves the value; the husk is never dropped
    if not boxed:  # pragma: no cover - wasmtime aborts on allocation failure
        raise MemoryError("wasmtime_component_val_new returned NULL")
    return boxed


class _Sequence(Shape):
    """list<T> and tuple<...>: a (size, data) vector of values."""

    def _write_items(
        self, store: HostContext, items: Sequence[Any], shapes: Sequence[Shape], at: int, new: Any
    ) -> None:
        n = len(items)
        new(at + 8, n)
        try:
            if n:
                start = _checked(_word(_checked(at) + 16))
                _WMEM[start : start + n * _VAL_SIZE] = bytes(n * _VAL_SIZE)  # all bool false
                base = start + _BASE
                for i, (shape, item) in enumerate(zip(shapes, items, strict=True)):
                    shape.write(store, item, base + i * _VAL_SIZE)
        except BaseException:
            _discard(at, self.kind)
            raise
        _finish(at, self.kind)

    def _read_items(self, at: int, ctx: int, shapes: Callable[[int], Shape]) -> list[Any]:
        size, data = _PAIR.unpack_from(_MEM, _kind_at(at, self.kind) + 8)
        return [shapes(i).read(data + i * _VAL_SIZE, ctx) for i in range(size)]


class List(_Sequence):
    """``list<T>``: a list (written from any sequence)."""

    kind = _KIND["LIST"]

    def __init__(self, element: Shape) -> None:
        self.element = element
        self.wit = f"list<{element.wit}>"

    def read(self, at: int, ctx: int) -> list[Any]:
        element = self.element
        return self._read_items(at, ctx, lambda _: element)

    def write(self, store: HostContext, value: Any, at: int) -> None:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TypeError(f"a sequence expected for {self.wit}, got {type(value).__name__}")
        self._write_items(store, value, [self.element] * len(value), at, _vallist_new_uninit)


class Tuple(_Sequence):
    """``tuple<...>``: a tuple."""

    kind = _KIND["TUPLE"]

    def __init__(self, *elements: Shape) -> None:
        self.elements = elements
        self.wit = f"tuple<{', '.join(e.wit for e in elements)}>"

    def read(self, at: int, ctx: int) -> tuple[Any, ...]:
        offset = _kind_at(at, self.kind)
        if _word(offset + 8) != len(self.elements):
            raise _Mismatch
        return tuple(self._read_items(at, ctx, self.elements.__getitem__))

    def write(self, store: HostContext, value: Any, at: int) -> None:
        if not isinstance(value, Sequence) or len(value) != len(self.elements):
            raise TypeError(f"{len(self.elements)} values expected for {self.wit}")
        self._write_items(store, value, self.elements, at, _valtuple_new_uninit)


class Record(Shape):
    """A record, written from a sequence of its fields in order (a NamedTuple)."""

    kind = _KIND["RECORD"]

    def __init__(self, name: str, *fields: tuple[str, Shape]) -> None:
        self.fields = fields
        self.wit = name
        self._names = [field.encode("utf-8") for field, _ in fields]

    def write(self, store: HostContext, value: Any, at: int) -> None:
        fields = self.fields
        if not isinstance(value, Sequence) or len(value) != len(fields):
            raise TypeError(f"{len(fields)} fields expected for record {self.wit}")
        _valrecord_new_uninit(at + 8, len(fields))
        try:
            start = _checked(_word(_checked(at) + 16))
            base = start + _BASE
            for i, name in enumerate(self._names):  # every entry valid before any value
                entry = base + i * _ENTRY_SIZE
                _byte_vec_new(entry, len(name), name)
                _WMEM[start + i * _ENTRY_SIZE + 16 : start + (i + 1) * _ENTRY_SIZE] = bytes(
                    _VAL_SIZE
                )
            for i, ((_, shape), item) in enumerate(zip(fields, value, strict=True)):
                shape.write(store, item, base + i * _ENTRY_SIZE + 16)
        except BaseException:
            _discard(at, self.kind)
            raise
        _finish(at, self.kind)


def _payload_of(value: Any, what: str) -> tuple[str, Any]:
    if not isinstance(value, wc.Variant):
        raise TypeError(f"Variant expected for {what}, got {value!r:.80}")
    return value.tag, value.payload


class Result(Shape):
    """``result<T, E>`` (either may be None, for ``_``): ``Variant("ok"|"err", payload)``."""

    kind = _KIND["RESULT"]

    def __init__(self, ok: Shape | None, err: Shape | None) -> None:
        self.ok, self.err = ok, err
        self.wit = f"result<{ok.wit if ok else '_'}, {err.wit if err else '_'}>"

    def write(self, store: HostContext, value: Any, at: int) -> None:
        tag, payload = _payload_of(value, self.wit)
        if tag not in ("ok", "err"):
            raise TypeError(f"'ok' or 'err' expected for {self.wit}, got {tag!r}")
        shape = self.ok if tag == "ok" else self.err
        if shape is None and payload is not None:
            raise TypeError(f"{self.wit}: {tag} carries nothing, got {payload!r:.80}")
        pointer = 0 if shape is None else _boxed(shape, store, payload)
        _PAIR.pack_into(_WMEM, _checked(at) + 8, int(tag == "ok"), pointer)
        _finish(at, self.kind)


class Variant(Shape):
    """A variant: ``Variant(case, payload)``; ``cases`` maps each case to its payload's
    shape (None: no payload)."""

    kind = _KIND["VARIANT"]

    def __init__(self, name: str, cases: dict[str, Shape | None]) -> None:
        self.cases = cases
        self.wit = name

    def write(self, store: HostContext, value: Any, at: int) -> None:
        tag, payload = _payload_of(value, self.wit)
        if tag not in self.cases:
            raise TypeError(f"{self.wit} has no case {tag!r}")
        shape = self.cases[tag]
        if shape is None and payload is not None:
            raise TypeError(f"{self.wit}.{tag} carries nothing, got {payload!r:.80}")
        pointer = 0 if shape is None else _boxed(shape, store, payload)
        name = tag.encode("utf-8")
        _byte_vec_new(at + 8, len(name), name)
        _U64.pack_into(_WMEM, _checked(at) + 24, pointer)
        _finish(at, self.kind)


class _Resource(Shape):
    kind = _KIND["RESOURCE"]

    def __init__(self, name: str, type_id: int, owned: bool) -> None:
        self.type_id = type_id
        self.owned = owned
        self.wit = f"{'own' if owned else 'borrow'}<{name}>"

    def pointer(self, at: int) -> int:
        """The ``wasmtime_component_resource_any_t*`` held at ``at``."""
        return _word(_kind_at(at, self.kind) + 8)

    def read(self, at: int, ctx: int) -> int:
        out = ctypes.c_void_p()
        _raise_error(_any_to_host(ctx, self.pointer(at), ctypes.addressof(out)))
        host = out.value or 0
        try:
            rep, type_id = int(_host_rep(host)), int(_host_type(host))
        finally:
            _host_delete(host)
        if type_id != self.type_id:
            raise wasmtime.WasmtimeError(f"a host resource of another type where {self.wit} goes")
        return rep

    def write(self, store: HostContext, value: Any, at: int) -> None:
        if not self.owned or type(value) is not int or not 0 <= value <= 0xFFFF_FFFF:
            raise TypeError(f"a rep (u32) expected for {self.wit}, got {value!r:.80}")
        host = _host_new(True, value, self.type_id)
        out = ctypes.c_void_p()
        try:
            _raise_error(_host_to_any(store.address, host, ctypes.addressof(out)))
        finally:
            _host_delete(host)
        _U64.pack_into(_WMEM, _checked(at) + 8, out.value or 0)
        _finish(at, self.kind)


def Borrow(name: str, type_id: int) -> Shape:
    """``borrow<R>`` for the host resource type ``type_id``: arrives as its rep."""
    return _Resource(name, type_id, owned=False)


def Own(name: str, type_id: int) -> Shape:
    """``own<R>``: a parameter arrives as its rep, the host owning it from then on; a
    result is written from a rep."""
    return _Resource(name, type_id, owned=True)


BOOL: Final[Shape] = _Bool()
U16: Final[Shape] = _Int("U16", "<H", 16, signed=False)
S32: Final[Shape] = _Int("S32", "<i", 32, signed=True)
U32: Final[Shape] = _Int("U32", "<I", 32, signed=False)
U64: Final[Shape] = _Int("U64", "<Q", 64, signed=False)
S64: Final[Shape] = _Int("S64", "<q", 64, signed=True)
STRING: Final[Shape] = _String()
BYTES: Final[Shape] = _Bytes()


class _TypedFunc:
    """One host function registered with declared shapes (see the module docstring)."""

    __slots__ = ("fn", "name", "nresults", "params", "result")

    def __init__(
        self, name: str, fn: HostFunction, params: Sequence[Shape], result: Shape | None
    ) -> None:
        self.name = name
        self.fn = fn
        self.params = tuple(params)
        self.result = result
        self.nresults = 0 if result is None else 1

    def _mismatch(self) -> wasmtime.WasmtimeError:
        shown = ", ".join(p.wit for p in self.params)
        returns = f" -> {self.result.wit}" if self.result is not None else ""
        return wasmtime.WasmtimeError(
            f"host function {self.name}: the component imports it with another signature "
            f"than the host provides: func({shown}){returns}"
        )

    def call(
        self, store: HostContext, ty: int, args: int, nargs: int, results: int, nresults: int
    ) -> None:
        params = self.params
        if nargs != len(params) or nresults != self.nresults:
            raise self._mismatch()
        ctx = store.address
        try:
            pyargs = [shape.read(args + i * _VAL_SIZE, ctx) for i, shape in enumerate(params)]
        except _Mismatch:
            raise self._mismatch() from None
        value = self.fn(store, *pyargs)
        if self.result is None:
            if value is not None:
                raise TypeError(f"{self.name} has no result but its function returned {value!r}")
            return
        try:
            self.result.write(store, value, results)
        except _Mismatch:  # pragma: no cover - writing never checks kinds
            raise self._mismatch() from None


def add_typed_func(
    instance: wc.LinkerInstance,
    name: str,
    fn: HostFunction,
    params: Sequence[Shape],
    result: Shape | None,
) -> None:
    """Define ``name`` in ``instance``: ``fn(store, *args)`` with the declared shapes,
    through the trampoline of :mod:`._hostcall` (same guarantees as ``add_func``)."""
    register(instance, _TypedFunc(name, fn, params, result))
