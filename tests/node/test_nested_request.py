"""A control request whose message nests too deep is the client's error (a
ProtocolError), never the node's (an InternalError)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airssys.node import ControlError
from airssys.node._protocol import MAX_DEPTH, ProtocolError, parse_request
from tests.conftest import fixture_path

DEEP = "[" * 100_000 + "]" * 100_000


def ask(message: str, codec: str = "json") -> str:
    return json.dumps({"op": "ask", "address": "/app/echo", "message": message, "codec": codec})


@pytest.mark.parametrize(
    "message",
    [
        DEEP,
        "[" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    ],
)
def test_a_message_nested_too_deep_is_a_protocol_error(message: str) -> None:
    with pytest.raises(ProtocolError, match=f"nested more than {MAX_DEPTH}"):
        parse_request(ask(message))


def test_messages_within_the_depth_pass_and_raw_text_is_not_read() -> None:
    shallow = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_request(ask(shallow)).args["message"] == shallow
    assert parse_request(ask("not json [[[")).args["message"] == "not json [[["
    assert parse_request(ask(DEEP, codec="raw")).args["codec"] == "raw"


@pytest.mark.timeout(240)  # a node in a subprocess
def test_a_node_answers_a_deep_message_with_a_protocol_error(start_node: Any) -> None:
    node = start_node(
        body='[[supervisor]]\nname = "app"\n\n'
        f'[[supervisor.component]]\nid = "echo"\nmanifest = "{fixture_path("echo")}"\n',
        metrics=False,
    )
    for op in ("ask", "send"):
        with pytest.raises(ControlError) as caught:
            node.request(op, address="/app/echo", message=DEEP)
        assert caught.value.kind == "ProtocolError", caught.value
    # the connection and the node are fine afterwards
    assert node.request("ping")["ready"] is True
    assert "InternalError" not in node.stderr and "control request failed" not in node.stderr
