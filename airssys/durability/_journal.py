"""A component's journal: one append-only segment file per durable address.

Why a segment file and not SQLite (measured, benches/bench_durability.py and the
figures in the closing note): accepting a message is one ``os.write`` of a framed
record (about 1 us here), where a SQLite commit per message cost 13 us, more than
the whole message path without the journal. A write that returned is in the
operating system's cache, so it survives the process being killed; ``fsync``
makes it survive power loss: per accepted message with ``fsync = "always"``, at
most every 10 ms with ``"batch"`` (after a handled batch; a group commit).

The file: ``AIRSJRN1``, then records ``[u32 length][u8 type][body][u32 crc32]``
(big-endian; the bodies of ``H`` and ``S`` are CBOR):

* ``A`` accepted: seq, kind, sender, correlation id and payload, packed by hand
  (see :func:`_accept_body`), written before the message is queued;
* ``H`` handled: a list of ``[seq, outcome, reply, inputs, effects, chain]``, one
  record per handled batch (outcome ``ok``, ``error``, or ``failed``: it killed
  the instance, and replay skips it);
* ``S`` snapshot: ``[seq, state, chain]``: the component's state after ``seq``.

A record cut short by a kill (a torn tail) fails its length or checksum and is
cut off when the journal is opened. A snapshot compacts the file: a new one with
the snapshot and the messages still pending replaces it atomically (rename).

The replay hash: ``chain(n) = sha256(chain(n-1) | seq | len(reply) | outcome |
reply | effects)``, over the handled messages in order. A replay recomputes it message by
message; a difference is a divergence.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import cbor2

from ..errors import JournalError as JournalError

__all__ = (
    "GENESIS",
    "Accepted",
    "Entry",
    "Handled",
    "Journal",
    "JournalError",
    "Snapshot",
    "chain",
)

GENESIS: Final = bytes(32)
MAGIC: Final = b"AIRSJRN1"
_HEAD: Final = struct.Struct(">IB")
_CRC: Final = struct.Struct(">I")
_STEP: Final = struct.Struct(">Qq")
_MAX_RECORD: Final = 1 << 30
_SYNC_EVERY: Final = 0.01  # "batch": fsync after a handled batch, at most this often


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message accepted and not yet handled (redelivered after a restart)."""

    seq: int
    sender: str | None
    kind: str
    payload: bytes
    correlation: str | None


class Handled(NamedTuple):
    """What handling one message did (written by :meth:`Journal.record`); a named
    tuple: one is made per message, and a frozen dataclass costs four times more."""

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
    """One step of the replay hash (the reply length-prefixed, so no two messages
    hash alike by shifting bytes between fields)."""
    size = -1 if reply is None else len(reply)
    return hashlib.sha256(
        b"".join((previous, _STEP.pack(seq, size), outcome.encode(), reply or b"", effects))
    ).digest()


_KINDS: Final = ("message", "callback", "callback-error")
_ACCEPT: Final = struct.Struct(">QBHH")
_NONE: Final = 0xFFFF


def _accept_body(
    seq: int, sender: str | None, kind: str, payload: bytes, correlation: str | None
) -> bytes:
    """An ``A`` record's body, packed by hand (a CBOR encoding cost as much as the write):
    ``>Q seq, B kind, H len(sender) | 0xFFFF, H len(correlation) | 0xFFFF``, the two
    strings (UTF-8), then the payload."""
    who = b"" if sender is None else sender.encode("utf-8", "surrogatepass")
    corr = b"" if correlation is None else correlation.encode("utf-8", "surrogatepass")
    return b"".join(
        (
            _ACCEPT.pack(
                seq,
                _KINDS.index(kind),
                _NONE if sender is None else len(who),
                _NONE if correlation is None else len(corr),
            ),
            who,
            corr,
            payload,
        )
    )


def _accepted(body: bytes) -> tuple[int, str | None, str, bytes, str | None]:
    seq, kind, who, corr = _ACCEPT.unpack_from(body)
    at = _ACCEPT.size
    sender = None if who == _NONE else body[at : at + who].decode("utf-8", "surrogatepass")
    at += 0 if who == _NONE else who
    correlation = None if corr == _NONE else body[at : at + corr].decode("utf-8", "surrogatepass")
    at += 0 if corr == _NONE else corr
    return seq, sender, _KINDS[kind], body[at:], correlation


def _frame(kind: bytes, body: bytes) -> bytes:
    return _HEAD.pack(len(body), kind[0]) + body + _CRC.pack(zlib.crc32(body))


def _records(data: bytes) -> Iterator[tuple[int, str, Any]]:
    """(offset after the record, type, body) of every whole record; stops at a torn one."""
    at = len(MAGIC)
    while at + _HEAD.size <= len(data):
        length, kind = _HEAD.unpack_from(data, at)
        end = at + _HEAD.size + length + _CRC.size
        if length > _MAX_RECORD or end > len(data):
            return
        body = data[at + _HEAD.size : at + _HEAD.size + length]
        if _CRC.unpack_from(data, end - _CRC.size)[0] != zlib.crc32(body):
            return
        try:
            value = _accepted(body) if kind == 0x41 else cbor2.loads(body)  # b"A"
        except Exception:
            return
        yield end, chr(kind), value
        at = end


class Journal:
    """One durable address's journal. Thread-safe (writes under a lock)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: str = "batch") -> None:
        if fsync not in ("batch", "always"):
            raise ValueError(f"fsync must be 'batch' or 'always', got {fsync!r}")
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        # seq -> (sender, kind, payload, correlation): a tuple is cheaper to make
        self._pending: dict[int, tuple[str | None, str, bytes, str | None]] = {}
        self._snapshot: Snapshot | None = None
        self._chain = GENESIS
        self._next = 1
        self._last_sync = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        try:
            self._load()
        except BaseException:
            os.close(self._fd)
            raise

    def _load(self) -> None:
        data = self._read()
        if not data:
            self._write(MAGIC)
            return
        if not data.startswith(MAGIC):
            raise JournalError(f"{self.path} is not an airssys journal (no {MAGIC!r} header)")
        end = len(MAGIC)
        for record_end, kind, body in _records(data):
            end = record_end
            if kind == "A":
                seq, sender, message_kind, payload, correlation = body
                self._pending[seq] = (sender, message_kind, payload, correlation)
                self._next = max(self._next, seq + 1)
            elif kind == "H":
                for seq, _outcome, _reply, _inputs, _effects, head in body:
                    self._pending.pop(seq, None)
                    self._chain = head
            elif kind == "S":
                seq, state, head = body
                self._snapshot = Snapshot(seq, state, head)
                self._chain = head
                self._next = max(self._next, seq + 1)
        if end < len(data):  # a record cut short when a process was killed
            os.ftruncate(self._fd, end)

    def _read(self) -> bytes:
        with open(self.path, "rb") as file:
            return file.read()

    def _write(self, data: bytes) -> None:
        try:
            written = os.write(self._fd, data)
            if written < len(data):  # a short write: the rest, in order
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc

    # --- writing ---------------------------------------------------------------------

    def accept(
        self,
        sender: str | None,
        kind: str,
        payload: bytes,
        correlation: str | None = None,
    ) -> int:
        """Record an accepted message (written; fsynced with ``always``); its number."""
        with self._lock:
            seq = self._next
            self._write(_frame(b"A", _accept_body(seq, sender, kind, payload, correlation)))
            if self.fsync == "always":
                self._sync()
            self._next = seq + 1
            self._pending[seq] = (sender, kind, payload, correlation)
            return seq

    def record(self, handled: Sequence[Handled]) -> bytes:
        """Mark messages handled (one record); returns the replay hash after them."""
        if not handled:
            return self._chain
        with self._lock:
            head = self._chain
            rows = []
            for item in handled:
                head = chain(head, item.seq, item.outcome, item.reply, item.effects)
                rows.append([item.seq, item.outcome, item.reply, item.inputs, item.effects, head])
            self._write(_frame(b"H", cbor2.dumps(rows)))
            for item in handled:
                self._pending.pop(item.seq, None)
            self._chain = head
            if self.fsync == "batch" and time.monotonic() - self._last_sync >= _SYNC_EVERY:
                self._sync()
            return head

    def sync(self) -> None:
        """fsync the journal: everything written so far survives power loss too."""
        with self._lock:
            self._sync()

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            raise JournalError(f"cannot sync the journal {self.path}: {exc}") from exc
        self._last_sync = time.monotonic()

    def snapshot(self, seq: int, state: bytes) -> None:
        """Keep ``state`` (after message ``seq``) and compact what it makes redundant:
        a new file (the snapshot and what is still pending) replaces this one."""
        with self._lock:
            snapshot = Snapshot(seq, state, self._chain)
            parts = [MAGIC, _frame(b"S", cbor2.dumps([seq, state, self._chain]))]
            for pending_seq, (sender, kind, payload, correlation) in self._pending.items():
                body = _accept_body(pending_seq, sender, kind, payload, correlation)
                parts.append(_frame(b"A", body))
            fresh = self.path.with_name(self.path.name + ".compact")
            try:
                fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, b"".join(parts))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(fresh, self.path)
                new_fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            except OSError as exc:
                raise JournalError(f"cannot compact the journal {self.path}: {exc}") from exc
            os.close(self._fd)
            self._fd = new_fd
            self._snapshot = snapshot

    # --- reading ----------------------------------------------------------------------

    @property
    def replay_hash(self) -> str:
        """The replay hash after the last handled message (hex)."""
        return self._chain.hex()

    def latest_snapshot(self) -> Snapshot | None:
        return self._snapshot

    def handled(self, after: int = 0) -> Iterator[Entry]:
        """Handled messages after ``after``, in order (failed ones included)."""
        with self._lock:
            data = self._read()
        accepted: dict[int, list[Any]] = {}
        for _end, kind, body in _records(data):
            if kind == "A":
                accepted[body[0]] = body
            elif kind == "H":
                for seq, outcome, reply, inputs, effects, head in body:
                    message = accepted.pop(seq, None)
                    if message is None or seq <= after:
                        continue
                    _seq, sender, message_kind, payload, correlation = message
                    yield Entry(
                        seq, sender, message_kind, payload, correlation,
                        outcome, reply, inputs, effects, head,
                    )  # fmt: skip

    def pending(self) -> list[Accepted]:
        """Accepted messages not handled yet, in order."""
        with self._lock:
            return [Accepted(seq, *self._pending[seq]) for seq in sorted(self._pending)]

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
