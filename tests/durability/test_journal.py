"""The journal on its own: sequence numbers, outcomes, the replay-hash chain, snapshots."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import msgpack
import pytest

from airssys.durability import Journal, JournalError
from airssys.durability._journal import GENESIS, WITH_RECORD, Handled


def test_accepted_messages_are_numbered_and_pending_until_recorded(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.journal")
    first = journal.accept("/a", "message", b"one")
    second = journal.accept(None, "callback", b"reply", "/me#1")
    assert (first, second) == (1, 2)
    assert [p.seq for p in journal.pending()] == [1, 2]
    assert journal.pending()[1].correlation == "/me#1"
    head = journal.record([Handled(1, "ok", b"r1", b"", bytes(32))])
    # the hash after a batch: sha256(the hash before | the batch record's packed rows)
    packed = msgpack.packb([(1, "ok", b"r1", b"", bytes(32))])
    assert head == hashlib.sha256(GENESIS + packed).digest()
    assert [p.seq for p in journal.pending()] == [2]
    assert [e.seq for e in journal.handled()] == [1]
    assert journal.replay_hash == head.hex()
    journal.close()


def test_a_reopened_journal_goes_on_where_it_was(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.journal")
    for n in range(3):
        journal.accept("/a", "message", bytes([n]))
    journal.record(
        [Handled(1, "ok", None, b"", bytes(32)), Handled(2, "failed", None, b"", bytes(32))]
    )
    hash_before = journal.replay_hash
    journal.close()
    again = Journal(tmp_path / "j.journal")
    assert again.replay_hash == hash_before
    assert again.accept("/a", "message", b"x") == 4
    assert [p.seq for p in again.pending()] == [3, 4]
    assert [(e.seq, e.outcome) for e in again.handled()] == [(1, "ok"), (2, "failed")]
    again.close()


def test_a_snapshot_compacts_what_it_covers(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.journal")
    for n in range(5):
        journal.accept("/a", "message", bytes([n]))
    journal.record([Handled(seq, "ok", None, b"", bytes(32)) for seq in (1, 2, 3)])
    journal.snapshot(3, b"state")
    snapshot = journal.latest_snapshot()
    assert snapshot is not None and (snapshot.seq, snapshot.state) == (3, b"state")
    assert snapshot.chain.hex() == journal.replay_hash
    assert list(journal.handled()) == []
    assert [p.seq for p in journal.pending()] == [4, 5]
    journal.close()
    reopened = Journal(tmp_path / "j.journal")
    assert reopened.replay_hash == snapshot.chain.hex()
    assert reopened.accept("/a", "message", b"") == 6
    reopened.close()


def test_the_file_is_private_and_fsync_is_checked(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "sub" / "j.journal", fsync="always")
    journal.accept("/a", "message", b"x")
    journal.sync()
    assert stat.S_IMODE((tmp_path / "sub" / "j.journal").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o700
    journal.close()
    with pytest.raises(ValueError, match="fsync must be"):
        Journal(tmp_path / "k.journal", fsync="sometimes")


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    (tmp_path / "j.journal").write_bytes(b"SQLite format 3\x00")
    with pytest.raises(JournalError, match="not an airssys journal"):
        Journal(tmp_path / "j.journal")


def test_a_record_torn_by_a_kill_is_cut_off(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.journal")
    journal.accept("/a", "message", b"kept")
    journal.accept("/a", "message", b"torn")
    journal.close()
    data = (tmp_path / "j.journal").read_bytes()
    (tmp_path / "j.journal").write_bytes(data[:-3])  # the last write cut short
    reopened = Journal(tmp_path / "j.journal")
    assert [(p.seq, p.payload) for p in reopened.pending()] == [(1, b"kept")]
    assert reopened.accept("/a", "message", b"next") == 2  # the torn one never counted
    reopened.close()
    again = Journal(tmp_path / "j.journal")
    assert [p.payload for p in again.pending()] == [b"kept", b"next"]
    again.close()


def test_an_ask_is_numbered_and_written_with_its_handling_record(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.journal")
    assert journal.accept("/a", "message", b"a tell") == 1
    size = (tmp_path / "j.journal").stat().st_size
    ask = Handled(WITH_RECORD, "ok", b"r2", b"", bytes(32), ("/b", "message", b"an ask", None))
    journal.record([ask, Handled(1, "ok", b"r1", b"", bytes(32))])
    assert (tmp_path / "j.journal").stat().st_size > size
    journal.close()
    again = Journal(tmp_path / "j.journal")
    try:
        handled = [(e.seq, e.sender, e.payload, e.reply) for e in again.handled()]
        assert handled == [(2, "/b", b"an ask", b"r2"), (1, "/a", b"a tell", b"r1")]
        assert again.pending() == []
        assert again.accept("/a", "message", b"next") == 3
    finally:
        again.close()
