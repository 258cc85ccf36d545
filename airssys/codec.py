"""Multicodec-prefixed payloads: raw, JSON, CBOR and MessagePack.

Every payload starts with the unsigned-varint code of its codec (the multicodec
table: raw 0x55, cbor 0x51, json 0x0200, messagepack 0x0201), then the body.

    >>> payload = encode({"n": 1}, "json")
    >>> decode(payload)
    {'n': 1}
    >>> codec_of(payload).name
    'json'

CBOR uses cbor2 where it is installed (the host). Python components cannot carry
cbor2 (a compiled extension), so there CBOR runs :data:`PURE_CBOR`, a small
pure-Python CBOR (RFC 8949) for the data model components exchange: None, bools,
ints of any size (beyond 64 bits as bignums, tags 2 and 3), floats (half, single
and double precision), str, bytes, lists (tuples encode as lists) and dicts (an
array used as a map key decodes as a tuple). Indefinite-length items are read;
``undefined`` reads as None; tag 55799 (self-described CBOR) is skipped. Any other
tag or simple value is a CodecError naming it. :func:`component_codec` gives a
codec as components run it; the SDK uses it everywhere, so
``airssys.testing.MockHost`` decodes and encodes exactly as a built component does.

JSON, CBOR and MessagePack refuse bytes after the value.
"""

from __future__ import annotations

import importlib
import io
import json
import json.encoder
import json.scanner
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

from .errors import CodecError

__all__ = (
    "CBOR",
    "CODECS",
    "COMPONENT_PREFIXES",
    "JSON",
    "MSGPACK",
    "PURE_CBOR",
    "RAW",
    "Codec",
    "codec_of",
    "component_codec",
    "decode",
    "decode_with",
    "encode",
    "split",
)


@dataclass(frozen=True, slots=True)
class Codec:
    """One codec: its multicodec name and code, its prefix, and how to (de)serialize."""

    name: str
    code: int
    prefix: bytes
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _raw_dumps(value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise CodecError(f"the raw codec carries bytes, not {type(value).__name__}")
    return bytes(value)


_JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_JSON_DECODER: Final = json.JSONDecoder()
_JSON_SCAN: Final = json.scanner.make_scanner(_JSON_DECODER)  # type: ignore[arg-type]
_JSON_EDGE: Final = " \t\n\r\ufeff"
_JSON_MARKERS: dict[int, Any] = {}
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_JSON_C_ENCODER: Final = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        _JSON_MARKERS,
        _JSON_ENCODER.default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
)


def _json_dumps(value: Any) -> bytes:
    return _JSON_ENCODER.encode(value).encode("utf-8")


# cbor2 and msgpack are imported on first use: this module is also bundled into
# Python components (airssys.sdk), where cbor2 cannot come along (CBOR falls back
# to the pure-Python implementation below) and msgpack runs its pure-Python fallback.
def _need(module: str, codec: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CodecError(
            f"the {codec} codec needs the {module} package, which is not available here "
            "(Python components carry raw, JSON, CBOR and MessagePack)"
        ) from None


_cbor2_module: Any = None  # cbor2 once imported, False where it cannot be


def _cbor2() -> Any:
    """cbor2, or None where it is missing or cannot load (inside a component)."""
    global _cbor2_module
    if _cbor2_module is None:
        try:
            _cbor2_module = importlib.import_module("cbor2")
        except (ImportError, OSError):
            _cbor2_module = False
    return _cbor2_module or None


def _cbor_dumps(value: Any) -> bytes:
    cbor2 = _cbor2()
    if cbor2 is None:
        return _pure_cbor_dumps(value)
    return cbor2.dumps(value)  # type: ignore[no-any-return]


def _cbor_loads(body: bytes) -> Any:
    cbor2 = _cbor2()
    if cbor2 is None:
        return _pure_cbor_loads(body)
    stream = io.BytesIO(body)
    value = cbor2.CBORDecoder(stream).decode()
    if stream.tell() != len(body):
        raise CodecError(_trailing(len(body) - stream.tell()))
    return value


def _trailing(count: int) -> str:
    return f"payload is not valid cbor: {count} bytes follow the value"


# Inside components, containers nested deeper than this are refused (cbor2's limit too).
_MAX_DEPTH: Final = 400

# JSON inside components: CPython's C decoder recurses once per nesting level, and
# wasm's call stack runs out (a trap that loses the component's state) before
# Python's recursion limit can refuse it, so nesting is measured first.
_JSON_TOKEN: Final = re.compile(r'"(?:[^"\\]|\\.)*+"?', re.S)  # a string: linear, no backtracking
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


def _json_depth(text: str) -> int:
    """How deep ``text``'s arrays and objects nest (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _JSON_TOKEN.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _component_json_loads(body: bytes) -> Any:
    if body.count(b"[") + body.count(b"{") > _MAX_DEPTH:  # else it cannot nest deeper
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        if _json_depth(text) > _MAX_DEPTH:
            raise CodecError(
                f"payload is not valid json here: nested deeper than {_MAX_DEPTH} levels "
                "(the limit inside Python components)"
            )
    try:  # UTF-8, as RFC 8259 asks: straight to the decoder (cheaper inside wasm)
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return json.loads(body)  # UTF-16/32, detected as json.loads does
    if not text or text[0] in _JSON_EDGE or text[-1] in _JSON_EDGE:
        return json.loads(body)  # whitespace around it, a BOM, or nothing: the full path
    try:  # the C scanner straight away: json.loads's Python layers cost inside wasm
        value, end = _JSON_SCAN(text, 0)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", text, stop.value) from None
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _component_json_dumps(value: Any) -> bytes:
    """JSON as components write it: the C encoder made once (a component is one
    thread, so its circular-reference markers can be reused)."""
    if _JSON_C_ENCODER is None:  # pragma: no cover - CPython always has _json
        return _json_dumps(value)
    _JSON_MARKERS.clear()
    return "".join(_JSON_C_ENCODER(value, 0)).encode("utf-8")


def _msgpack_dumps(value: Any) -> bytes:
    return _need("msgpack", "messagepack").packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _msgpack_loads(body: bytes) -> Any:
    return _need("msgpack", "messagepack").unpackb(body, raw=False)


# --- CBOR in pure Python: what runs inside components ------------------------------

_CBOR_TAGS: Final = "2 and 3 (bignums) and 55799 (self-described CBOR)"


def _pure_cbor_dumps(value: Any) -> bytes:
    out = bytearray()
    _cbor_write(out, value, 0)
    return bytes(out)


def _cbor_head(out: bytearray, major: int, n: int) -> None:
    if n < 24:
        out.append(major << 5 | n)
    elif n < 0x100:
        out += bytes((major << 5 | 24, n))
    elif n < 0x10000:
        out.append(major << 5 | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x1_0000_0000:
        out.append(major << 5 | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(major << 5 | 27)
        out += n.to_bytes(8, "big")


def _cbor_write(out: bytearray, value: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise CodecError(f"cannot encode as cbor: nested deeper than {_MAX_DEPTH} levels")
    if value is None:
        out.append(0xF6)
    elif value is True or value is False:
        out.append(0xF5 if value else 0xF4)
    elif isinstance(value, int):
        major, n = (0, value) if value >= 0 else (1, -1 - value)
        if n < 2**64:
            _cbor_head(out, major, n)
        else:  # a bignum: tag 2 (positive) or 3 (negative) over its big-endian bytes
            out.append(0xC2 + major)
            big = n.to_bytes((n.bit_length() + 7) // 8, "big")
            _cbor_head(out, 2, len(big))
            out += big
    elif isinstance(value, float):
        if math.isnan(value):
            out += b"\xf9\x7e\x00"
        elif math.isinf(value):
            out += b"\xf9\x7c\x00" if value > 0 else b"\xf9\xfc\x00"
        else:
            out.append(0xFB)
            out += struct.pack(">d", value)
    elif isinstance(value, str):
        data = value.encode("utf-8")  # a lone surrogate raises: encode() names it
        _cbor_head(out, 3, len(data))
        out += data
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        _cbor_head(out, 2, len(data))
        out += data
    elif isinstance(value, list | tuple):
        _cbor_head(out, 4, len(value))
        for item in value:
            _cbor_write(out, item, depth + 1)
    elif isinstance(value, dict):
        _cbor_head(out, 5, len(value))
        for key, item in value.items():
            _cbor_write(out, key, depth + 1)
            _cbor_write(out, item, depth + 1)
    else:
        raise CodecError(
            f"cannot encode {type(value).__name__} as cbor here; the CBOR of Python "
            "components carries None, bool, int, float, str, bytes, list, tuple and dict"
        )


def _pure_cbor_loads(body: bytes) -> Any:
    reader = _CborReader(body)
    value = reader.item(0)
    if reader.pos != len(body):
        raise CodecError(_trailing(len(body) - reader.pos))
    return value


class _CborReader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _fail(self, why: str) -> CodecError:
        return CodecError(f"payload is not valid cbor: {why} (at byte {self.pos})")

    def _take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise self._fail(f"needs {n} more bytes, {len(self.data) - self.pos} remain")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _head(self) -> tuple[int, int, int | None]:
        """(major type, additional info, argument); the argument is None if indefinite."""
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, info
        if info < 28:
            return major, info, int.from_bytes(self._take(1 << (info - 24)), "big")
        if info == 31 and major in (2, 3, 4, 5, 7):
            return major, info, None
        raise self._fail(f"reserved initial byte 0x{initial:02x}")

    def _at_break(self) -> bool:
        if self.pos < len(self.data) and self.data[self.pos] == 0xFF:
            self.pos += 1
            return True
        return False

    def _room(self, count: int, size: int) -> None:
        remain = len(self.data) - self.pos
        if count * size > remain:
            raise self._fail(f"declares {count} items, but only {remain} bytes remain")

    def _string(self, major: int, length: int | None) -> bytes:
        if length is not None:
            return self._take(length)
        chunks = []
        while not self._at_break():
            chunk_major, _, chunk_length = self._head()
            if chunk_major != major or chunk_length is None:
                raise self._fail("an indefinite-length string holds a chunk of another kind")
            chunks.append(self._take(chunk_length))
        return b"".join(chunks)

    def _text(self, length: int | None) -> str:
        if length is not None:
            return self._take(length).decode("utf-8")
        parts = []  # each chunk must be valid UTF-8 on its own
        while not self._at_break():
            chunk_major, _, chunk_length = self._head()
            if chunk_major != 3 or chunk_length is None:
                raise self._fail("an indefinite-length string holds a chunk of another kind")
            parts.append(self._take(chunk_length).decode("utf-8"))
        return "".join(parts)

    def item(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise self._fail(f"nested deeper than {_MAX_DEPTH} levels")
        major, info, arg = self._head()
        if major == 0 and arg is not None:
            return arg
        if major == 1 and arg is not None:
            return -1 - arg
        if major == 2:
            return self._string(2, arg)
        if major == 3:
            return self._text(arg)
        if major == 4:
            if arg is None:
                items = []
                while not self._at_break():
                    items.append(self.item(depth + 1))
                return items
            self._room(arg, 1)
            return [self.item(depth + 1) for _ in range(arg)]
        if major == 5:
            result: dict[Any, Any] = {}
            if arg is None:
                while not self._at_break():
                    key = self._key(self.item(depth + 1))
                    result[key] = self.item(depth + 1)
                return result
            self._room(arg, 2)
            for _ in range(arg):
                key = self._key(self.item(depth + 1))
                result[key] = self.item(depth + 1)
            return result
        if major == 6 and arg is not None:
            return self._tagged(arg, depth)
        if major == 7:
            return self._simple(info, arg)
        raise self._fail(f"major type {major} cannot have an indefinite length")

    def _tagged(self, tag: int, depth: int) -> Any:
        if tag == 55799:
            return self.item(depth + 1)
        if tag in (2, 3):
            content = self.item(depth + 1)
            if not isinstance(content, bytes):
                raise self._fail(f"a bignum (tag {tag}) must hold bytes")
            n = int.from_bytes(content, "big")
            return n if tag == 2 else -1 - n
        raise self._fail(
            f"tag {tag} is not supported here; the CBOR of Python components reads "
            f"tags {_CBOR_TAGS}"
        )

    def _simple(self, info: int, arg: int | None) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):  # null, undefined
            return None
        if info == 25:
            return struct.unpack(">e", self.data[self.pos - 2 : self.pos])[0]
        if info == 26:
            return struct.unpack(">f", self.data[self.pos - 4 : self.pos])[0]
        if info == 27:
            return struct.unpack(">d", self.data[self.pos - 8 : self.pos])[0]
        if arg is None:
            raise self._fail("a break (0xff) outside an indefinite-length item")
        raise self._fail(f"simple value {arg} is not supported here")

    def _key(self, key: Any) -> Any:
        """A map key, made hashable (arrays become tuples); a map as a key is refused."""
        if isinstance(key, list):
            return tuple(self._key(k) for k in key)
        if isinstance(key, dict):
            raise self._fail("a map cannot be a map key here")
        return key


RAW: Final = Codec("raw", 0x55, _varint(0x55), _raw_dumps, bytes)
CBOR: Final = Codec("cbor", 0x51, _varint(0x51), _cbor_dumps, _cbor_loads)
JSON: Final = Codec("json", 0x0200, _varint(0x0200), _json_dumps, json.loads)
MSGPACK: Final = Codec("messagepack", 0x0201, _varint(0x0201), _msgpack_dumps, _msgpack_loads)
PURE_CBOR: Final = Codec("cbor", 0x51, _varint(0x51), _pure_cbor_dumps, _pure_cbor_loads)
_COMPONENT_JSON: Final = Codec(
    "json", 0x0200, _varint(0x0200), _component_json_dumps, _component_json_loads
)

CODECS: Final[dict[str, Codec]] = {c.name: c for c in (RAW, JSON, CBOR, MSGPACK)}
_ALIASES: Final = {"msgpack": MSGPACK, "bytes": RAW}
_BY_CODE: Final[dict[int, Codec]] = {c.code: c for c in CODECS.values()}
_KNOWN: Final = ", ".join(f"{c.name} (0x{c.code:x})" for c in CODECS.values())


def _lookup(codec: str | Codec) -> Codec:
    if isinstance(codec, Codec):
        return codec
    found = CODECS.get(codec) or _ALIASES.get(codec)
    if found is None:
        raise CodecError(f"unknown codec {codec!r}; known codecs: {_KNOWN}")
    return found


_IN_COMPONENTS: Final[dict[int, Codec]] = {CBOR.code: PURE_CBOR, JSON.code: _COMPONENT_JSON}


# prefix bytes -> (the codec, the codec as components run it): the SDK's fast path
COMPONENT_PREFIXES: Final[dict[bytes, tuple[Codec, Codec]]] = {
    c.prefix: (c, _IN_COMPONENTS.get(c.code, c)) for c in CODECS.values()
}


def component_codec(codec: str | Codec) -> Codec:
    """``codec`` as Python components run it.

    CBOR is :data:`PURE_CBOR`; JSON refuses nesting deeper than 400 levels before
    parsing (CPython's C parser would exhaust wasm's call stack first); the rest
    are as they are.
    """
    found = _lookup(codec)
    return _IN_COMPONENTS.get(found.code, found)


def split(payload: bytes | bytearray | memoryview) -> tuple[Codec, memoryview]:
    """The codec named by ``payload``'s prefix and a view of the body after it."""
    view = memoryview(payload)
    code = shift = 0
    for i in range(min(len(view), 9)):
        byte = view[i]
        code |= (byte & 0x7F) << shift
        if not byte & 0x80:
            codec = _BY_CODE.get(code)
            if codec is None:
                raise CodecError(f"unknown multicodec prefix 0x{code:x}; known codecs: {_KNOWN}")
            return codec, view[i + 1 :]
        shift += 7
    if not view:
        raise CodecError(f"empty payload: expected a multicodec prefix ({_KNOWN})")
    raise CodecError(
        f"malformed multicodec prefix {bytes(view[:9]).hex()}: the varint does not end; "
        f"expected one of {_KNOWN}"
    )


def codec_of(payload: bytes | bytearray | memoryview) -> Codec:
    """The codec named by ``payload``'s prefix (raises CodecError)."""
    return split(payload)[0]


def encode(value: Any, codec: str | Codec = "json") -> bytes:
    """``value`` serialized with ``codec``, behind that codec's prefix."""
    c = _lookup(codec)
    try:
        return c.prefix + c.dumps(value)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"cannot encode {type(value).__name__} as {c.name}: {exc}") from exc


def decode(payload: bytes | bytearray | memoryview) -> Any:
    """The value in ``payload``, decoded with the codec its prefix names."""
    codec, body = split(payload)
    return decode_with(codec, body)


def decode_with(codec: Codec, body: bytes | memoryview) -> Any:
    """Decode a body (prefix already removed) with ``codec``."""
    try:
        return codec.loads(bytes(body))
    except CodecError:
        raise
    except Exception as exc:
        why = str(exc) or type(exc).__name__
        raise CodecError(f"payload is not valid {codec.name}: {why}") from exc
