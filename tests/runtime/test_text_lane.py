"""The bulk lane's text form ("u"): JSON and text cross without hex, for components that
export ``bulk-text``; components exporting the older ``bulk`` never see it."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys.runtime import Limits, Runtime, bytes_from_lane, lane_from_bytes
from tests.conftest import fixture_path

MiB = 1024 * 1024
JSON = b"\x80\x04"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


prefixed_text = st.builds(
    lambda code, text: _varint(code) + text.encode("utf-8"),
    st.integers(min_value=0, max_value=2**40),
    st.text(max_size=200),
)


@settings(deadline=None)  # a loaded machine: no per-example time limit
@given(st.one_of(st.binary(max_size=4096), prefixed_text))
def test_the_text_form_round_trips_any_bytes(data: bytes) -> None:
    lane = lane_from_bytes(data, text=True)
    lane.decode("utf-8")  # a string wasmtime can lower: valid UTF-8 always
    assert bytes_from_lane(lane) == data


@settings(deadline=None)
@given(st.one_of(st.binary(max_size=512), prefixed_text))
def test_without_the_text_form_the_lane_stays_ascii(data: bytes) -> None:
    lane = lane_from_bytes(data)
    assert lane.isascii() and not lane.startswith(b"u")


@pytest.mark.parametrize(
    ("payload", "lane"),
    [
        (JSON + b'{"name": "Ada"}', b'u8004:{"name": "Ada"}'),
        (JSON + '"\u00e9t\u00e9 \u2603"'.encode(), b"u8004:" + '"\u00e9t\u00e9 \u2603"'.encode()),
        (b"\x55plain", b"aU" + b"plain"),
        (JSON + b"\xff\xfe", b"x8004fffe"),  # not UTF-8 after the prefix: hex
    ],
)
def test_json_and_text_take_the_text_form(payload: bytes, lane: bytes) -> None:
    assert lane_from_bytes(payload, text=True) == lane


@pytest.mark.parametrize("bad", [b"u8004", b"uzz:{}", b"u8:{}", b"u" + b"80" * 20 + b":x"])
def test_a_malformed_text_form_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="'u', the hex digits"):
        bytes_from_lane(bad)


def test_bulk_text_is_preferred_and_bulk_keeps_its_two_forms(runtime: Runtime) -> None:
    with runtime.instantiate(runtime.load(fixture_path("echo-text"))) as text:
        assert (text.lane, text.text_form) == ("bulk", True)
    with runtime.instantiate(runtime.load(fixture_path("echo-bulk"))) as bulk:
        assert (bulk.lane, bulk.text_form) == ("bulk", False)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.one_of(st.binary(max_size=2048), prefixed_text),
    sender=st.sampled_from(["me", "none", "err:no \u2717"]),
)
def test_fast_text_path_matches_the_public_api_and_the_list_lane(
    runtime: Runtime, payload: bytes, sender: str
) -> None:
    text = runtime.load(fixture_path("echo-text"))
    plain = runtime.load(fixture_path("echo"))
    with (
        runtime.instantiate(text) as fast,
        runtime.instantiate(text, fast_path=False) as public,
        runtime.instantiate(plain) as listed,
    ):
        assert fast.uses_fast_path and not public.uses_fast_path
        expected = listed.handle_message_raw(sender, payload)
        assert fast.handle_message_raw(sender, payload) == expected
        assert public.handle_message_raw(sender, payload) == expected


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_reply_may_be_the_bytes_themselves(runtime: Runtime, fast_path: bool) -> None:
    """reply.bytes: the fixture answers a "bytes" sender with the lane string's bytes."""
    component = runtime.load(fixture_path("echo-text"))
    with runtime.instantiate(component, fast_path=fast_path) as instance:
        assert instance.handle_message("bytes", JSON + b"[1]") == b"u8004:[1]"
        assert instance.handle_message("bytes", b"\x00\xff") == b"x00ff"
        assert instance.handle_message("bytes", b"") == b"a"


def test_sixteen_mib_of_json_cross_as_text_under_default_limits(runtime: Runtime) -> None:
    body = json.dumps({"text": "\u00e9" * (8 * MiB - 16)}, ensure_ascii=False).encode()
    payload = JSON + body
    assert len(payload) <= 16 * MiB
    with runtime.instantiate(runtime.load(fixture_path("echo-text"))) as instance:
        assert instance.limits == Limits()
        assert instance.handle_message("me", payload) == payload
        assert instance.alive
