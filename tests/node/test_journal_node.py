"""A durable counter on a real node (``airssys serve`` in a subprocess), counted by a
client of the test's own, through four events that used to lose acknowledged messages:
sends acknowledged while the component replays, then SIGKILL; a byte flipped mid-journal;
a full disk (a real tmpfs); a second node on the same data directory."""

from __future__ import annotations

import base64
import signal
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airssys.durability import journal_path
from airssys.durability._journal import scan
from airssys.errors import AirssysError
from airssys.node import ControlClient
from tests import tmpfs
from tests.conftest import fixture_path
from tests.node.conftest import NodeProcess, cli

NAME = "durable"
ADDRESS = "/app/counter"


def deployment(where: Path, data: Path | None = None, run: str = "run") -> Path:
    """The counter, durable, under a supervisor with the default restart limits."""
    path = where / f"deployment-{run}.toml"
    path.write_text(
        f'[node]\nname = "{NAME}"\nrun-dir = "{where / run}"\n'
        f'data-dir = "{data or where / "data"}"\nstorage = "memory"\nshutdown-timeout = 30\n\n'
        '[[supervisor]]\nname = "app"\n\n'
        '[[supervisor.component]]\nid = "counter"\n'
        f'manifest = "{fixture_path("counter")}"\nmailbox = 100000\n'
        'durability = { journal = true, fsync = "batch" }\n'
    )
    return path


def total(node: NodeProcess) -> int:
    """The counter's count after one more message (it replies with its count)."""
    reply = node.request("ask", address=ADDRESS, message="1")
    data = base64.b64decode(reply["value"]["$bytes"])
    if reply["codec"] == "raw":  # a count whose low byte is 0x55 reads as a raw message
        data = b"\x55" + data
    else:
        assert reply["codec"] is None, reply
    (value,) = struct.unpack("<I", data)
    return int(value)


def serve(path: Path, where: Path, run: str = "run", prelude: str | None = None) -> NodeProcess:
    return NodeProcess(path, where / run, None, prelude=prelude)


def test_sends_acknowledged_while_it_replays_survive_a_sigkill(tmp_path: Path) -> None:
    path = deployment(tmp_path)
    marker = tmp_path / "replaying"
    # the node's own code, with the replay held until the test has sent (and been
    # acknowledged) while it runs: the window a long journal opens at every start
    prelude = (
        "import pathlib, time\n"
        "from airssys.durability import Durable\n"
        "_replay = Durable.replay\n"
        "def _held(self, instance):\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n"
        "    time.sleep(3600)\n"
        "    return _replay(self, instance)\n"
        "Durable.replay = _held\n"
    )
    node = serve(path, tmp_path, prelude=prelude)
    acknowledged = 0
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert node.proc.poll() is None, node.stderr[-3000:]
            assert time.monotonic() < deadline, "the replay never started"
            time.sleep(0.02)
        with ControlClient(node.socket, timeout=30) as client:
            for _ in range(50):
                answer = client.request("send", address=ADDRESS, message="1")
                assert answer["queued"] is True
                acknowledged += 1
        node.proc.send_signal(signal.SIGKILL)
        assert node.stop() == -signal.SIGKILL
    finally:
        node.stop()
    assert acknowledged == 50

    again = serve(path, tmp_path)
    try:
        again.wait_ready()
        assert total(again) == acknowledged + 1  # every acknowledged send, once
    finally:
        again.stop()


def test_a_flipped_byte_stops_the_start_and_repair_names_what_was_lost(tmp_path: Path) -> None:
    path = deployment(tmp_path)
    node = serve(path, tmp_path)
    try:
        node.wait_ready()
        for n in range(1, 201):
            assert total(node) == n
        assert node.stop() == 0
    finally:
        node.stop()
    journal = journal_path(tmp_path / "data", NAME, ADDRESS)
    data = bytearray(journal.read_bytes())
    middle = next(
        r for r in scan(bytes(data)).records if r.kind == "B" and r.offset > len(data) // 2
    )
    data[middle.offset + 10] ^= 0xFF
    journal.write_bytes(bytes(data))

    refused = serve(path, tmp_path)
    try:
        with pytest.raises(AssertionError) as failed:
            refused.wait_ready()
        assert refused.proc.returncode not in (None, 0)
    finally:
        refused.stop()
    told = str(failed.value)
    assert str(journal) in told and f"offset {middle.offset}" in told
    assert "airssys journal check" in told

    checked = cli(
        "journal", "check", ADDRESS, "--data-dir", str(tmp_path / "data"), "--system", NAME
    )
    assert checked.returncode == 1 and "DAMAGED" in checked.stdout
    repaired = cli("journal", "repair", str(journal))
    assert repaired.returncode == 0, repaired.stderr
    lost_seq = middle.value.rows[0][0]  # an ask's batch: it was accepted in that record
    assert f"messages lost (never handled again): {lost_seq}\n" in repaired.stdout
    assert cli("journal", "check", str(journal)).returncode == 0

    again = serve(path, tmp_path)
    try:
        again.wait_ready()
        assert total(again) == 200  # 199 kept, then this one
    finally:
        again.stop()


def test_a_second_node_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    first = serve(deployment(tmp_path, run="run-a"), tmp_path, "run-a")
    second_path = deployment(tmp_path, run="run-b")  # another run dir, the same data dir
    try:
        first.wait_ready()
        assert total(first) == 1
        second = serve(second_path, tmp_path, "run-b")
        try:
            with pytest.raises(AssertionError) as failed:
                second.wait_ready()
        finally:
            second.stop()
        told = str(failed.value)
        assert f"pid {first.proc.pid}" in told
        assert f"another system named '{NAME}'" in told and str(tmp_path / "data") in told
        assert total(first) == 2  # the first node went on serving
    finally:
        first.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs.small_disk(tmp_path, "4m") as where:
        yield where


def test_a_full_disk_loses_no_acknowledged_send(tmp_path: Path, small_disk: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (2 << 20))
    path = deployment(tmp_path, data=small_disk / "data")
    node = serve(path, tmp_path)
    acknowledged = refused = 0
    payload = "x" * 4000
    try:
        node.wait_ready()
        with ControlClient(node.socket, timeout=30) as client:
            while refused < 20:
                try:
                    client.request("send", address=ADDRESS, message=payload)
                    acknowledged += 1
                except AirssysError as exc:
                    assert "No space left" in str(exc) or "takes no more writes" in str(exc)
                    refused += 1
                assert acknowledged < 5000, "the disk never filled"
            filler.unlink()  # room again
            sent_after = 0
            deadline = time.monotonic() + 120
            while sent_after < 100:
                assert time.monotonic() < deadline, "sends were refused after space came back"
                try:
                    client.request("send", address=ADDRESS, message=payload)
                    acknowledged += 1
                    sent_after += 1
                except AirssysError:
                    time.sleep(0.05)  # the component restarts once space is back
        node.proc.send_signal(signal.SIGKILL)
        node.stop()
    finally:
        node.stop()

    again = serve(path, tmp_path)
    try:
        again.wait_ready()
        assert total(again) == acknowledged + 1
    finally:
        again.stop()
