"""SIGKILL of a node: the survivor notices, the ask in flight fails with a typed
error naming the dead node, the placed supervisor starts on the survivor, and a
durable component there resumes from the shared journal."""

from __future__ import annotations

import base64
import signal
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from airssys.errors import AirssysError
from airssys.node import ControlError
from tests.cluster.conftest import NatsServer
from tests.cluster.test_nodes import DURABLE, component, start_nodes, where
from tests.waiting import poll

pytestmark = pytest.mark.timeout(120)

WORK = component("work", "spin", "spin", sup_extra='node = ["q", "p"]') + (
    f'\n[[supervisor.component]]\nid = "counter"\n'
    f'manifest = "{Path(__file__).resolve().parents[2] / "components/fixtures/counter.wat"}"\n'
    f"{DURABLE}\n"
)


def test_sigkill_moves_the_placed_supervisor_to_the_survivor(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nodes = start_nodes(
        tmp_path, nats_server.url, {"p": WORK, "q": WORK}, data_dir=tmp_path / "data"
    )
    p, q = nodes["p"], nodes["q"]
    try:
        poll(lambda: where(p, "/work/counter") == ["q"])
        for _ in range(5):
            p.request("send", address="/work/counter", message="1")
        reply = p.request("ask", address="/work/counter", message="1")
        assert struct.unpack("<I", base64.b64decode(reply["value"]["$bytes"])) == (6,)

        outcome: list[Any] = []

        def in_flight() -> None:
            try:
                outcome.append(p.request("ask", address="/work/spin", message="1", timeout=30))
            except (AirssysError, OSError) as exc:
                outcome.append(exc)

        asker = threading.Thread(target=in_flight)
        asker.start()
        poll(
            lambda: any(
                a["address"] == "/work/spin" and a["in_hand"] for a in q.request("status")["actors"]
            )
        )
        q.proc.send_signal(signal.SIGKILL)
        asker.join(60)
        assert q.stop() == -signal.SIGKILL
        (error,) = outcome
        assert isinstance(error, ControlError) and error.kind == "ActorDeadError", error
        assert "'q'" in str(error)

        # p takes the supervisor over and serves its addresses
        poll(lambda: where(p, "/work/counter") == ["p"], timeout=30)

        def counted() -> int | None:
            try:
                reply = p.request("ask", address="/work/counter", message="1")
            except AirssysError:
                return None
            return int(struct.unpack("<I", base64.b64decode(reply["value"]["$bytes"]))[0])

        # the durable counter resumed from the shared journal: 6 before, this is the 7th
        assert poll(counted, timeout=30) == 7
    finally:
        for node in nodes.values():
            node.stop()
