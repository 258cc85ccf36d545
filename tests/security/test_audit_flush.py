"""The audit log loses nothing a kill can save: held denials are summarised by a
timer, and the file is its owner's alone."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from airssys.errors import AuditLogError
from airssys.security import DENY, AuditLog
from tests.waiting import poll

# a flood of 1,500 denials from one component (100 recorded one by one, the rest held),
# then nothing: the process waits to be killed
_FLOOD = """
import sys, time
from airssys.security import AuditLog
log = AuditLog(path=sys.argv[1])
for i in range(1500):
    log.record("/app/x", "send", f"/other/{i}", "deny", "capability denied")
print("flooded", flush=True)
time.sleep(3600)
"""


def counted(path: Path) -> int:
    """Denials the file accounts for: records plus summary counts."""
    total = 0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["decision"] == "deny":
            total += int(record["count"])
    return total


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.timeout(120)
def test_a_sigkill_after_a_flood_loses_no_denial(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", _FLOOD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "flooded"
        # the summary comes by itself: no record, flush or close follows the flood
        poll(lambda: counted(path) == 1500, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert counted(path) == 1500
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sum(r["count"] == 1 for r in records) == 100  # the burst, one by one


def test_an_idle_ring_catches_up_with_its_count() -> None:
    log = AuditLog()
    try:
        for i in range(150):
            log.record("/app/x", "network", f"https://h{i}.example", DENY, "capability denied")
        poll(lambda: sum(r.count for r in log.query(decision=DENY)) == 150, timeout=60)
        assert log.denials("/app/x") == 150
    finally:
        log.close()


def test_the_timer_summarises_by_the_logs_own_clock() -> None:
    clock = FakeClock()
    log = AuditLog(burst=1, clock=clock)
    try:
        for _ in range(5):
            log.record("a", "send", "/x", DENY)
        assert [r.count for r in log.query()] == [1]  # held, and not due by this clock
        clock.now += 0.5
        poll(lambda: [r.count for r in log.query()] == [1, 4], timeout=60)
        log.record("a", "send", "/x", DENY)  # the window goes on: held again
        clock.now += 0.5
        poll(lambda: [r.count for r in log.query()] == [1, 4, 1], timeout=60)
    finally:
        log.close()


def test_the_timer_ends_with_the_log() -> None:
    before = set(threading.enumerate())
    log = AuditLog(burst=1)
    log.record("a", "send", "/x", DENY)
    log.record("a", "send", "/x", DENY)  # held: the timer starts
    [timer] = [t for t in set(threading.enumerate()) - before if t.name == "airssys-audit-flush"]
    log.close()
    assert not timer.is_alive()
    assert sum(r.count for r in log.query()) == 2


def test_an_existing_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)
    with AuditLog(path=path) as log:
        log.record("a", "send", "/x", DENY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert counted(path) == 1


def test_a_link_or_a_fifo_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(AuditLogError, match="symbolic link"):
        AuditLog(path=link)
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    with pytest.raises(AuditLogError, match="not a regular file"):
        AuditLog(path=fifo)
    assert isinstance(AuditLogError("x"), PermissionError)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_another_users_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    os.chown(path, 65534, 65534)
    with pytest.raises(AuditLogError, match="another user"):
        AuditLog(path=path)


def test_flush_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="flush_after"):
        AuditLog(flush_after=0)
