"""The SDK's side of the bulk lane: the "a", "u" and "x" forms in, the shortest form out."""

from __future__ import annotations

import pytest

from airssys import codec, sdk
from airssys.runtime import bytes_from_lane, lane_from_bytes
from airssys.sdk import PayloadError
from airssys.testing import MockHost
from tests.conftest import ROOT

ECHO = ROOT / "components" / "echo" / "app.py"


@pytest.mark.parametrize(
    "value", [{"name": "Ada"}, {"text": "\u00e9t\u00e9 \u2603"}, [1, 2, 3], "plain"]
)
@pytest.mark.parametrize("host_form", ["u", "x"])
def test_json_arrives_in_either_form_and_leaves_as_text(value: object, host_form: str) -> None:
    payload = codec.encode(value)
    lane = lane_from_bytes(payload, text=host_form == "u")
    assert lane[:1].decode() == host_form
    with MockHost.load(ECHO):
        reply = sdk.dispatch_bulk("/t", lane.decode("utf-8"))
    assert reply is not None and reply.startswith("u8004:")  # JSON: prefix, then text
    assert codec.decode(bytes_from_lane(reply.encode("utf-8"))) == value


def test_ascii_and_binary_replies_take_the_a_and_x_forms() -> None:
    with MockHost.load(ECHO):
        text = sdk.dispatch_bulk("/t", "aU" + "hello")  # raw codec 0x55: ASCII
        binary = sdk.dispatch_bulk("/t", lane_from_bytes(b"\x55\xff\x00").decode())
    assert text == "aUhello"
    assert binary == "x55ff00"


@pytest.mark.parametrize("bad", ["q", "u8004", "uzz:{}", "xz"])
def test_a_malformed_lane_is_a_payload_error_naming_the_forms(bad: str) -> None:
    with MockHost.load(ECHO), pytest.raises(PayloadError, match="'u' \\+ prefix hex"):
        sdk.dispatch_bulk("/t", bad)
