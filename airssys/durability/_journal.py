"""A component's journal: one SQLite file (WAL) per durable address.

Why SQLite: it is in the standard library, a commit is atomic, and WAL mode
writes a commit with one append to the log file, which the operating system keeps
when the process is killed; ``synchronous=FULL`` adds an fsync per commit for
power loss. Measured by benches/bench_durability.py against the journal off.

Tables:

* ``message``: every message accepted into the component's mailbox, by sequence
  number: its sender, kind (``message`` or ``callback``), payload (a callback's:
  its correlation id and reply or error), and once handled its outcome (``ok``,
  ``error``, or ``failed``: it killed the instance, and replay skips it), its
  reply, the host-call results it saw (``inputs``), the digest of the effects it
  had (``effects``) and the replay-hash chain up to it (``chain``);
* ``snapshot``: the component's state after a sequence number (the journal before
  it is compacted away);
* ``meta``: the schema version.

The replay hash: ``chain(n) = sha256(chain(n-1) | seq | outcome | sha256(reply) |
effects)``, over the handled messages in order. A replay recomputes it message by
message; a difference is a divergence.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import AirssysError

__all__ = (
    "GENESIS",
    "Accepted",
    "Handled",
    "Journal",
    "JournalError",
    "Snapshot",
    "chain",
)

GENESIS: Final = bytes(32)
_SCHEMA: Final = 1
_SEQ: Final = struct.Struct(">Q")


class JournalError(AirssysError):
    """The journal cannot be opened, read or written."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message accepted and not yet handled (redelivered after a restart)."""

    seq: int
    sender: str | None
    kind: str
    payload: bytes
    correlation: str | None


@dataclass(frozen=True, slots=True)
class Handled:
    """What handling one message did (written by :meth:`Journal.record`)."""

    seq: int
    outcome: str
    """``ok``, ``error`` (answered with an error), or ``failed`` (killed the instance)."""
    reply: bytes | None
    inputs: bytes
    effects: bytes


@dataclass(frozen=True, slots=True)
class Entry:
    """A handled message as the journal keeps it (for replay)."""

    seq: int
    sender: str | None
    kind: str
    payload: bytes
    correlation: str | None
    outcome: str
    reply: bytes | None
    inputs: bytes
    effects: bytes
    chain: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    state: bytes
    chain: bytes


def chain(previous: bytes, seq: int, outcome: str, reply: bytes | None, effects: bytes) -> bytes:
    digest = hashlib.sha256(previous)
    digest.update(_SEQ.pack(seq))
    digest.update(outcome.encode())
    digest.update(hashlib.sha256(reply if reply is not None else b"\x00none").digest())
    digest.update(effects)
    return digest.digest()


class Journal:
    """One durable address's journal. Thread-safe (one connection, a lock)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: str = "batch") -> None:
        if fsync not in ("batch", "always"):
            raise ValueError(f"fsync must be 'batch' or 'always', got {fsync!r}")
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        try:
            db = self._db
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if fsync == 'always' else 'NORMAL'}")
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS message (
                    seq INTEGER PRIMARY KEY,
                    sender TEXT,
                    kind TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    correlation TEXT,
                    outcome TEXT,
                    reply BLOB,
                    inputs BLOB,
                    effects BLOB,
                    chain BLOB
                );
                CREATE TABLE IF NOT EXISTS snapshot (
                    seq INTEGER PRIMARY KEY, state BLOB NOT NULL, chain BLOB NOT NULL
                );
                """
            )
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(_SCHEMA),))
            elif row[0] != str(_SCHEMA):
                raise JournalError(
                    f"the journal {self.path} has schema {row[0]}; this airssys reads {_SCHEMA}"
                )
            last = db.execute("SELECT max(seq) FROM message").fetchone()[0]
            snap = db.execute("SELECT max(seq) FROM snapshot").fetchone()[0]
            self._next = max(last or 0, snap or 0) + 1
            head = db.execute(
                "SELECT chain FROM message WHERE outcome IS NOT NULL ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            snapshot = self.latest_snapshot()
            self._chain: bytes = (
                head[0] if head is not None else snapshot.chain if snapshot else GENESIS
            )
        except sqlite3.Error as exc:
            self._db.close()
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc

    # --- writing ---------------------------------------------------------------------

    def accept(
        self,
        sender: str | None,
        kind: str,
        payload: bytes,
        correlation: str | None = None,
    ) -> int:
        """Record an accepted message; returns its sequence number once committed."""
        with self._lock:
            seq = self._next
            try:
                self._db.execute(
                    "INSERT INTO message (seq, sender, kind, payload, correlation) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (seq, sender, kind, payload, correlation),
                )
            except sqlite3.Error as exc:
                raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc
            self._next = seq + 1
            return seq

    def record(self, handled: Sequence[Handled]) -> bytes:
        """Mark messages handled (one transaction); returns the replay hash after them."""
        if not handled:
            return self._chain
        with self._lock:
            head = self._chain
            rows = []
            for item in handled:
                head = chain(head, item.seq, item.outcome, item.reply, item.effects)
                rows.append((item.outcome, item.reply, item.inputs, item.effects, head, item.seq))
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "UPDATE message SET outcome = ?, reply = ?, inputs = ?, effects = ?, "
                    "chain = ? WHERE seq = ?",
                    rows,
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc
            self._chain = head
            return head

    def sync(self) -> None:
        """fsync the write-ahead log: every commit so far survives power loss too."""
        with self._lock:
            try:
                fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            except FileNotFoundError:
                return  # checkpointed into the database file, which sqlite synced
            except OSError as exc:
                raise JournalError(f"cannot sync the journal {self.path}: {exc}") from exc
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def forget(self, seq: int) -> None:
        """Drop an accepted message that was never queued (its delivery failed)."""
        with self._lock:
            try:
                self._db.execute("DELETE FROM message WHERE seq = ? AND outcome IS NULL", (seq,))
            except sqlite3.Error as exc:
                raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc

    def snapshot(self, seq: int, state: bytes) -> None:
        """Keep ``state`` (after message ``seq``) and compact what it makes redundant."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT OR REPLACE INTO snapshot VALUES (?, ?, ?)", (seq, state, self._chain)
                )
                self._db.execute("DELETE FROM snapshot WHERE seq < ?", (seq,))
                self._db.execute(
                    "DELETE FROM message WHERE seq <= ? AND outcome IS NOT NULL", (seq,)
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    # --- reading ----------------------------------------------------------------------

    @property
    def replay_hash(self) -> str:
        """The replay hash after the last handled message (hex)."""
        return self._chain.hex()

    def latest_snapshot(self) -> Snapshot | None:
        row = self._db.execute(
            "SELECT seq, state, chain FROM snapshot ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return Snapshot(row[0], row[1], row[2]) if row is not None else None

    def handled(self, after: int = 0) -> Iterator[Entry]:
        """Handled messages after ``after``, in order (failed ones included)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, sender, kind, payload, correlation, outcome, reply, inputs, "
                "effects, chain FROM message WHERE seq > ? AND outcome IS NOT NULL "
                "ORDER BY seq",
                (after,),
            ).fetchall()
        for row in rows:
            yield Entry(*row)

    def pending(self) -> list[Accepted]:
        """Accepted messages not handled yet, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, sender, kind, payload, correlation FROM message "
                "WHERE outcome IS NULL ORDER BY seq"
            ).fetchall()
        return [Accepted(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT coalesce(outcome, 'pending'), count(*) FROM message GROUP BY 1"
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()
