"""A durable counter on a node that is killed (SIGKILL) mid-load and started again:
its state equals the number of accepted messages, none applied twice."""

from __future__ import annotations

import base64
import signal
import struct
import threading
from pathlib import Path

from airssys.durability import Journal, journal_path
from airssys.errors import AirssysError
from airssys.node import ControlClient
from tests.conftest import fixture_path
from tests.node.conftest import NodeProcess


def deployment(where: Path) -> Path:
    path = where / "deployment.toml"
    path.write_text(
        f'[node]\nname = "durable"\nrun-dir = "{where / "run"}"\n'
        f'data-dir = "{where / "data"}"\nstorage = "memory"\nshutdown-timeout = 30\n\n'
        '[[supervisor]]\nname = "app"\n\n'
        '[[supervisor.component]]\nid = "counter"\n'
        f'manifest = "{fixture_path("counter")}"\nmailbox = 100000\n'
        'durability = { journal = true, fsync = "batch" }\n'
    )
    return path


def test_sigkill_mid_load_loses_no_accepted_message_and_applies_none_twice(
    tmp_path: Path,
) -> None:
    path = deployment(tmp_path)
    node = NodeProcess(path, tmp_path / "run", None)
    acked = 0
    enough = threading.Event()

    def load() -> None:
        nonlocal acked
        try:
            with ControlClient(node.socket, timeout=30).connect() as client:
                while True:
                    client.request("send", address="/app/counter", message="1")
                    acked += 1  # accepted: journaled, then queued
                    if acked == 500:
                        enough.set()
        except (AirssysError, OSError):  # NodeNotRunning, ControlError, a closed socket
            enough.set()  # the node is gone: the load ends

    try:
        node.wait_ready()
        sender = threading.Thread(target=load)
        sender.start()
        assert enough.wait(120)
        node.proc.send_signal(signal.SIGKILL)
        sender.join(60)
        assert node.stop() == -signal.SIGKILL
    finally:
        node.stop()
    assert acked >= 500

    again = NodeProcess(path, tmp_path / "run", None)
    try:
        again.wait_ready()
        reply = again.request("ask", address="/app/counter", message="1")
        (total,) = struct.unpack("<I", base64.b64decode(reply["value"]["$bytes"]))
        assert again.stop() == 0
    finally:
        again.stop()
    # every acknowledged send counted once; at most the one in flight at the kill
    # (accepted, its acknowledgement lost with the process) on top
    assert acked <= total - 1 <= acked + 1
    journal = Journal(journal_path(tmp_path / "data", "durable", "/app/counter"))
    try:
        handled = list(journal.handled())
        assert journal.pending() == []
        assert len(handled) == total  # one journal entry per count: none applied twice
        assert [e.seq for e in handled] == sorted({e.seq for e in handled})
        assert all(e.outcome == "ok" for e in handled)
    finally:
        journal.close()
