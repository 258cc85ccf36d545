"""Multicodec payloads: round trips, prefixes, and the errors that name them."""

from __future__ import annotations

import pytest
from hypothesis import given
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
