"""The fast path for ``handle-message: func(string, list<u8>) -> result<option<list<u8>>, string>``.

wasmtime-py's public ``Func.__call__`` re-reads the function type on every call
and converts ``list<u8>`` one Python int at a time. This module calls
``wasmtime_component_func_call`` directly:

* the function handle, store context and argument array are prepared once;
* arguments are Python-owned (wasmtime only borrows them): the sender string
  points into a reusable byte buffer, and the payload into a reusable array of
  ``wasmtime_component_val_t`` (32 bytes each: kind byte at offset 0, union at
  offset 8) whose kind bytes are pre-set to U8, so a call fills the u8 values
  with one strided copy;
* the result list is read back with one strided copy out of wasmtime's array;
* the result value is deleted after each call and its kind reset to a trivial
  one, because wasmtime assigns into the slot on the next call (a stale LIST
  kind there would be freed twice).

It depends on wasmtime-py internals (``_ffi``/``_bindings``): the wasmtime
version is pinned in pyproject.toml, and tests/runtime/test_fastcall.py checks
it against the public API byte for byte.
"""

from __future__ import annotations

import abc
import binascii
import ctypes
import struct
from typing import Any, Final

import wasmtime
from wasmtime import _bindings
from wasmtime import _ffi as ffi
from wasmtime import component as wc

__all__ = (
    "LIST_PAYLOAD_MAX",
    "FastBulkHandleMessage",
    "FastHandleCallback",
    "FastHandleMessage",
    "RawResult",
    "bytes_from_lane",
    "is_bulk_signature",
    "is_bulk_text_signature",
    "is_callback_signature",
    "is_fast_signature",
    "lane_from_bytes",
)

LIST_PAYLOAD_MAX: Final = 2_796_200
"""The most a component without the bulk lane can take or return per message:
wasmtime lifts a ``list<u8>`` as one value per byte and stops copying at its
hostcall budget (128 MiB / 48 bytes per value, measured: a larger reply traps the
instance); payloads in are held to the same ceiling (they also cost ~0.2 s per MiB)."""

# (is_ok, value): ok -> bytes | None, err -> str
RawResult = tuple[bool, "bytes | str | None"]

_VAL: Final = ffi.wasmtime_component_val_t
_VAL_SIZE: Final = ctypes.sizeof(_VAL)
_KIND_BOOL: Final = ffi.WASMTIME_COMPONENT_BOOL.value
_KIND_U8: Final = ffi.WASMTIME_COMPONENT_U8.value
_KIND_STRING: Final = ffi.WASMTIME_COMPONENT_STRING.value
_KIND_LIST: Final = ffi.WASMTIME_COMPONENT_LIST.value
_KIND_OPTION: Final = ffi.WASMTIME_COMPONENT_OPTION.value
_KIND_RESULT: Final = ffi.WASMTIME_COMPONENT_RESULT.value
_KIND_VARIANT: Final = ffi.WASMTIME_COMPONENT_VARIANT.value
assert _VAL_SIZE == 32, "wasmtime_component_val_t layout changed; re-check the fast path"

_PAIR: Final = struct.Struct("<QQ")  # (size, data pointer) at union offset 8
_PTR: Final = struct.Struct("<Q")
_U64: Final = ctypes.c_uint64
_PyBUF_READ: Final = 0x100
_from_memory = ctypes.pythonapi.PyMemoryView_FromMemory
_from_memory.restype = ctypes.py_object
_from_memory.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)

_call: Final = _bindings._wasmtime_component_func_call
_val_delete: Final = _bindings._wasmtime_component_val_delete

# payloads above this are lowered from a one-off array instead of the kept one,
# so a single 1 MiB message does not pin 32 MiB to the instance forever
_KEEP_MAX: Final = 64 * 1024


def _u64(address: int) -> int:
    return int(_U64.from_address(address).value)


def _view(address: int, size: int) -> memoryview:
    return _from_memory(address, size, _PyBUF_READ)  # type: ignore[no-any-return]


def is_fast_signature(fty: wc.FuncType) -> bool:
    """True when ``fty`` is exactly the handler signature this module covers."""
    params = fty.params
    if len(params) != 2:
        return False
    (_, sender), (_, payload) = params
    if not isinstance(sender, wc.String) or not _is_bytes(payload):
        return False
    result = fty.result
    if not isinstance(result, wc.ResultType):
        return False
    ok, err = result.ok, result.err
    return isinstance(ok, wc.OptionType) and _is_bytes(ok.payload) and isinstance(err, wc.String)


def is_bulk_signature(fty: wc.FuncType) -> bool:
    """True for the bulk lane: ``func(string, string) -> result<option<string>, string>``."""
    params = fty.params
    if len(params) != 2 or not all(isinstance(ty, wc.String) for _, ty in params):
        return False
    result = fty.result
    return (
        isinstance(result, wc.ResultType)
        and isinstance(result.ok, wc.OptionType)
        and isinstance(result.ok.payload, wc.String)
        and isinstance(result.err, wc.String)
    )


_PREFIX_MAX: Final = 16
"""The most bytes a ``"u"`` lane string carries in hex before its text (a multicodec
varint prefix takes at most 9)."""


def _text_split(payload: bytes) -> int:
    """Where the text starts when ``payload`` is a varint prefix (bytes >= 0x80 ended by
    one below it) followed by valid UTF-8; -1 when it is not."""
    end = 0
    limit = min(len(payload), _PREFIX_MAX)
    while end < limit and payload[end] & 0x80:
        end += 1
    if end >= limit:
        return -1
    try:
        payload[end + 1 :].decode("utf-8")
    except UnicodeDecodeError:
        return -1
    return end + 1


def is_bulk_text_signature(fty: wc.FuncType) -> bool:
    """True for ``bulk-text``: ``func(string, string) -> result<option<reply>, string>``
    where ``variant reply { lane(string), bytes(list<u8>) }``."""
    params = fty.params
    if len(params) != 2 or not all(isinstance(ty, wc.String) for _, ty in params):
        return False
    result = fty.result
    if not (
        isinstance(result, wc.ResultType)
        and isinstance(result.ok, wc.OptionType)
        and isinstance(result.err, wc.String)
    ):
        return False
    reply = result.ok.payload
    if not isinstance(reply, wc.VariantType):
        return False
    cases = reply.cases
    return (
        len(cases) == 2
        and cases[0][0] == "lane"
        and isinstance(cases[0][1], wc.String)
        and cases[1][0] == "bytes"
        and _is_bytes(cases[1][1])
    )


def lane_from_bytes(payload: bytes, *, text: bool = False) -> bytes:
    """Bytes as a lane string (UTF-8): ``"a"`` + the bytes themselves when they are all
    ASCII (JSON, text); with ``text`` (a component that exports ``bulk-text``), ``"u"``
    + the hex digits of a multicodec prefix + ``":"`` + the rest when that rest is
    UTF-8 (a JSON or text message); else ``"x"`` + their lowercase hex digits."""
    if payload.isascii():
        return b"a" + payload
    if text:
        split = _text_split(payload)
        if split > 0:
            return b"u" + binascii.hexlify(payload[:split]) + b":" + payload[split:]
    return b"x" + binascii.hexlify(payload)


def bytes_from_lane(lane: bytes | memoryview) -> bytes:
    """The bytes a lane string carries (its UTF-8). A malformed one is a ValueError."""
    tag = bytes(lane[:1])
    body = lane[1:]
    if tag == b"a":
        data = bytes(body)
        if data.isascii():
            return data
    elif tag == b"x":
        try:
            return binascii.unhexlify(body)
        except binascii.Error:
            pass
    elif tag == b"u":
        head = bytes(body[: 2 * _PREFIX_MAX + 1])
        colon = head.find(b":")
        if colon >= 0:
            try:
                return binascii.unhexlify(head[:colon]) + bytes(body[colon + 1 :])
            except binascii.Error:
                pass
    raise ValueError(
        "the bulk lane expects 'a' followed by ASCII bytes, 'x' followed by hex digits, or "
        f"'u', the hex digits of up to {_PREFIX_MAX} bytes, ':' and text; "
        f"the component answered a string starting {bytes(lane[:16])!r}"
    )


def _is_bytes(ty: Any) -> bool:
    return isinstance(ty, wc.ListType) and isinstance(ty.element, wc.U8)


class _U8Array:
    """A Python-owned array of u8 component values, kind bytes pre-set.

    A bytearray, because its extended-slice assignment is a tight C loop (about
    7x faster than the same assignment through a memoryview here); the exported
    ctypes view pins it, so its address cannot move.
    """

    __slots__ = ("address", "capacity", "data", "pin")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        size = max(capacity, 1) * _VAL_SIZE
        self.data = bytearray(size)
        self.data[0::_VAL_SIZE] = bytes((_KIND_U8,)) * max(capacity, 1)
        self.pin = (ctypes.c_char * size).from_buffer(self.data)
        self.address = ctypes.addressof(self.pin)

    def fill(self, payload: bytes) -> None:
        n = len(payload)
        if n:
            self.data[8 : 8 + n * _VAL_SIZE : _VAL_SIZE] = payload


class _PreparedCall(abc.ABC):
    """What both prepared handle-message calls share: the function handle, the
    argument and result values (Python-owned), one call, and reading the
    ``result<option<T>, string>`` it returns. Not thread-safe."""

    __slots__ = (
        "_ctx",
        "_func",
        "_func_ref",
        "_params",
        "_params_view",
        "_result",
        "_result_ref",
        "_result_view",
    )

    def __init__(self, store: wasmtime.Store, func: wc.Func, payload_kind: int) -> None:
        self._func = func._func
        self._func_ref = ctypes.byref(self._func)
        self._ctx = store._context()
        self._params = (_VAL * 2)()
        self._params_view = memoryview(self._params).cast("B")
        self._params[0].kind = _KIND_STRING
        self._params[1].kind = payload_kind
        self._result = _VAL()
        self._result.kind = _KIND_BOOL
        self._result_ref = ctypes.byref(self._result)
        self._result_view = memoryview(self._result).cast("B")

    def _invoke(self) -> RawResult:
        err = _call(self._func_ref, self._ctx, self._params, 2, self._result_ref, 1)
        if err:
            raise wasmtime.WasmtimeError._from_ptr(err)
        try:
            return self._read_result()
        finally:
            _val_delete(self._result_ref)
            self._result_view[0] = _KIND_BOOL

    def _read_result(self) -> RawResult:
        rv = self._result_view
        if rv[0] != _KIND_RESULT:
            raise wasmtime.WasmtimeError(f"unexpected result kind {rv[0]}")
        is_ok = bool(rv[8])
        (inner,) = _PTR.unpack_from(rv, 16)
        if not inner:
            return is_ok, None
        # nested values live in wasmtime's memory: read their words in place
        if not is_ok:  # err(string): (size, data) in the union
            size, data = _u64(inner + 8), _u64(inner + 16)
            return False, ctypes.string_at(data, size).decode("utf-8")
        some = _u64(inner + 8)  # option payload pointer; 0 is none
        if not some:
            return True, None
        return self._reply_at(some)

    def _reply_at(self, value: int) -> RawResult:
        """The ``some`` payload, a value at address ``value`` (a list or a string)."""
        return self._reply(_u64(value + 8), _u64(value + 16))

    @abc.abstractmethod
    def _reply(self, size: int, data: int) -> RawResult:
        """The ``some`` payload at (size, data), as bytes (or an err)."""


class FastHandleMessage(_PreparedCall):
    """A prepared direct call of one instance's ``handler.handle-message`` (list<u8>).

    Owned by exactly one ComponentInstance, which owns the Store.
    """

    __slots__ = (
        "_list",
        "_sender",
        "_sender_addr",
        "_sender_buf",
        "_sender_cap",
        "_sender_view",
    )

    def __init__(self, store: wasmtime.Store, func: wc.Func) -> None:
        super().__init__(store, func, _KIND_LIST)
        self._list = _U8Array(256)
        self._sender = b""
        self._sender_cap = 0
        self._grow_sender(64)

    def _grow_sender(self, size: int) -> None:
        self._sender_cap = max(size, 2 * self._sender_cap)
        self._sender_buf = ctypes.create_string_buffer(self._sender_cap)
        self._sender_addr = ctypes.addressof(self._sender_buf)
        self._sender_view = memoryview(self._sender_buf).cast("B")
        self._sender = b""

    def __call__(self, sender: bytes, payload: bytes) -> RawResult:
        """Call with a UTF-8 encoded sender. Raises ``wasmtime.WasmtimeError`` on a trap."""
        pv = self._params_view
        if sender is not self._sender:
            n = len(sender)
            if n > self._sender_cap:
                self._grow_sender(n)
            self._sender_view[:n] = sender
            self._sender = sender
            _PAIR.pack_into(pv, 8, n, self._sender_addr)

        array = self._array_for(payload)
        _PAIR.pack_into(pv, _VAL_SIZE + 8, len(payload), array.address)
        return self._invoke()

    def _array_for(self, payload: bytes) -> _U8Array:
        """The kept array when the payload fits, else a bigger one (kept up to
        ``_KEEP_MAX``, one-off above it), filled with the payload."""
        n = len(payload)
        if n <= self._list.capacity:
            array = self._list
        elif n <= _KEEP_MAX:
            array = self._list = _U8Array(max(n, 2 * self._list.capacity))
        else:
            array = _U8Array(n)
        array.fill(payload)
        return array

    def _reply(self, size: int, data: int) -> RawResult:
        if not size:
            return True, b""
        if size <= _KEEP_MAX:  # copy out, then a tight bytes slice
            return True, ctypes.string_at(data, size * _VAL_SIZE)[8::_VAL_SIZE]
        return True, _view(data, size * _VAL_SIZE)[8::_VAL_SIZE].tobytes()


class FastBulkHandleMessage(_PreparedCall):
    """A prepared direct call of the bulk lane (``bulk.handle-message``).

    The payload and the reply cross as strings, which wasmtime copies in one go
    (a ``list<u8>`` is one 32-byte value per byte in its C API). ``text``: the
    component exports ``bulk-text`` and takes the ``"u"`` form too. Owned by one
    ComponentInstance.
    """

    __slots__ = ("_text",)

    def __init__(self, store: wasmtime.Store, func: wc.Func, *, text: bool = False) -> None:
        super().__init__(store, func, _KIND_STRING)
        self._text = text

    def __call__(self, sender: bytes, payload: bytes) -> RawResult:
        """Call with a UTF-8 sender. Raises ``wasmtime.WasmtimeError`` on a trap."""
        lane = lane_from_bytes(payload, text=self._text)
        # wasmtime borrows both buffers for the call; the locals keep them alive
        pv = self._params_view
        _PAIR.pack_into(pv, 8, len(sender), _address_of(sender))
        _PAIR.pack_into(pv, _VAL_SIZE + 8, len(lane), _address_of(lane))
        return self._invoke()

    def _reply(self, size: int, data: int) -> RawResult:
        try:  # straight out of wasmtime's buffer: one copy
            return True, bytes_from_lane(_view(data, size))
        except ValueError as exc:
            return False, str(exc)

    def _reply_at(self, value: int) -> RawResult:
        if not self._text:  # bulk: the reply is the lane string itself
            return super()._reply_at(value)
        # bulk-text: variant reply { lane(string), bytes(list<u8>) }; the union holds the
        # case name (size, data) at +8 and the payload value's address at +24
        if ctypes.c_uint8.from_address(value).value != _KIND_VARIANT:
            raise wasmtime.WasmtimeError("bulk-text answered a value that is not its reply")
        case = ctypes.string_at(_u64(value + 16), _u64(value + 8))
        payload = _u64(value + 24)
        size, data = _u64(payload + 8), _u64(payload + 16)
        if case == b"lane":
            return self._reply(size, data)
        if not size:
            return True, b""
        return True, _view(data, size * _VAL_SIZE)[8::_VAL_SIZE].tobytes()


def is_callback_signature(fty: wc.FuncType) -> bool:
    """True for ``func(string, result<list<u8>, string>) -> result<_, string>``."""
    params = fty.params
    if len(params) != 2:
        return False
    (_, cid), (_, reply) = params
    if not isinstance(cid, wc.String) or not isinstance(reply, wc.ResultType):
        return False
    if not _is_bytes(reply.ok) or not isinstance(reply.err, wc.String):
        return False
    result = fty.result
    return (
        isinstance(result, wc.ResultType)
        and result.ok is None
        and isinstance(result.err, wc.String)
    )


class FastHandleCallback(FastHandleMessage):
    """A prepared direct call of ``callback.handle-callback``: the reply (bytes) or the
    error text goes in a Python-owned ``result`` value whose payload value is ours
    too (wasmtime only borrows arguments)."""

    __slots__ = ("_inner", "_inner_view")

    def __init__(self, store: wasmtime.Store, func: wc.Func) -> None:
        super().__init__(store, func)
        self._params[1].kind = _KIND_RESULT
        self._inner = _VAL()
        self._inner_view = memoryview(self._inner).cast("B")
        # the result's union: is_ok (a byte) at +8, the payload value's address at +16
        _PTR.pack_into(self._params_view, _VAL_SIZE + 16, ctypes.addressof(self._inner))

    def call(self, correlation_id: bytes, reply: bytes | str) -> RawResult:
        """Deliver ``reply`` (bytes: ok; text: err). Raises WasmtimeError on a trap."""
        pv, iv = self._params_view, self._inner_view
        _PAIR.pack_into(pv, 8, len(correlation_id), _address_of(correlation_id))
        if isinstance(reply, bytes):
            array = self._array_for(reply)
            pv[_VAL_SIZE + 8] = 1
            iv[0] = _KIND_LIST
            _PAIR.pack_into(iv, 8, len(reply), array.address)
            return self._invoke()
        text = reply.encode("utf-8")  # kept alive by this frame for the call
        pv[_VAL_SIZE + 8] = 0
        iv[0] = _KIND_STRING
        _PAIR.pack_into(iv, 8, len(text), _address_of(text))
        return self._invoke()

    def _reply(self, size: int, data: int) -> RawResult:
        raise wasmtime.WasmtimeError(
            "handle-callback answered a value; it returns result<_, string>"
        )


_bytes_address: Final = ctypes.c_char_p


def _address_of(data: bytes) -> int:
    """The address of an immutable bytes object's buffer (valid while it lives)."""
    return ctypes.cast(_bytes_address(data), ctypes.c_void_p).value or 0
