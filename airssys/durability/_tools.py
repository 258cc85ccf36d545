"""Look at a journal and mend it: ``check``, ``inspect`` and ``repair``.

What ``airssys journal check|inspect|repair`` runs (and Python code may call):

* :func:`check_journal` reads a journal without changing it: its whole records, the
  damaged regions (unreadable bytes with whole records after them), a torn tail
  (unreadable bytes at the end: a write cut short, cut off at the next open), and
  the replay-hash chain recomputed record by record;
* :func:`inspect_journal` lists its records;
* :func:`repair_journal` takes the journal's writer lock (so no system is writing
  it), copies the file aside, and writes a new one with every whole record kept and,
  in place of each damaged region, a repair record (:class:`~._journal.Repair`)
  naming what was lost: accepted messages whose records are gone (by sequence
  number; never handled, never replayed) and messages whose handling record is gone
  (handled again, like the messages a killed process leaves). The hash chain starts
  again from each repair, so the next start replays what is left without a
  divergence; the replies replayed after a repair may differ from those recorded
  (the state lacks the lost messages), and the start logs how many did.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from ..errors import JournalError
from ._journal import (
    GENESIS,
    MAGIC,
    Batch,
    Damage,
    Record,
    Repair,
    _accept_body,
    _frame,
    _pack_rows,
    chain,
    lock_journal,
    scan,
    write_synced,
)

__all__ = (
    "JournalReport",
    "RecordInfo",
    "RepairReport",
    "check_journal",
    "inspect_journal",
    "repair_journal",
)


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """One record as ``inspect`` shows it."""

    offset: int
    size: int
    kind: str
    """``accepted``, ``handled``, ``snapshot`` or ``repair``."""
    seqs: tuple[int, ...]
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "size": self.size,
            "kind": self.kind,
            "seqs": list(self.seqs),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class JournalReport:
    """What ``check`` found."""

    path: Path
    size: int
    records: int
    accepted: int
    handled: int
    pending: tuple[int, ...]
    snapshot: int | None
    """The sequence number the snapshot at the start of the file covers, if any."""
    damaged: tuple[Damage, ...]
    tail: Damage | None
    chain_breaks: tuple[int, ...]
    """Messages whose recorded replay hash does not follow from the one before."""
    repairs: tuple[Repair, ...]
    replay_hash: str

    @property
    def ok(self) -> bool:
        """No damage and an unbroken hash chain (a torn tail is no damage)."""
        return not self.damaged and not self.chain_breaks

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "size": self.size,
            "records": self.records,
            "accepted": self.accepted,
            "handled": self.handled,
            "pending": list(self.pending),
            "snapshot": self.snapshot,
            "damaged": [{"offset": d.offset, "size": d.size} for d in self.damaged],
            "tail": None
            if self.tail is None
            else {"offset": self.tail.offset, "size": self.tail.size},
            "chain_breaks": list(self.chain_breaks),
            "repairs": [
                {
                    "offset": r.offset,
                    "size": r.size,
                    "lost": list(r.lost),
                    "redelivered": list(r.redelivered),
                }
                for r in self.repairs
            ],
            "replay_hash": self.replay_hash,
        }


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What ``repair`` did: the copy of the original, the repairs written, what is kept."""

    path: Path
    backup: Path | None
    """The original, copied aside (None: nothing was damaged, nothing changed)."""
    repairs: tuple[Repair, ...]
    kept: int
    """Whole records kept."""
    tail_cut: Damage | None = None

    @property
    def lost(self) -> tuple[int, ...]:
        return tuple(seq for repair in self.repairs for seq in repair.lost)

    @property
    def redelivered(self) -> tuple[int, ...]:
        return tuple(seq for repair in self.repairs for seq in repair.redelivered)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "backup": None if self.backup is None else str(self.backup),
            "kept": self.kept,
            "lost": list(self.lost),
            "redelivered": list(self.redelivered),
            "snapshot_lost": any(r.snapshot_lost for r in self.repairs),
            "regions": [{"offset": r.offset, "size": r.size} for r in self.repairs],
        }


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc}") from exc
    if not data.startswith(MAGIC):
        raise JournalError(f"{path} is not an airssys journal (no {MAGIC!r} header)")
    return data


def check_journal(path: str | os.PathLike[str]) -> JournalReport:
    """Read a journal without changing it: records, damage, a torn tail, the hash chain."""
    path = Path(path)
    data = _read(path)
    found = scan(data)
    accepted: set[int] = set()
    handled: set[int] = set()
    breaks: list[int] = []
    repairs: list[Repair] = []
    snapshot: int | None = None
    head = GENESIS
    after_damage = False
    damage_at = [d.offset for d in found.damaged]
    for record in found.records:
        if damage_at and record.offset > damage_at[0]:
            damage_at.pop(0)
            after_damage = True  # the chain cannot be followed across unreadable bytes
        if record.kind == "A":
            accepted.add(record.value[0])
        elif record.kind == "S":
            snapshot, head = record.value[0], record.value[2]
        elif record.kind == "R":
            repair = Repair.of(record.value)
            repairs.append(repair)
            head, after_damage = repair.chain, False
        elif record.kind == "B":
            batch: Batch = record.value
            for row in batch.rows:
                handled.add(row[0])
                if len(row) > 5:  # an ask, accepted in this record
                    accepted.add(row[0])
            if not after_damage and batch.step(head) != batch.head:
                breaks.append(batch.rows[0][0])
            head, after_damage = batch.head, False
        elif record.kind == "H":
            for seq, outcome, reply, _inputs, effects, stored in record.value:
                handled.add(seq)
                if not after_damage and chain(head, seq, outcome, reply, effects) != stored:
                    breaks.append(seq)
                head, after_damage = stored, False
    return JournalReport(
        path=path,
        size=len(data),
        records=len(found.records),
        accepted=len(accepted),
        handled=len(handled),
        pending=tuple(sorted(accepted - handled)),
        snapshot=snapshot,
        damaged=tuple(found.damaged),
        tail=found.tail,
        chain_breaks=tuple(breaks),
        repairs=tuple(repairs),
        replay_hash=head.hex(),
    )


def _info(record: Record) -> RecordInfo:
    size = record.end - record.offset
    value = record.value
    if record.kind == "A":
        seq, sender, kind, payload, correlation = value
        detail = f"{kind} from {sender or '-'}, {len(payload)} bytes" + (
            f", correlation {correlation}" if correlation else ""
        )
        return RecordInfo(record.offset, size, "accepted", (seq,), detail)
    if record.kind in ("B", "H"):
        rows = [(row[0], row[1]) for row in (value.rows if record.kind == "B" else value)]
        outcomes: dict[str, int] = {}
        for _seq, outcome in rows:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        detail = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
        return RecordInfo(record.offset, size, "handled", tuple(s for s, _ in rows), detail)
    if record.kind == "S":
        detail = f"state after message {value[0]}, {len(value[1])} bytes"
        return RecordInfo(record.offset, size, "snapshot", (value[0],), detail)
    repair = Repair.of(value)
    detail = (
        f"repaired {repair.size} unreadable bytes at offset {repair.offset}: "
        f"{len(repair.lost)} messages lost, {len(repair.redelivered)} handled again"
        + (", the snapshot lost" if repair.snapshot_lost else "")
    )
    return RecordInfo(record.offset, size, "repair", repair.lost, detail)


def inspect_journal(path: str | os.PathLike[str]) -> list[RecordInfo]:
    """Every whole record of a journal, in file order."""
    return [_info(record) for record in scan(_read(Path(path))).records]


@dataclass(slots=True)
class _Region:
    damage: Damage
    lost: list[int] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)


def repair_journal(path: str | os.PathLike[str]) -> RepairReport:
    """Keep every whole record, mark each damaged region with a repair record, and
    start the hash chain again there (see the module's docs). Refused while a system
    writes the journal (:class:`~airssys.errors.JournalLocked`)."""
    path = Path(path)
    lock = lock_journal(path)
    try:
        data = _read(path)
        found = scan(data)
        if not found.damaged:
            if found.tail is not None:  # what the next open would do anyway
                with open(path, "r+b") as file:
                    file.truncate(found.tail.offset)
            kept = len(found.records)
            return RepairReport(path, None, (), kept, found.tail)
        backup = path.with_name(
            f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        )
        _write_new(backup, data)
        new, repairs = _repaired(found.records, [_Region(d) for d in found.damaged])
        _replace(path, new)
        return RepairReport(path, backup, tuple(repairs), len(found.records), found.tail)
    finally:
        os.close(lock)


def _repaired(records: list[Record], regions: list[_Region]) -> tuple[bytes, list[Repair]]:
    """The new file: the records kept, a repair record for each region, the chain
    recomputed from the first repair on."""
    first = records[0] if records else None
    snapshot = first.value if first is not None and first.kind == "S" else None
    accepted = {r.value[0]: r.offset for r in records if r.kind == "A"}
    accepted.update(
        (row[0], r.offset) for r in records if r.kind == "B" for row in r.value.rows if len(row) > 5
    )
    handled = {row[0] for r in records if r.kind == "H" for row in r.value}
    handled.update(row[0] for r in records if r.kind == "B" for row in r.value.rows)
    base = snapshot[0] if snapshot is not None else 0
    known = set(accepted) | handled
    snapshot_lost = (
        snapshot is None and regions[0].damage.offset == len(MAGIC) and min(known, default=1) > 1
    )
    if snapshot_lost:
        base = min(known) - 1  # what came before is in the unreadable snapshot
    top = max(known | {base})
    last_handled = max(handled, default=0)

    def region_after(offset: int) -> _Region:
        return next((g for g in regions if g.damage.offset > offset), regions[-1])

    ordered = sorted(accepted)

    def region_of_gap(seq: int) -> _Region:
        """The region after the last accepted record before ``seq``."""
        at = bisect.bisect_left(ordered, seq)
        return region_after(accepted[ordered[at - 1]] if at else 0)

    lost = {seq for seq in range(base + 1, top + 1) if seq not in accepted}
    for seq in sorted(lost):
        region_of_gap(seq).lost.append(seq)
    for seq in sorted(set(accepted) - handled):
        if seq < last_handled:  # a later message was handled: its own record is gone
            region_after(accepted[seq]).redelivered.append(seq)

    parts = [MAGIC]
    repairs: list[Repair] = []
    head = GENESIS
    rebuilt = False
    pending = list(regions)
    for record in records:
        while pending and pending[0].damage.offset < record.offset:
            region = pending.pop(0)
            anchor = hashlib.sha256(
                b"airssys-journal-repair" + head + cbor2.dumps([region.damage.offset, region.lost])
            ).digest()
            repair = Repair(
                region.damage.offset,
                region.damage.size,
                tuple(region.lost),
                tuple(region.redelivered),
                snapshot_lost and not repairs,
                anchor,
            )
            repairs.append(repair)
            parts.append(_frame(b"R", repair.body()))
            head, rebuilt = anchor, True
        kind, value = record.kind, record.value
        if kind == "S":
            head = value[2]
        elif kind == "R":
            head = value["chain"]
        elif kind == "B":
            kept = [row for row in value.rows if row[0] not in lost]
            if not kept:
                continue
            if rebuilt or len(kept) < len(value.rows):
                packed = _pack_rows(kept)
                head = hashlib.sha256(head + packed).digest()
                parts.append(_frame(b"B", head + packed))
                rebuilt = True  # the records after it follow this head
            else:
                head = value.head
                parts.append(_frame(b"B", value.head + value.packed))
            continue
        elif kind == "H":
            rows = [row for row in value if row[0] not in lost]
            if rebuilt:
                for row in rows:
                    head = row[5] = chain(head, row[0], row[1], row[2], row[4])
            elif rows:
                head = rows[-1][5]
            if not rows:
                continue
            parts.append(_frame(b"H", cbor2.dumps(rows)))
            continue
        parts.append(_frame(kind.encode(), _body(record)))
    assert not pending, "damage after the last whole record is a torn tail, not a region"
    return b"".join(parts), repairs


def _body(record: Record) -> bytes:
    value = record.value
    if record.kind == "A":
        return _accept_body(*value)
    if record.kind == "R":
        return Repair.of(value).body()
    return cbor2.dumps(value)


def _write_new(path: Path, data: bytes) -> None:
    try:
        write_synced(path, data)
    except OSError as exc:
        raise JournalError(f"cannot write {path}: {exc}") from exc


def _replace(path: Path, data: bytes) -> None:
    fresh = path.with_name(path.name + ".repair")
    fresh.unlink(missing_ok=True)
    try:
        _write_new(fresh, data)
        os.replace(fresh, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        fresh.unlink(missing_ok=True)
        raise JournalError(f"cannot replace the journal {path}: {exc}") from exc
