"""A component's journal: one append-only segment file per durable address.

Why a segment file and not SQLite (measured, benches/bench_durability.py and the
figures in the closing note): accepting a message is one ``os.write`` of a framed
record (about 1 us here), where a SQLite commit per message cost 13 us, more than
the whole message path without the journal. A write that returned is in the
operating system's cache, so it survives the process being killed; ``fsync``
makes it survive power loss: per accepted message with ``fsync = "always"``, at
most every 10 ms with ``"batch"`` (after a handled batch; a group commit).

The file: ``AIRSJRN1``, then records ``[u32 length][u8 type][body][u32 crc32]``
(big-endian):

* ``A`` accepted: seq, kind, sender, correlation id and payload, packed by hand
  (see :func:`_accept_body`), written before the message is queued (a ``send``, a
  callback);
* ``B`` a handled batch, one record per batch: the replay hash after it (32 bytes),
  then a MessagePack list of rows ``[seq, outcome, reply, inputs, effects]`` (outcome
  ``ok``, ``error``, or ``failed``: it killed the instance, and replay skips it); an
  ask's row goes on with ``sender, kind, payload, correlation``: it is accepted and
  handled in this one record (its reply, sent after the write, is its acknowledgement);
* ``S`` snapshot: CBOR ``[seq, state, chain]``: the component's state after ``seq``;
* ``R`` repair: CBOR, what ``airssys journal repair`` could not keep (:class:`Repair`);
* ``H`` handled, the format before ``B`` (still read): a CBOR list of ``[seq, outcome,
  reply, inputs, effects, chain]``, the chain stepped per message.

A record cut short by a kill (a torn tail) fails its length or checksum and is
cut off when the journal is opened. A snapshot compacts the file: a new one with
the snapshot and the messages still pending replaces it atomically (rename).

The replay hash, after each handled batch: ``sha256(previous | rows)``, ``rows``
the ``B`` record's MessagePack bytes (so one hash per batch, not per message: the
record costs less than a sixth of the message it keeps). A replay follows the
chain record by record; a break is a journal that is not the one written (see
``airssys journal check``). Whether a replayed message did what was recorded is
checked per message, against its row.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple, NoReturn

import cbor2
import msgpack

from .._dirs import hold_lock
from .._logging import get_logger
from ..errors import JournalCorrupt as JournalCorrupt
from ..errors import JournalError as JournalError
from ..errors import JournalLocked as JournalLocked

__all__ = (
    "GENESIS",
    "WITH_RECORD",
    "Accepted",
    "Batch",
    "Damage",
    "Entry",
    "Handled",
    "History",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalLocked",
    "Record",
    "Repair",
    "Scan",
    "Snapshot",
    "chain",
    "lock_journal",
    "scan",
)

GENESIS: Final = bytes(32)
MAGIC: Final = b"AIRSJRN1"
_HEAD: Final = struct.Struct(">IB")
_CRC: Final = struct.Struct(">I")
_STEP: Final = struct.Struct(">Qq")
_MAX_RECORD: Final = 1 << 30
_SYNC_EVERY: Final = 0.01  # "batch": fsync after a handled batch, at most this often
_log = get_logger("airssys.durability")


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message accepted and not yet handled (redelivered after a restart)."""

    seq: int
    sender: str | None
    kind: str
    payload: bytes
    correlation: str | None


WITH_RECORD: Final = -1
"""An envelope's ``seq`` for an ask: it is journaled with its handling record."""


class Handled(NamedTuple):
    """What handling one message did (written by :meth:`Journal.record`); a named
    tuple: one is made per message, and a frozen dataclass costs four times more."""

    seq: int
    """Its number, or WITH_RECORD: numbered and written with the record (an ask)."""
    outcome: str
    """``ok``, ``error`` (answered with an error), or ``failed`` (killed the instance)."""
    reply: bytes | None
    inputs: bytes
    effects: bytes
    accepted: tuple[str | None, str, bytes, str | None] | None = None
    """For WITH_RECORD: (sender, kind, payload, correlation), its ``A`` record's body."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A handled message as the journal keeps it (for replay). ``chain``: the replay
    hash after it in an ``H`` record; empty in a ``B`` record (its :class:`Batch`,
    after its entries, carries the hash)."""

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


class Batch(NamedTuple):
    """A ``B`` record: the replay hash after it, its rows, and their packed bytes
    (what the hash covers)."""

    head: bytes
    rows: list[tuple[Any, ...]]
    packed: bytes

    def step(self, previous: bytes) -> bytes:
        """The replay hash after this batch, from the one before it."""
        return hashlib.sha256(previous + self.packed).digest()


def _batch(body: bytes) -> Batch:
    packed = body[32:]
    rows = msgpack.unpackb(packed, use_list=False)
    if (
        len(body) < 32
        or not isinstance(rows, tuple)
        or not all(isinstance(row, tuple) and len(row) in (5, 9) for row in rows)
    ):
        raise ValueError("not a batch record")
    return Batch(body[:32], list(rows), packed)


def _pack_rows(rows: list[tuple[Any, ...]]) -> bytes:
    return msgpack.packb(rows)  # type: ignore[no-any-return]


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


_TYPES: Final = frozenset(b"ABHSR")
_LENGTH_SIZE: Final = 4
_TYPE_BYTE: Final = re.compile(rb"[ABHSR]")


class Record(NamedTuple):
    """One whole record: where it starts and ends in the file, its type and body."""

    offset: int
    end: int
    kind: str
    value: Any


class Damage(NamedTuple):
    """Bytes that are not a whole record: ``size`` bytes from ``offset``."""

    offset: int
    size: int


class Scan(NamedTuple):
    """A journal file read record by record (see :func:`scan`)."""

    records: list[Record]
    damaged: list[Damage]
    """Unreadable regions with whole records after them: corruption."""
    tail: Damage | None
    """Unreadable bytes at the end, with nothing readable after them: a torn write."""


def _decode(kind: int, body: bytes) -> Any:
    if kind == 0x41:  # b"A"
        return _accepted(body)
    if kind == 0x42:  # b"B"
        return _batch(body)
    return cbor2.loads(body)


def _record_at(data: bytes, at: int) -> Record | None:
    """The whole record starting at ``at``, or None (short, bad length, bad checksum,
    unknown type or an undecodable body)."""
    if at + _HEAD.size + _CRC.size > len(data):
        return None
    length, kind = _HEAD.unpack_from(data, at)
    end = at + _HEAD.size + length + _CRC.size
    if kind not in _TYPES or length > _MAX_RECORD or end > len(data):
        return None
    body = data[at + _HEAD.size : end - _CRC.size]
    if _CRC.unpack_from(data, end - _CRC.size)[0] != zlib.crc32(body):
        return None
    try:
        value = _decode(kind, body)
    except Exception:
        return None
    return Record(at, end, chr(kind), value)


def _next_record(data: bytes, at: int) -> int | None:
    """Where the first whole record after the bad bytes at ``at`` starts, if any: where
    the bad record's own length points, else the first offset that reads as a whole
    record (each candidate's type byte found by a regex scan, its checksum checked)."""
    if at + _HEAD.size <= len(data):
        length: int = _HEAD.unpack_from(data, at)[0]
        end = at + _HEAD.size + length + _CRC.size
        if length <= _MAX_RECORD and end < len(data) and _record_at(data, end) is not None:
            return end
    for match in _TYPE_BYTE.finditer(data, at + 1 + _LENGTH_SIZE):
        start = match.start() - _LENGTH_SIZE
        if _record_at(data, start) is not None:
            return start
    return None


def scan(data: bytes, start: int = len(MAGIC)) -> Scan:
    """Every whole record of a journal file's bytes (from ``start``: after the header),
    and what is not: an unreadable region followed by whole records is damage;
    unreadable bytes with nothing whole after them are a torn tail (a write cut short)."""
    records: list[Record] = []
    damaged: list[Damage] = []
    at = start
    size = len(data)
    while at < size:
        record = _record_at(data, at)
        if record is not None:
            records.append(record)
            at = record.end
            continue
        following = _next_record(data, at)
        if following is None:
            return Scan(records, damaged, Damage(at, size - at))
        damaged.append(Damage(at, following - at))
        at = following
    return Scan(records, damaged, None)


@dataclass(frozen=True, slots=True)
class Repair:
    """A repair record: what ``airssys journal repair`` could not keep at one place.

    ``lost``: accepted messages whose record is gone (never handled again, never
    replayed); ``redelivered``: accepted messages whose handling record is gone (they
    are handled again, like messages a killed process left). Replay restarts the
    hash chain at ``chain`` and no longer requires the same replies after this point
    (the state it rebuilds lacks what was lost)."""

    offset: int
    size: int
    lost: tuple[int, ...]
    redelivered: tuple[int, ...]
    snapshot_lost: bool
    chain: bytes

    def body(self) -> bytes:
        return cbor2.dumps(
            {
                "offset": self.offset,
                "size": self.size,
                "lost": list(self.lost),
                "redelivered": list(self.redelivered),
                "snapshot-lost": self.snapshot_lost,
                "chain": self.chain,
            }
        )

    @classmethod
    def of(cls, value: Any) -> Repair:
        return cls(
            value["offset"],
            value["size"],
            tuple(value["lost"]),
            tuple(value["redelivered"]),
            bool(value["snapshot-lost"]),
            value["chain"],
        )


def lock_journal(path: Path) -> int:
    """Take the writer lock of the journal at ``path`` (``<path>.lock``, see
    :func:`airssys._dirs.hold_lock`); its descriptor, to close to release it."""
    lock = path.with_name(path.name + ".lock")
    try:
        held = hold_lock(lock)
    except OSError as exc:
        raise JournalError(f"cannot open the journal's lock {lock}: {exc}") from exc
    if isinstance(held, str):
        raise JournalLocked(
            f"the journal {path} is being written by another system (pid {held}, "
            f"lock {lock}); two writers would corrupt it. Stop that one first, or give "
            "this system another name or data directory"
        )
    return held


def write_synced(path: Path, data: bytes, mode: int = os.O_EXCL) -> None:
    """Write ``data`` as the file ``path`` (0600, never through a symlink; ``mode``:
    O_EXCL to refuse an existing file, O_TRUNC to replace its contents) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


class _Syncer:
    """One thread that fsyncs the journals with ``fsync = "batch"`` (each at most every
    10 ms after a handled batch), so no message path waits for the disk. It runs while
    such a journal is open and is joined when the last one closes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._due: dict[int, Journal] = {}
        self._users = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def attach(self) -> None:
        with self._lock:
            self._users += 1
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="airssys-journal-sync", daemon=True
                )
                self._thread.start()

    def detach(self, journal: Journal) -> None:
        with self._lock:
            self._due.pop(id(journal), None)
            self._users -= 1
            thread = self._thread if self._users == 0 else None
            if thread is not None:
                self._thread, self._stopping = None, True
                self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def due(self, journal: Journal) -> None:
        with self._lock:
            self._due[id(journal)] = journal
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                if self._stopping:
                    return
                self._wake.clear()
                due = list(self._due.values())
                self._due.clear()
            for journal in due:
                journal._sync_behind()
            time.sleep(_SYNC_EVERY)


_SYNCER: Final = _Syncer()


class History(NamedTuple):
    """What :meth:`Journal.read_history` read: the items, where the read ended, the
    accepted messages not seen handled yet, and the file's generation (compactions)."""

    items: list[Snapshot | Entry | Repair | Batch]
    end: int
    accepted: dict[int, Any]
    generation: int


class Journal:
    """One durable address's journal. Thread-safe (writes under a lock).

    Opening it takes its writer lock (:func:`lock_journal`) for as long as it is open,
    and reads it: a torn tail is cut off (and logged), damage refuses to open
    (:class:`JournalCorrupt`). A write that fails is rolled back: the file is cut back
    to the end of its last whole record before the error is raised, so nothing is
    appended after a partial record; if even that fails, the journal takes no more
    writes until it is opened again.
    """

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
        self._size = 0
        """The end of the last whole record: where a failed write is cut back to."""
        self.last_handled = 0
        """The sequence number of the last message handled (or the snapshot's)."""
        self.generation = 0
        """How many times this journal was compacted (a snapshot) since it was opened."""
        self._broken: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        self._lock_fd = lock_journal(self.path)
        try:
            self._fd = os.open(
                self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600
            )
        except OSError as exc:
            os.close(self._lock_fd)
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        try:
            self._load()
        except BaseException:
            os.close(self._fd)
            os.close(self._lock_fd)
            raise
        if fsync == "batch":
            _SYNCER.attach()

    def _load(self) -> None:
        data = self._read()
        if not data:
            self._write(MAGIC)
            return
        if not data.startswith(MAGIC):
            raise JournalError(f"{self.path} is not an airssys journal (no {MAGIC!r} header)")
        found = scan(data)
        if found.damaged:
            first = found.damaged[0]
            after = sum(1 for record in found.records if record.offset > first.offset)
            raise JournalCorrupt(
                f"the journal {self.path} is damaged: {first.size} unreadable bytes at "
                f"offset {first.offset}, with {after} whole records after them "
                f"({len(found.damaged)} damaged region(s) in all). This is not a write cut "
                "short by a kill, so nothing is cut off and the component is not started. "
                f"See what is there with `airssys journal check {self.path}`; "
                f"`airssys journal repair {self.path}` keeps every readable record and "
                "lists the messages that were lost"
            )
        for record in found.records:
            self._apply(record.kind, record.value)
        self._size = len(data)
        if found.tail is not None:  # a record cut short when a process was killed
            tail = found.tail
            _log.warning(
                "cut a torn record off the end of a journal (a write cut short)",
                journal=str(self.path),
                offset=tail.offset,
                size=tail.size,
            )
            self._cut(tail.offset)

    def _apply(self, kind: str, body: Any) -> None:
        if kind == "A":
            seq, sender, message_kind, payload, correlation = body
            self._pending[seq] = (sender, message_kind, payload, correlation)
            self._next = max(self._next, seq + 1)
        elif kind == "B":
            for row in body.rows:
                if len(row) == 5:
                    self._pending.pop(row[0], None)
                else:  # an ask, accepted with its record
                    self._next = max(self._next, row[0] + 1)
            self._chain = body.head
            self.last_handled = body.rows[-1][0]
        elif kind == "H":
            for seq, _outcome, _reply, _inputs, _effects, head in body:
                self._pending.pop(seq, None)
                self._chain = head
                self.last_handled = seq
        elif kind == "S":
            seq, state, head = body
            self._snapshot = Snapshot(seq, state, head)
            self._chain = head
            self._next = max(self._next, seq + 1)
            self.last_handled = seq
        elif kind == "R":
            repair = Repair.of(body)
            self._chain = repair.chain
            if repair.lost:
                self._next = max(self._next, max(repair.lost) + 1)

    def _read(self) -> bytes:
        with open(self.path, "rb") as file:
            return file.read()

    def _cut(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            message = f"cannot cut the journal {self.path} back to {size} bytes: {exc}"
            raise JournalError(message) from exc
        self._size = size

    def _write(self, data: bytes) -> None:
        if self._broken is not None:
            raise JournalError(self._broken)
        try:
            written = os.write(self._fd, data)
            if written < len(data):  # a short write: the rest, in order
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._roll_back(exc)
        self._size += len(data)

    def _roll_back(self, exc: OSError) -> NoReturn:
        """A write failed part way: cut the file back to its last whole record."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as again:
            self._broken = (
                f"the journal {self.path} takes no more writes: a write failed ({exc}) and "
                f"the file could not be cut back to its last whole record at byte "
                f"{self._size} ({again}); open it again (restart the component) once the "
                "cause is fixed"
            )
            raise JournalError(self._broken) from exc
        raise JournalError(
            f"cannot write to the journal {self.path}: {exc.strerror or exc} (nothing of "
            "this record was kept)"
        ) from exc

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
        """Mark messages handled (one ``B`` record, with the asks among them accepted in
        it); returns the replay hash after them."""
        if not handled:
            return self._chain
        with self._lock:
            rows: list[tuple[Any, ...]] = []
            number = first = self._next
            for item in handled:
                accepted = item.accepted
                if accepted is None:
                    rows.append((item.seq, item.outcome, item.reply, item.inputs, item.effects))
                else:  # an ask: accepted and handled in one write
                    row = (number, item.outcome, item.reply, item.inputs, item.effects, *accepted)
                    rows.append(row)
                    number += 1
            packed = _pack_rows(rows)
            head = hashlib.sha256(self._chain + packed).digest()
            self._write(_frame(b"B", head + packed))
            self._next = number
            if number - first < len(rows):  # sends and callbacks, accepted before
                for row in rows:
                    if len(row) == 5:
                        self._pending.pop(row[0], None)
            self._chain = head
            self.last_handled = int(rows[-1][0])
            if self.fsync == "always" and number != first:
                self._sync()  # an ask's reply is its acknowledgement: synced before it
            elif self.fsync == "batch":
                _SYNCER.due(self)  # synced behind, at most every 10 ms
            return head

    def sync(self) -> None:
        """fsync the journal: everything written so far survives power loss too."""
        with self._lock:
            self._sync()

    def _sync_behind(self) -> None:
        """The syncer's fsync (another thread): of a duplicate of the descriptor, so a
        compaction or a close meanwhile changes nothing it uses."""
        with self._lock:
            if self._fd < 0:
                return
            fd = os.dup(self._fd)
        try:
            os.fdatasync(fd)
        except OSError as exc:
            with self._lock:
                self._broken = (
                    f"the journal {self.path} takes no more writes: fsync failed ({exc}); "
                    "open it again (restart the component) once the cause is fixed"
                )
        finally:
            os.close(fd)
        self._last_sync = time.monotonic()

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            # after a failed fsync the page cache may have dropped what it could not
            # write: nothing written since the last good sync can be trusted
            self._broken = (
                f"the journal {self.path} takes no more writes: fsync failed ({exc}); "
                "open it again (restart the component) once the cause is fixed"
            )
            raise JournalError(self._broken) from exc
        self._last_sync = time.monotonic()

    def snapshot(self, seq: int, state: bytes) -> None:
        """Keep ``state`` (after message ``seq``) and compact what it makes redundant:
        a new file (the snapshot and what is still pending) replaces this one."""
        with self._lock:
            if self._broken is not None:
                raise JournalError(self._broken)
            snapshot = Snapshot(seq, state, self._chain)
            parts = [MAGIC, _frame(b"S", cbor2.dumps([seq, state, self._chain]))]
            for pending_seq, (sender, kind, payload, correlation) in self._pending.items():
                body = _accept_body(pending_seq, sender, kind, payload, correlation)
                parts.append(_frame(b"A", body))
            self._compact(b"".join(parts))
            self._snapshot = snapshot
            self.generation += 1

    def _compact(self, data: bytes) -> None:
        """Replace the file with ``data`` (atomically: a new file, renamed over it)."""
        fresh = self.path.with_name(self.path.name + ".compact")
        try:
            write_synced(fresh, data, os.O_TRUNC)
            os.replace(fresh, self.path)
            new_fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW)
        except OSError as exc:
            fresh.unlink(missing_ok=True)  # a full disk: the old file is still whole
            raise JournalError(f"cannot compact the journal {self.path}: {exc}") from exc
        os.close(self._fd)
        self._fd = new_fd
        self._size = len(data)

    # --- reading ----------------------------------------------------------------------

    @property
    def broken(self) -> bool:
        """True once a write could not be rolled back or an fsync failed: the journal
        takes no more writes until it is opened again."""
        return self._broken is not None

    @property
    def replay_hash(self) -> str:
        """The replay hash after the last handled message (hex)."""
        return self._chain.hex()

    def latest_snapshot(self) -> Snapshot | None:
        return self._snapshot

    def history(self) -> Iterator[Snapshot | Entry | Repair | Batch]:
        """What replay needs, read at once: the snapshot the file starts with (if any),
        then the handled messages in the order they were handled (failed ones
        included), each batch's :class:`Batch` after its messages (the replay hash), with
        the repair records where ``airssys journal repair`` left them."""
        return iter(self.read_history().items)

    def read_history(self, offset: int = 0, accepted: dict[int, Any] | None = None) -> History:
        """:meth:`history` from byte ``offset`` on (where an earlier read ended, with the
        accepted messages it had not seen handled): a replay catching up reads only
        what was written since."""
        with self._lock:  # the bytes only: the writer waits for no scan
            generation = self.generation
            if offset:
                data = os.pread(self._fd, max(0, self._size - offset), offset)
            else:
                data = os.pread(self._fd, self._size, 0)
        found = scan(data, 0 if offset else len(MAGIC))
        items: list[Snapshot | Entry | Repair | Batch] = []
        accepted = {} if accepted is None else accepted
        for record in found.records:
            kind, body = record.kind, record.value
            if kind == "S":
                items.append(Snapshot(*body))
            elif kind == "A":
                accepted[body[0]] = body
            elif kind == "B":
                for row in body.rows:
                    seq, outcome, reply, inputs, effects = row[:5]
                    if len(row) == 5:
                        message = accepted.pop(seq, None)
                        if message is None:
                            continue
                        _seq, sender, message_kind, payload, correlation = message
                    else:
                        sender, message_kind, payload, correlation = row[5:]
                    items.append(
                        Entry(
                            seq, sender, message_kind, payload, correlation,
                            outcome, reply, inputs, effects, b"",
                        )
                    )  # fmt: skip
                items.append(body)  # the hash after the batch, checked by replay
            elif kind == "H":
                for seq, outcome, reply, inputs, effects, head in body:
                    message = accepted.pop(seq, None)
                    if message is None:
                        continue
                    _seq, sender, message_kind, payload, correlation = message
                    items.append(
                        Entry(
                            seq, sender, message_kind, payload, correlation,
                            outcome, reply, inputs, effects, head,
                        )
                    )  # fmt: skip
            elif kind == "R":
                items.append(Repair.of(body))
        end = offset + (found.records[-1].end if found.records else (0 if offset else len(MAGIC)))
        return History(items, max(end, offset), accepted, generation)

    def handled(self) -> Iterator[Entry]:
        """Handled messages after the snapshot (if any), in the order they were handled
        (failed ones included)."""
        for item in self.history():
            if isinstance(item, Entry):
                yield item

    def pending(self) -> list[Accepted]:
        """Accepted messages not handled yet, in order."""
        with self._lock:
            return [Accepted(seq, *self._pending[seq]) for seq in sorted(self._pending)]

    def reopen(self) -> Journal:
        """Close this journal and open it again (a broken one, at a restart)."""
        self.close()
        return Journal(self.path, fsync=self.fsync)

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            fd, self._fd = self._fd, -1
        if self.fsync == "batch":
            _SYNCER.detach(self)
        with contextlib.suppress(OSError):
            os.fdatasync(fd)  # what the syncer had not synced yet
        os.close(fd)
        os.close(self._lock_fd)
