"""Journals at their worst case: damage mid-file, a torn tail, a failed write (injected,
and a real full disk on tmpfs), a second writer, and repair."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from airssys.durability import (
    Journal,
    JournalCorrupt,
    JournalError,
    JournalLocked,
    check_journal,
    inspect_journal,
    repair_journal,
)
from airssys.durability._journal import Handled, scan
from tests import tmpfs
from tests.conftest import ROOT

EFFECTS = bytes(32)


def filled(path: Path, messages: int = 40) -> Path:
    """A journal of ``messages`` messages, each accepted and then handled."""
    journal = Journal(path)
    for n in range(1, messages + 1):
        seq = journal.accept("/a", "message", f"message {n}".encode())
        journal.record([Handled(seq, "ok", f"reply {n}".encode(), b"", EFFECTS)])
    journal.close()
    return path


def accepted_record_of(path: Path, seq: int) -> tuple[int, int]:
    """(offset, size) of message ``seq``'s accepted record."""
    for record in scan(path.read_bytes()).records:
        if record.kind == "A" and record.value[0] == seq:
            return record.offset, record.end - record.offset
    raise AssertionError(f"no accepted record for {seq}")


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_bad_record_mid_file_refuses_to_open_and_cuts_nothing(tmp_path: Path) -> None:
    path = filled(tmp_path / "j.journal")
    offset, size = accepted_record_of(path, 20)
    flip(path, offset + size // 2)  # inside message 20's accepted record
    before = path.read_bytes()
    with pytest.raises(JournalCorrupt) as raised:
        Journal(path)
    message = str(raised.value)
    assert str(path) in message
    assert f"offset {offset}" in message
    assert "41 whole records after them" in message  # 20's handled record, then 21..40
    assert "airssys journal check" in message and "airssys journal repair" in message
    assert path.read_bytes() == before  # nothing was cut off
    Journal(tmp_path / "other.journal").close()  # its lock was released: others unaffected
    with pytest.raises(JournalCorrupt, match="damaged"):
        Journal(path)  # still refused (its lock was released too)


def test_a_damaged_length_is_damage_too_not_a_tail(tmp_path: Path) -> None:
    path = filled(tmp_path / "j.journal")
    offset, _ = accepted_record_of(path, 10)
    data = bytearray(path.read_bytes())
    data[offset : offset + 4] = (0x7FFFFFF0).to_bytes(4, "big")  # points past the end
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match=f"offset {offset}"):
        Journal(path)


def test_a_torn_tail_is_cut_and_logged_with_its_offset_and_size(tmp_path: Path) -> None:
    path = filled(tmp_path / "j.journal", messages=3)
    whole = path.stat().st_size
    with open(path, "ab") as file:
        file.write(b"\x00\x00\x01\x00A\x01\x02")  # a record cut short by a kill
    with capture_logs() as logs:
        journal = Journal(path)
    journal.close()
    assert path.stat().st_size == whole
    cut = [entry for entry in logs if "torn" in entry["event"]]
    assert len(cut) == 1
    assert (cut[0]["offset"], cut[0]["size"], cut[0]["journal"]) == (whole, 7, str(path))


def test_check_and_inspect_show_the_damage_without_changing_the_file(tmp_path: Path) -> None:
    path = filled(tmp_path / "j.journal", messages=10)
    assert check_journal(path).ok
    offset, size = accepted_record_of(path, 4)
    flip(path, offset + size - 2)
    before = path.read_bytes()
    report = check_journal(path)
    assert not report.ok
    assert [(d.offset, d.size) for d in report.damaged] == [(offset, size)]
    assert report.handled == 10 and report.accepted == 9
    listed = inspect_journal(path)
    assert [(r.kind, r.seqs) for r in listed][:6] == [
        ("accepted", (1,)),
        ("handled", (1,)),
        ("accepted", (2,)),
        ("handled", (2,)),
        ("accepted", (3,)),
        ("handled", (3,)),
    ]
    assert ("handled", (4,)) in [(r.kind, r.seqs) for r in listed]
    assert ("accepted", (4,)) not in [(r.kind, r.seqs) for r in listed]
    assert path.read_bytes() == before


def test_repair_keeps_every_whole_record_and_names_what_was_lost(tmp_path: Path) -> None:
    path = filled(tmp_path / "j.journal")
    # an accepted record and, further on, a handled one
    offset, _ = accepted_record_of(path, 12)
    flip(path, offset + 3)
    records = scan(path.read_bytes()).records
    handled_30 = next(r for r in records if r.kind == "B" and r.value.rows[0][0] == 30)
    flip(path, handled_30.offset + 9)
    original = path.read_bytes()

    report = repair_journal(path)

    assert report.backup is not None and report.backup.read_bytes() == original
    assert report.lost == (12,)  # its accepted record is gone: never handled again
    assert report.redelivered == (30,)  # its handling record is gone: handled again
    assert check_journal(path).ok
    journal = Journal(path)
    try:
        assert [p.seq for p in journal.pending()] == [30]
        handled = [e.seq for e in journal.handled()]
        assert handled == [n for n in range(1, 41) if n not in (12, 30)]
        assert journal.accept("/a", "message", b"next") == 41
    finally:
        journal.close()


def test_repair_is_refused_while_a_system_writes_the_journal(tmp_path: Path) -> None:
    path = filled(tmp_path / "j.journal", messages=2)
    journal = Journal(path)
    try:
        with pytest.raises(JournalLocked, match=f"pid {os.getpid()}"):
            repair_journal(path)
    finally:
        journal.close()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    first = Journal(path)
    try:
        with pytest.raises(JournalLocked) as raised:
            Journal(path)  # a second system in the same process
        assert f"pid {os.getpid()}" in str(raised.value)
        assert str(path) + ".lock" in str(raised.value)
    finally:
        first.close()
    Journal(path).close()  # released with the first


def test_a_writer_in_another_process_is_refused_naming_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from airssys.durability import Journal; "
            f"j = Journal({str(path)!r}); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(JournalLocked, match=f"pid {holder.pid}\\b"):
            Journal(path)
    finally:
        holder.kill()
        holder.communicate(timeout=30)  # closes its pipes
    Journal(path).close()  # a killed holder's lock is released by the kernel


class _FailingWrites:
    """os.write that writes part of a record, then fails as a full disk does."""

    def __init__(self, fd: int, real: Any) -> None:
        self.fd, self.real, self.on = fd, real, False

    def __call__(self, fd: int, data: Any) -> int:
        if self.on and fd == self.fd:
            self.real(fd, bytes(data)[: max(1, len(data) // 2)])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return int(self.real(fd, data))


def test_a_failed_write_is_rolled_back_before_anything_else_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.journal"
    journal = Journal(path)
    acknowledged = [journal.accept("/a", "message", b"before")]
    failing = _FailingWrites(journal._fd, os.write)
    monkeypatch.setattr(os, "write", failing)
    failing.on = True
    size = path.stat().st_size
    with pytest.raises(JournalError, match="No space left"):
        journal.accept("/a", "message", b"x" * 1000)
    assert path.stat().st_size == size  # the partial record is gone
    failing.on = False
    acknowledged += [journal.accept("/a", "message", b"after %d" % n) for n in range(3)]
    journal.close()
    reopened = Journal(path)  # no damage: every acknowledged message is there
    try:
        assert [p.seq for p in reopened.pending()] == acknowledged == [1, 2, 3, 4]
    finally:
        reopened.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs.small_disk(tmp_path, "256k") as where:
        yield where


def test_a_full_disk_loses_no_acknowledged_message(small_disk: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 64 * 1024)
    journal = Journal(small_disk / "j.journal")
    acknowledged: list[int] = []
    refused = 0
    for _ in range(10_000):
        try:
            acknowledged.append(journal.accept("/a", "message", os.urandom(3000)))
        except JournalError as exc:
            assert "No space left" in str(exc)
            refused += 1
            if refused == 5:
                break
    assert refused == 5 and acknowledged
    filler.unlink()  # room again
    acknowledged += [journal.accept("/a", "message", b"later %d" % n) for n in range(10)]
    journal.close()
    reopened = Journal(small_disk / "j.journal")
    try:
        assert [p.seq for p in reopened.pending()] == acknowledged
        assert acknowledged == list(range(1, len(acknowledged) + 1))
    finally:
        reopened.close()
