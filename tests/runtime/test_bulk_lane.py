"""The bulk lane: payloads and replies as one copy each; the list ceiling enforced."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys.errors import PayloadTooLarge, ReplyTooLarge
from airssys.runtime import LIST_PAYLOAD_MAX, Limits, Runtime, bytes_from_lane, lane_from_bytes
from tests.conftest import fixture_path

MiB = 1024 * 1024


@given(st.binary(max_size=4096))
def test_the_lane_encoding_round_trips_any_bytes(data: bytes) -> None:
    lane = lane_from_bytes(data)
    assert lane.isascii()
    assert bytes_from_lane(lane) == data


@pytest.mark.parametrize("bad", [b"", b"q123", b"xzz", b"x1", "a\u00e9".encode()])
def test_a_malformed_lane_string_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="bulk lane"):
        bytes_from_lane(bad)


def test_a_component_exporting_the_lane_is_called_through_it(runtime: Runtime) -> None:
    with runtime.instantiate(runtime.load(fixture_path("echo-bulk"))) as bulk:
        assert bulk.lane == "bulk"
    with runtime.instantiate(runtime.load(fixture_path("echo"))) as plain:
        assert plain.lane == "list"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(max_size=4096), sender=st.sampled_from(["me", "none", "err:no ✗"]))
def test_fast_bulk_path_matches_the_public_api_and_the_list_lane(
    runtime: Runtime, payload: bytes, sender: str
) -> None:
    bulk = runtime.load(fixture_path("echo-bulk"))
    plain = runtime.load(fixture_path("echo"))
    with (
        runtime.instantiate(bulk) as fast,
        runtime.instantiate(bulk, fast_path=False) as public,
        runtime.instantiate(plain) as listed,
    ):
        expected = listed.handle_message_raw(sender, payload)
        assert fast.handle_message_raw(sender, payload) == expected
        assert public.handle_message_raw(sender, payload) == expected


@pytest.mark.parametrize("size", [MiB, 16 * MiB])
def test_sixteen_mib_go_both_ways_under_default_limits(runtime: Runtime, size: int) -> None:
    payload = os.urandom(size)  # binary: the hex form, twice the size, crosses
    with runtime.instantiate(runtime.load(fixture_path("echo-bulk"))) as instance:
        assert instance.limits == Limits()
        assert instance.handle_message("me", payload) == payload
        text = b"\x55" + b"t" * (size - 1)
        assert instance.handle_message("me", text) == text
        assert instance.alive


def test_the_list_ceiling_is_refused_before_the_call(runtime: Runtime) -> None:
    with runtime.instantiate(runtime.load(fixture_path("echo"))) as instance:
        with pytest.raises(PayloadTooLarge, match=str(LIST_PAYLOAD_MAX)):
            instance.handle_message("me", bytes(LIST_PAYLOAD_MAX + 1))
        assert instance.alive
        assert instance.calls == 0


def test_a_reply_past_the_list_ceiling_is_named_as_such(runtime: Runtime) -> None:
    with runtime.instantiate(runtime.load(fixture_path("big-reply"))) as instance:
        ask = b"\x55" + struct.pack("<I", 1000)
        assert instance.handle_message("me", ask) == bytes(1000)
        with pytest.raises(ReplyTooLarge, match="bulk lane") as caught:
            instance.handle_message("me", b"\x55" + struct.pack("<I", LIST_PAYLOAD_MAX + 100))
        assert isinstance(caught.value, PayloadTooLarge)
        assert not instance.alive
