"""Payloads a Python component cannot decode fail that message only; CBOR works inside.

The same cases run through MockHost and through the built counter component, so
the mock answers exactly as the real component does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airssys import codec, open_system, sdk
from airssys.errors import CodecError, HandlerError
from airssys.testing import MockHost
from tests.conftest import ROOT

COMPONENTS = ROOT / "components"

# (payload to the counter, expected codec of the reply, the reply or the HandlerError)
CASES: list[tuple[bytes, str | None, Any]] = [
    (codec.encode({"add": 1}), "json", {"count": 1}),
    (codec.JSON.prefix + b'{"add": 1', None, "payload is not valid json: Expecting"),
    (codec.encode({"add": 2}, "cbor"), "cbor", {"count": 3}),
    (codec.encode({"add": 2}, "cbor")[:-1], None, "payload is not valid cbor: needs 1 more"),
    (codec.encode({"add": 2}, "cbor") + b"\x00", None, "cbor: 1 bytes follow the value"),
    (codec.CBOR.prefix + bytes.fromhex("c11a514b67b0"), None, "tag 1 is not supported here"),
    (codec.JSON.prefix + b"[" * 100_000, None, "json here: nested deeper than 400 levels"),
    (codec.JSON.prefix + b'{"add": 1} x', None, "payload is not valid json: Extra data"),
    (codec.MSGPACK.prefix + b"\xdc\xff", None, "payload is not valid messagepack"),
    (codec.encode({"add": 1}, "messagepack"), "messagepack", {"count": 4}),
    (codec.encode({"add": 2**70}, "cbor"), "cbor", {"count": 2**70 + 4}),  # a bignum
    (codec.encode({"add": 1}), "json", {"count": 2**70 + 5}),
]


def _outcome(reply: bytes | None) -> tuple[str | None, Any]:
    assert reply is not None
    return codec.codec_of(reply).name, codec.decode(reply)


def test_mock_host_counter_keeps_its_state_across_undecodable_payloads() -> None:
    with MockHost.load(COMPONENTS / "counter" / "app.py") as host:
        for payload, codec_name, expected in CASES:
            if codec_name is None:
                with pytest.raises(HandlerError, match=re.escape(expected)):
                    host.deliver_payload(payload)
            else:  # the SDK's own dispatch shows the reply's codec
                assert _outcome(sdk.dispatch_message("/t", payload)) == (codec_name, expected)


def test_mock_host_refuses_an_unknown_prefix_as_that_message_only() -> None:
    with MockHost.load(COMPONENTS / "counter" / "app.py") as host:
        with pytest.raises(HandlerError, match="unknown multicodec prefix 0x70"):
            host.deliver_payload(b"\x70{}")
        assert host.deliver({}) == {"count": 1}


def test_payload_error_is_a_reject_and_a_codec_error() -> None:
    message = sdk.Message("/t", codec.JSON.prefix + b"{")
    with pytest.raises(sdk.PayloadError) as info:
        _ = message.value
    assert isinstance(info.value, sdk.Reject)
    assert isinstance(info.value, CodecError)
    assert message.codec is codec.JSON  # the prefix was read


def test_replies_and_sends_use_the_components_cbor(tmp_path: Path) -> None:
    with MockHost.load(COMPONENTS / "echo" / "app.py") as host:
        value = {"n": -(2**80), "b": b"\x00\xff", "f": [1.5, float("inf")], "t": (1, 2)}
        assert host.deliver(value, codec_name="cbor") == {**value, "t": [1, 2]}
    app = tmp_path / "app.py"
    app.write_text(
        "from airssys.sdk import Reply, on_message, send\n"
        "@on_message\n"
        "def handle(message):\n"
        "    send('/out', {'v': 2**70}, codec='cbor')\n"
        "    return Reply({1} if message.value == 'set' else 'ok', 'cbor')\n"
    )
    with MockHost.load(app) as host:
        assert host.deliver("x") == "ok"
        assert host.sent[-1].value == {"v": 2**70}
        # cbor2 would write a set (tag 258); a component's CBOR cannot, and says so
        with pytest.raises(HandlerError, match="cannot encode set as cbor here"):
            host.deliver("set")


def test_an_undecodable_reply_reaches_the_callback_as_an_error() -> None:
    with MockHost.load(COMPONENTS / "aggregator" / "app.py") as host:
        host.deliver({"ask": ["/a"], "value": 1}, sender="/me")
        (asked,) = host.requests()
        sdk.dispatch_callback(asked.correlation_id or "", codec.JSON.prefix + b"{broken")
        (result,) = [s for s in host.sent if s.kind == "send"]
        error = result.value["results"]["/a"]["error"]
        assert error.startswith("the reply cannot be decoded: payload is not valid json")


@pytest.mark.timeout(600)
async def test_built_counter_keeps_its_state_and_reads_cbor(
    built_components: Path, shared_cache: Path
) -> None:
    async with open_system(cache_dir=shared_cache) as system:
        await system.spawn_supervisor(
            [system.component_spec("counter", built_components / "counter")], name="sup"
        )
        for payload, codec_name, expected in CASES:
            if codec_name is None:
                with pytest.raises(HandlerError, match=re.escape(expected)):
                    await system.ask("/sup/counter", payload, timeout=10)
            else:
                reply = await system.ask("/sup/counter", payload, timeout=10)
                assert _outcome(reply) == (codec_name, expected)
        assert system.ref("/sup/counter").restarts == 0


@pytest.mark.timeout(600)
async def test_built_echo_carries_cbor_both_ways(
    built_components: Path, shared_cache: Path
) -> None:
    value = {"big": 2**100, "neg": -(2**70), "bytes": b"\x00", "nan": [None, True, -0.0, "é"]}
    async with open_system(cache_dir=shared_cache) as system:
        await system.spawn_supervisor(
            [system.component_spec("echo", built_components / "echo")], name="sup"
        )
        reply = await system.ask("/sup/echo", codec.encode(value, "cbor"), timeout=10)
        assert codec.codec_of(reply) is codec.CBOR
        assert codec.decode(reply) == value
