"""Multicodec payloads: round trips, prefixes, and the errors that name them."""

from __future__ import annotations

import json
import math
import re

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airssys import codec
from airssys.errors import CodecError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@pytest.mark.parametrize("name", ["json", "cbor", "messagepack"])
@given(value=json_values)
def test_structured_codecs_round_trip(name: str, value: object) -> None:
    payload = codec.encode(value, name)
    assert codec.codec_of(payload).name == name
    assert codec.decode(payload) == value


@given(body=st.binary(max_size=300))
def test_raw_round_trips_bytes(body: bytes) -> None:
    assert codec.decode(codec.encode(body, "raw")) == body


def test_prefixes_are_the_multicodec_varints() -> None:
    assert codec.encode(b"x", "raw") == b"\x55x"
    assert codec.encode(1, "cbor")[:1] == b"\x51"
    assert codec.encode(1, "json")[:2] == b"\x80\x04"
    assert codec.encode(1, "messagepack")[:2] == b"\x81\x04"
    assert codec.codec_of(codec.encode(1, "msgpack")) is codec.MSGPACK


def test_a_reply_may_use_another_codec() -> None:
    request = codec.encode({"q": "sum", "args": [1, 2]}, "json")
    asked = codec.decode(request)
    reply = codec.encode({"sum": sum(asked["args"])}, "cbor")
    assert codec.codec_of(reply).name == "cbor"
    assert codec.decode(reply) == {"sum": 3}


def test_unknown_prefix_is_named() -> None:
    with pytest.raises(CodecError, match=r"unknown multicodec prefix 0x70; known codecs: raw"):
        codec.decode(b"\x70{}")


def test_malformed_varint_is_named() -> None:
    with pytest.raises(CodecError, match="malformed multicodec prefix ffff.*does not end"):
        codec.decode(b"\xff\xff")


def test_empty_payload_is_refused() -> None:
    with pytest.raises(CodecError, match="empty payload"):
        codec.decode(b"")


def test_bad_body_names_the_codec() -> None:
    with pytest.raises(CodecError, match="not valid json"):
        codec.decode(codec.JSON.prefix + b"{nope")


def test_unencodable_value_and_unknown_codec_name() -> None:
    with pytest.raises(CodecError, match="cannot encode set as json"):
        codec.encode({1, 2}, "json")
    with pytest.raises(CodecError, match="the raw codec carries bytes, not str"):
        codec.encode("text", "raw")
    with pytest.raises(CodecError, match="unknown codec 'yaml'"):
        codec.encode(1, "yaml")


# --- CBOR inside Python components: the pure-Python codec, held against cbor2 ------------

cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.integers() | st.binary(max_size=4), inner, max_size=4
        )
    ),
    max_leaves=12,
)


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with one byte changed, cut short, or extended."""
    if not data:
        return st.just(data)
    return st.one_of(
        st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)).map(
            lambda change: data[: change[0]] + bytes([change[1]]) + data[change[0] + 1 :]
        ),
        st.integers(0, len(data)).map(lambda n: data[:n]),
        st.binary(min_size=1, max_size=4).map(lambda tail: data + tail),
    )


def _same(a: object, b: object) -> bool:
    """Equality that takes NaN as equal to NaN (and keeps 1 and True apart)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300)
@given(value=cbor_values)
def test_pure_cbor_writes_the_bytes_cbor2_writes_and_reads_them_back(value: object) -> None:
    encoded = cbor2.dumps(value)
    assert codec.PURE_CBOR.dumps(value) == encoded
    assert _same(codec.PURE_CBOR.loads(encoded), value)
    assert _same(cbor2.loads(codec.PURE_CBOR.dumps(value)), value)


@pytest.mark.parametrize(
    ("hex_", "value"),
    [  # RFC 8949, appendix A, and the forms cbor2 writes that the encoder does not
        ("1bffffffffffffffff", 18446744073709551615),
        ("c249010000000000000000", 18446744073709551616),
        ("3bffffffffffffffff", -18446744073709551616),
        ("c349010000000000000000", -18446744073709551617),
        ("f93c00", 1.0),
        ("f97bff", 65504.0),
        ("fa47c35000", 100000.0),
        ("f9fc00", -math.inf),
        ("5f42010243030405ff", b"\x01\x02\x03\x04\x05"),
        ("7f657374726561646d696e67ff", "streaming"),
        ("9f018202039f0405ffff", [1, [2, 3], [4, 5]]),
        ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}),
        ("a1820102f5", {(1, 2): True}),
        ("f7", None),  # undefined
        ("d9d9f7820102", [1, 2]),  # self-described CBOR
    ],
)
def test_pure_cbor_reads_rfc_8949_examples(hex_: str, value: object) -> None:
    assert _same(codec.PURE_CBOR.loads(bytes.fromhex(hex_)), value)


@pytest.mark.parametrize(
    ("hex_", "why"),
    [
        ("c074323031332d30332d32315432303a30343a30305a", "tag 0 is not supported here"),
        ("f0", "simple value 16 is not supported"),
        ("ff", "a break"),
        ("1c", "reserved initial byte 0x1c"),
        ("1f", "reserved initial byte 0x1f"),
        ("5b00000000ffffffff", "needs 4294967295 more bytes"),
        ("9b00000000ffffffff", "declares 4294967295 items"),
        ("5f61614100ff", "a chunk of another kind"),
        ("62c328", "can't decode"),
        ("c2f5", "a bignum (tag 2) must hold bytes"),
        ("a1a0f5", "a map cannot be a map key"),
        ("0102", "1 bytes follow the value"),
        ("81" * 401 + "01", "nested deeper than 400 levels"),
    ],
)
def test_pure_cbor_names_what_it_refuses(hex_: str, why: str) -> None:
    with pytest.raises(CodecError, match=f"not valid cbor: .*{re.escape(why)}"):
        codec.decode_with(codec.PURE_CBOR, bytes.fromhex(hex_))


@settings(max_examples=500)
@given(body=st.binary(max_size=40) | cbor_values.map(cbor2.dumps).flatmap(_mutations))
def test_pure_cbor_reads_any_bytes_as_cbor2_does_or_refuses_them(body: bytes) -> None:
    try:
        value = codec.decode_with(codec.PURE_CBOR, body)
    except CodecError:
        return  # refusing is allowed (cbor2 reads tags and simple values it does not)
    assert _same(value, _undefined_as_none(cbor2.loads(body)))


def _undefined_as_none(value: object) -> object:
    """cbor2's value as the pure codec reads it: ``undefined`` is None there."""
    if value is cbor2.undefined:
        return None
    if isinstance(value, list):
        return [_undefined_as_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _undefined_as_none(v) for k, v in value.items()}
    return value


def test_cbor_encoding_refuses_what_components_cannot_carry() -> None:
    with pytest.raises(CodecError, match="cannot encode set as cbor here; .*int, float, str"):
        codec.encode({1}, codec.PURE_CBOR)
    with pytest.raises(CodecError, match="cannot encode str as cbor: .*surrogate"):
        codec.encode("\ud800", codec.PURE_CBOR)
    nested: list[object] = []
    for _ in range(500):
        nested = [nested]
    with pytest.raises(CodecError, match="nested deeper than 400 levels"):
        codec.encode(nested, codec.PURE_CBOR)


def test_cbor_without_cbor2_uses_the_pure_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "_cbor2_module", False)  # as inside a component
    payload = codec.encode({"n": 2**70, "b": b"\x00"}, "cbor")
    assert payload == codec.CBOR.prefix + codec.PURE_CBOR.dumps({"n": 2**70, "b": b"\x00"})
    assert codec.decode(payload) == {"n": 2**70, "b": b"\x00"}


def test_cbor_refuses_bytes_after_the_value_on_the_host_too() -> None:
    with pytest.raises(CodecError, match="not valid cbor: 2 bytes follow the value"):
        codec.decode(codec.encode([1], "cbor") + b"\x01\x02")


def test_component_codecs() -> None:
    assert codec.component_codec("cbor") is codec.PURE_CBOR
    assert codec.component_codec(codec.CBOR) is codec.PURE_CBOR
    assert codec.component_codec("raw") is codec.RAW
    assert codec.component_codec("msgpack") is codec.MSGPACK
    json_ = codec.component_codec("json")
    assert (json_.name, json_.prefix) == ("json", codec.JSON.prefix)
    with pytest.raises(CodecError, match="unknown codec 'yaml'"):
        codec.component_codec("yaml")


def test_component_json_refuses_deep_nesting_before_parsing() -> None:
    json_ = codec.component_codec("json")
    assert codec.decode_with(json_, b"[" * 400 + b"]" * 400) is not None
    for body in (b"[" * 401 + b"]" * 401, b'{"a":' * 401 + b"1" + b"}" * 401, b"[" * 100_000):
        with pytest.raises(CodecError, match="not valid json here: nested deeper than 400"):
            codec.decode_with(json_, body)
    # brackets inside strings do not nest, escaped quotes included
    text = json.dumps(["[" * 1000, '\\"{' * 500, {"k": "]" * 10}]).encode()
    assert codec.decode_with(json_, text) == ["[" * 1000, '\\"{' * 500, {"k": "]" * 10}]
    utf16 = json.dumps([[["x"]] * 300]).encode("utf-16")  # json reads UTF-16 too
    assert codec.decode_with(json_, utf16) == [[["x"]] * 300]


def test_an_empty_error_message_still_says_what_failed() -> None:
    def loads(body: bytes) -> object:
        raise RecursionError

    odd = codec.Codec("odd", 0x300, b"", lambda v: b"", loads)
    with pytest.raises(CodecError, match="not valid odd: RecursionError"):
        codec.decode_with(odd, b"x")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json_values)
def test_components_json_writes_what_the_hosts_json_writes(value: object) -> None:
    component = codec.component_codec("json")
    assert component.dumps(value) == codec.JSON.dumps(value)
    assert codec.decode_with(component, component.dumps(value)) == value


@given(st.binary(max_size=64) | st.text(max_size=32).map(str.encode))
def test_components_json_reads_what_the_hosts_json_reads(body: bytes) -> None:
    component = codec.component_codec("json")
    for text in (body, b" " + body + b"\n", b"\xef\xbb\xbf" + body):
        try:
            expected = ("ok", codec.decode_with(codec.JSON, text))
        except CodecError:
            expected = ("error", None)
        try:
            got = ("ok", codec.decode_with(component, text))
        except CodecError:
            got = ("error", None)
        assert got[0] == expected[0], text
        if got[0] == "ok":
            assert repr(got[1]) == repr(expected[1])  # repr: NaN is not equal to itself
