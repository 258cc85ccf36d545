"""Multicodec-prefixed payloads: raw, JSON, CBOR and MessagePack.

Every payload starts with the unsigned-varint code of its codec (the multicodec
table: raw 0x55, cbor 0x51, json 0x0200, messagepack 0x0201), then the body.

    >>> payload = encode({"n": 1}, "json")
    >>> decode(payload)
    {'n': 1}
    >>> codec_of(payload).name
    'json'
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .errors import CodecError

__all__ = (
    "CBOR",
    "CODECS",
    "JSON",
    "MSGPACK",
    "RAW",
    "Codec",
    "codec_of",
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


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# cbor2 and msgpack are imported on first use: this module is also bundled into
# Python components (airssys.sdk), where they may be left out to save space.
def _need(module: str, codec: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CodecError(
            f"the {codec} codec needs the {module} package, which is not available here "
            "(Python components carry raw, JSON and MessagePack)"
        ) from None


def _cbor_dumps(value: Any) -> bytes:
    return _need("cbor2", "cbor").dumps(value)  # type: ignore[no-any-return]


def _cbor_loads(body: bytes) -> Any:
    return _need("cbor2", "cbor").loads(body)


def _msgpack_dumps(value: Any) -> bytes:
    return _need("msgpack", "messagepack").packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _msgpack_loads(body: bytes) -> Any:
    return _need("msgpack", "messagepack").unpackb(body, raw=False)


RAW: Final = Codec("raw", 0x55, _varint(0x55), _raw_dumps, bytes)
CBOR: Final = Codec("cbor", 0x51, _varint(0x51), _cbor_dumps, _cbor_loads)
JSON: Final = Codec("json", 0x0200, _varint(0x0200), _json_dumps, json.loads)
MSGPACK: Final = Codec("messagepack", 0x0201, _varint(0x0201), _msgpack_dumps, _msgpack_loads)

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
        raise CodecError(f"payload is not valid {codec.name}: {exc}") from exc
