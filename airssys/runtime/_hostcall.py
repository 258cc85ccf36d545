"""The fast path for host imports: our own trampoline in place of wasmtime-py's.

wasmtime-py's ``LinkerInstance.add_func`` routes every call of a host function
through its ``func_impl``, which re-reads the function type (a dozen FFI calls
and Python objects), converts a ``list<u8>`` one Python int at a time, and parks
any exception that is not a ``WasmtimeError`` in a process-wide slot. This module
registers host functions with ``wasmtime_component_linker_instance_add_func``
directly:

* each function is declared with the parameter and result shapes it implements
  (:data:`STRING`, :data:`BYTES`, :data:`U32`, :data:`ENUM`; :data:`NO_RESULT`,
  :data:`STRING_RESULT`, :data:`UNIT_OR_ERR`, :data:`STRING_OR_ERR`);
* arguments are read straight out of wasmtime's ``wasmtime_component_val_t``
  array (32 bytes each: kind byte at offset 0, union at offset 8): the kind bytes
  and union words of all arguments in one ``struct`` unpack, a string or enum
  name as (size, data) decoded from UTF-8, a ``list<u8>`` copied out in 128 KiB
  chunks and sliced every 32nd byte; reads go through a memoryview spanning the
  address space rather than a ctypes call each (see :data:`_MEM`). wasmtime owns
  the arguments and drops them after the call; we only read them;
* the result is written straight into wasmtime's result slot (which it
  initialises to ``bool false`` and drops after converting it): strings are
  copied into buffers from ``wasm_byte_vec_new`` and a result's payload is boxed
  by ``wasmtime_component_val_new``, so wasmtime's allocator owns everything it
  frees. A slot's kind byte is written last, so the slot always holds a valid
  value even if writing fails half way. Should the component's import declare
  another result type, wasmtime's own check of the returned value traps the call;
* a call whose arguments are not the declared kinds (a component importing the
  function with another signature) falls back to wasmtime-py's own conversions
  (``FuncType`` / ``convert_from_c`` / ``convert_to_c``), so it behaves as
  ``add_func`` would;
* no exception ever leaves the trampoline: a ``WasmtimeError`` is handed to
  wasmtime as the call's error (trapping only the calling instance), and any
  other exception becomes one naming the function. wasmtime-py's
  ``LAST_EXCEPTION`` slot is never touched;
* the ``StoreContext`` handed to the Python function (a :class:`HostContext`,
  which also carries the context's address) is invalidated after the call, as
  wasmtime-py does.

Like ``_fastcall`` it depends on wasmtime-py internals (``_ffi``/``_bindings``);
wasmtime is pinned exactly, and tests/runtime/test_hostcall.py checks it against
``add_func`` call for call.
"""

from __future__ import annotations

import ctypes
import itertools
import struct
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, Protocol

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as wc

__all__ = (
    "BYTES",
    "ENUM",
    "NO_RESULT",
    "STRING",
    "STRING_OR_ERR",
    "STRING_RESULT",
    "U32",
    "UNIT_OR_ERR",
    "HostContext",
    "SlotFunc",
    "add_func",
    "generic_call",
    "register",
)

ParamKind = Literal["string", "bytes", "u32", "enum"]
ResultKind = Literal["none", "string", "result<_, string>", "result<string, string>"]

STRING: Final[ParamKind] = "string"
"""``string`` -> ``str``"""
BYTES: Final[ParamKind] = "bytes"
"""``list<u8>`` -> ``bytes``"""
U32: Final[ParamKind] = "u32"
"""``u32`` -> ``int``"""
ENUM: Final[ParamKind] = "enum"
"""an enum -> the case name as ``str`` (as wasmtime-py gives it)"""

NO_RESULT: Final[ResultKind] = "none"
"""no result; the function returns None"""
STRING_RESULT: Final[ResultKind] = "string"
"""``string``; the function returns a ``str``"""
UNIT_OR_ERR: Final[ResultKind] = "result<_, string>"
"""``result<_, string>``; the function returns None for ok, a ``str`` for err"""
STRING_OR_ERR: Final[ResultKind] = "result<string, string>"
"""``result<string, string>``; the function returns ``wc.Variant("ok"|"err", str)``"""

HostFunction = Callable[..., Any]

_VAL: Final = ffi.wasmtime_component_val_t
_VAL_SIZE: Final = ctypes.sizeof(_VAL)
assert _VAL_SIZE == 32, "wasmtime_component_val_t layout changed; re-check the host fast path"
_KIND_U8: Final = ffi.WASMTIME_COMPONENT_U8.value
_KIND_U32: Final = ffi.WASMTIME_COMPONENT_U32.value
_KIND_STRING: Final = ffi.WASMTIME_COMPONENT_STRING.value
_KIND_LIST: Final = ffi.WASMTIME_COMPONENT_LIST.value
_KIND_ENUM: Final = ffi.WASMTIME_COMPONENT_ENUM.value
_KIND_RESULT: Final = ffi.WASMTIME_COMPONENT_RESULT.value

_PARAM_KINDS: Final[dict[ParamKind, int]] = {
    STRING: _KIND_STRING,
    BYTES: _KIND_LIST,
    U32: _KIND_U32,
    ENUM: _KIND_ENUM,
}
_RESULT_KINDS: Final = frozenset({NO_RESULT, STRING_RESULT, UNIT_OR_ERR, STRING_OR_ERR})

# one argument: kind byte, padding, then the union's first two words:
# (size, data) of a string / enum name / list, or a u32 in the low bytes of the first
_ARG: Final = "B7xQQ8x"
_PAIR: Final = struct.Struct("<QQ")
_U32_MASK: Final = 0xFFFF_FFFF
_CHUNK: Final = 4096  # list<u8> elements copied out at a time (128 KiB)

# The process's address space as two memoryviews (read-only and writable), so
# reading wasmtime's values is a slice or a struct unpack at (address - _BASE)
# instead of a ctypes call per read (ctypes.string_at and PyMemoryView_FromMemory
# cost about 0.5 us each here; a slice about 0.2 us). They are only ever indexed
# at addresses wasmtime handed to the current call, exactly what string_at would
# read; _BASE is below any mapping (Linux refuses to map under vm.mmap_min_addr).
_PyBUF_READ: Final = 0x100
_PyBUF_WRITE: Final = 0x200
_BASE: Final = 0x10000
_SPAN: Final = 1 << 62
_memory_view = ctypes.pythonapi["PyMemoryView_FromMemory"]
_memory_view.restype = ctypes.py_object
_memory_view.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_MEM: Final[memoryview] = _memory_view(_BASE, _SPAN, _PyBUF_READ)
_WMEM: Final[memoryview] = _memory_view(_BASE, _SPAN, _PyBUF_WRITE)

# our own prototypes of two C functions, taking plain addresses: wasmtime-py's
# bindings want ctypes pointer objects (and share one function object per symbol,
# so their argtypes must not be changed)
_byte_vec_new: Final = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)(
    ("wasm_byte_vec_new", ffi.dll)
)
_val_new: Final = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(
    ("wasmtime_component_val_new", ffi.dll)
)
_error_new: Final = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(
    ("wasmtime_error_new", ffi.dll)
)

_CONTEXT_PTR: Final = ctypes.POINTER(ffi.wasmtime_context_t)
_FUNC_TYPE_PTR: Final = ctypes.POINTER(ffi.wasmtime_component_func_type_t)
_VAL_PTR: Final = ctypes.POINTER(_VAL)

# (data, context, func type, args, nargs, results, nresults) -> wasmtime_error_t*;
# the same C signature as wasmtime-py's callback type, with plain addresses for
# the pointers we only do arithmetic on
_CALLBACK: Final = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_size_t,
)
_FINALIZER: Final = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class HostContext(wasmtime.StoreContext):
    """The ``StoreContext`` a host function receives, which also knows its address.

    ``address`` is the ``wasmtime_context_t*`` as an int (what an instance is
    looked up by) and is 0 once the call is over; ``_context()`` builds the ctypes
    pointer wasmtime-py's API wants only when something asks for it.
    """

    __slots__ = ("address",)

    def __init__(self, address: int) -> None:
        self.address = address

    def _context(self) -> ctypes._Pointer[ffi.wasmtime_context_t]:
        if not self.address:
            raise ValueError("caller is no longer valid")
        return ctypes.cast(self.address, _CONTEXT_PTR)

    def _invalidate(self) -> None:
        self.address = 0


class _Mismatch(Exception):
    """The arguments are not the declared kinds: use wasmtime-py's conversions."""


def _checked(address: int) -> int:
    """``address`` as an offset into :data:`_MEM`; a NULL or bogus one is refused
    (a negative index would wrap around the view)."""
    if address < _BASE:
        raise wasmtime.WasmtimeError(f"host call: invalid value pointer {address:#x}")
    return address - _BASE


def _read_string(size: int, data: int) -> str:
    if not size:  # an empty string's data pointer is dangling
        return ""
    start = _checked(data)
    return _MEM[start : start + size].tobytes().decode("utf-8")


def _read_bytes(size: int, data: int) -> bytes:
    if not size:
        return b""
    start = _checked(data)
    if _MEM[start] != _KIND_U8:  # list<u8> only; other lists go the generic way
        raise _Mismatch
    end = start + size * _VAL_SIZE
    # copy the values out, then a tight bytes slice (about 4x faster than a strided
    # memoryview copy); a long list chunk by chunk, so each copy stays in cache
    if size <= _CHUNK:
        return _MEM[start:end].tobytes()[8::_VAL_SIZE]
    step = _CHUNK * _VAL_SIZE
    return b"".join(
        [_MEM[at : min(at + step, end)].tobytes()[8::_VAL_SIZE] for at in range(start, end, step)]
    )


def _read_u32(value: int, _unused: int) -> int:
    return value & _U32_MASK


Reader = Callable[[int, int], Any]
_READERS: Final[dict[ParamKind, Reader]] = {
    STRING: _read_string,
    BYTES: _read_bytes,
    U32: _read_u32,
    ENUM: _read_string,
}


def _args_reader(params: Sequence[ParamKind]) -> Callable[[tuple[int, ...]], Sequence[Any]]:
    """The Python arguments from the unpacked (kind, word, word) triples; spelled out
    for the arities our imports use (a generic loop costs several times as much)."""
    readers = [_READERS[p] for p in params]
    if len(readers) == 1:
        (r0,) = readers
        return lambda f: (r0(f[1], f[2]),)
    if len(readers) == 2:
        r0, r1 = readers
        return lambda f: (r0(f[1], f[2]), r1(f[4], f[5]))
    if len(readers) == 3:
        r0, r1, r2 = readers
        return lambda f: (r0(f[1], f[2]), r1(f[4], f[5]), r2(f[7], f[8]))
    spots = [(read, 3 * i + 1, 3 * i + 2) for i, read in enumerate(readers)]
    return lambda f: [read(f[i], f[j]) for read, i, j in spots]


def _boxed_string(text: str) -> int:
    """A heap ``wasmtime_component_val_t`` (string) owned by wasmtime, as an address."""
    data = text.encode("utf-8")
    tmp = _VAL()
    address = ctypes.addressof(tmp)
    _byte_vec_new(address + 8, len(data), data)
    tmp.kind = _KIND_STRING
    # moves the value into a Box; the Python-owned husk is never dropped
    boxed: int | None = _val_new(address)
    if not boxed:  # pragma: no cover - wasmtime aborts on allocation failure
        raise MemoryError("wasmtime_component_val_new returned NULL")
    return boxed


class _HostFunc:
    """One registered host function: its declared shapes and its Python callable."""

    __slots__ = ("fn", "kinds", "name", "nargs", "nresults", "read", "result", "unpack")

    def __init__(
        self, name: str, fn: HostFunction, params: Sequence[ParamKind], result: ResultKind
    ) -> None:
        if result not in _RESULT_KINDS:
            raise ValueError(f"unsupported result shape {result!r}")
        self.name = name
        self.fn = fn
        self.nargs = len(params)
        self.kinds = tuple(_PARAM_KINDS[p] for p in params)
        self.read = _args_reader(params)
        self.unpack = struct.Struct("<" + _ARG * len(params)).unpack_from
        self.result = result
        self.nresults = 0 if result == NO_RESULT else 1

    def call(
        self, store: HostContext, ty: int, args: int, nargs: int, results: int, nresults: int
    ) -> None:
        if nargs != self.nargs or nresults != self.nresults:
            return self._generic(store, ty, args, nargs, results, nresults)
        if nargs:
            fields = self.unpack(_MEM, _checked(args))
            if fields[0::3] != self.kinds:
                return self._generic(store, ty, args, nargs, results, nresults)
            try:
                pyargs = self.read(fields)
            except _Mismatch:
                return self._generic(store, ty, args, nargs, results, nresults)
            value = self.fn(store, *pyargs)
        else:
            value = self.fn(store)
        self._write(value, results)
        return None

    def _write(self, value: Any, results: int) -> None:
        result = self.result
        if result == NO_RESULT:
            if value is not None:
                raise TypeError(f"{self.name} has no result but its function returned {value!r}")
            return
        at = _checked(results)
        if result == STRING_RESULT:
            if not isinstance(value, str):
                raise TypeError(f"{self.name} must return a str, not {type(value).__name__}")
            data = value.encode("utf-8")
            _byte_vec_new(results + 8, len(data), data)
            _WMEM[at] = _KIND_STRING
            return
        if result == UNIT_OR_ERR:
            if value is None:
                is_ok, payload = 1, 0
            elif isinstance(value, str):
                is_ok, payload = 0, _boxed_string(value)
            else:
                raise TypeError(
                    f"{self.name} must return None (ok) or a str (err), not {type(value).__name__}"
                )
        else:  # STRING_OR_ERR
            if (
                not isinstance(value, wc.Variant)
                or value.tag not in ("ok", "err")
                or not isinstance(value.payload, str)
            ):
                raise TypeError(
                    f"{self.name} must return Variant('ok' | 'err', str), not {value!r:.200}"
                )
            is_ok, payload = int(value.tag == "ok"), _boxed_string(value.payload)
        _PAIR.pack_into(_WMEM, at + 8, is_ok, payload)
        _WMEM[at] = _KIND_RESULT

    def _generic(
        self, store: HostContext, ty: int, args: int, nargs: int, results: int, nresults: int
    ) -> None:
        generic_call(self.name, self.fn, store, ty, args, nargs, results, nresults)


def generic_call(
    name: str,
    fn: HostFunction,
    store: HostContext,
    ty: int,
    args: int,
    nargs: int,
    results: int,
    nresults: int,
    adapt: Callable[[HostContext, list[Any]], list[Any]] | None = None,
) -> None:
    """wasmtime-py's ``func_impl``, for a call whose arguments we do not expect.

    ``adapt`` may rewrite the converted arguments before ``fn`` sees them."""
    fty = wc.FuncType._from_ptr(ctypes.cast(ty, _FUNC_TYPE_PTR), owner=store)
    params = fty.params
    result_ty = fty.result
    if len(params) != nargs or nresults != (0 if result_ty is None else 1):
        raise wasmtime.WasmtimeError(
            f"host function {name}: {nargs} arguments and {nresults} results "
            "do not match the imported function type"
        )
    values = ctypes.cast(args, _VAL_PTR)
    pyargs = [ty_.convert_from_c(values[i]) for i, (_, ty_) in enumerate(params)]
    if adapt is not None:
        pyargs = adapt(store, pyargs)
    value = fn(store, *pyargs)
    if result_ty is None:
        if value is not None:
            raise TypeError(f"{name} has no result but its function returned {value!r}")
    else:
        result_ty.convert_to_c(store, value, ctypes.cast(results, _VAL_PTR))


class SlotFunc(Protocol):
    """What the trampoline calls: a named host function taking wasmtime's raw call."""

    name: str

    def call(
        self, store: HostContext, ty: int, args: int, nargs: int, results: int, nresults: int
    ) -> None: ...


_SLOTS: dict[int, SlotFunc] = {}
_IDS = itertools.count(1)  # never 0: a NULL data pointer arrives as None
_FALLBACK_ERROR: Final = b"airssys host call failed (and so did reporting why)"


def _error_address(exc: BaseException, name: str) -> int:
    """The ``wasmtime_error_t*`` (as an int) wasmtime takes ownership of."""
    try:
        if isinstance(exc, wasmtime.WasmtimeError):
            try:
                err = exc._consume()  # ours now, then wasmtime's
            except ValueError:  # already consumed or closed: say it again
                err = wasmtime.WasmtimeError(str(exc))._consume()
        else:
            text = f"host function {name} raised {exc!r:.300}"
            err = wasmtime.WasmtimeError(text.encode("utf-8", "replace").decode("utf-8"))._consume()
        return ctypes.cast(err, ctypes.c_void_p).value or 0
    except BaseException:
        return _error_new(_FALLBACK_ERROR) or 0


def _trampoline(
    data: int | None,
    context: int | None,
    ty: int | None,
    args: int | None,
    nargs: int,
    results: int | None,
    nresults: int,
) -> int:
    store = HostContext(context or 0)
    func: SlotFunc | None = None
    try:
        func = _SLOTS[data or 0]
        func.call(store, ty or 0, args or 0, nargs, results or 0, nresults)
    except BaseException as exc:  # nothing may unwind into wasmtime
        return _error_address(exc, func.name if func is not None else "?")
    finally:
        store._invalidate()
    return 0


def _finalize(data: int | None) -> None:
    # no contextlib here: at interpreter shutdown module globals may be gone already
    try:  # noqa: SIM105
        _SLOTS.pop(data or 0, None)
    except BaseException:
        pass


# module-level, so the C thunks live as long as any linker that holds them
_TRAMPOLINE: Final = _CALLBACK(_trampoline)
_FINALIZE: Final = _FINALIZER(_finalize)
# wasmtime-py's binding names its own callback type; ours has the same C signature
_TRAMPOLINE_AS_BINDING: Final = ctypes.cast(_TRAMPOLINE, ffi.wasmtime_component_func_callback_t)


def add_func(
    instance: wc.LinkerInstance,
    name: str,
    fn: HostFunction,
    params: Sequence[ParamKind],
    result: ResultKind,
) -> None:
    """Define ``name`` in ``instance``: ``fn(store, *args)`` with the declared shapes.

    ``store`` is a :class:`HostContext`, valid only during the call. ``fn`` may raise
    ``wasmtime.WasmtimeError`` to trap the calling instance; any other exception
    traps it too, with a message naming ``name`` (prefer answering ``err``).
    """
    register(instance, _HostFunc(name, fn, params, result))


def register(instance: wc.LinkerInstance, func: SlotFunc) -> None:
    """Define ``func.name`` in ``instance`` as a call of ``func`` through the trampoline."""
    instance._assert_not_locked()
    name_bytes = func.name.encode("utf-8")
    name_buf = ctypes.create_string_buffer(name_bytes)
    idx = next(_IDS)
    _SLOTS[idx] = func
    err = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), name_buf, len(name_bytes), _TRAMPOLINE_AS_BINDING, idx, _FINALIZE
    )
    if err:
        _SLOTS.pop(idx, None)  # wasmtime has run the finalizer already; harmless twice
        raise wasmtime.WasmtimeError._from_ptr(err)
