"""A durable component at one address: its journal, replay and redelivery.

``[durability] journal = true`` in a component's manifest (or its deployment
entry) makes the ComponentActor at that address durable:

* **accepted means kept**: a message is written to the journal before it is
  queued in the mailbox (``Mailbox.on_accept``, installed before the component is
  replayed, so what arrives while it starts is kept too; a component's ``send``
  writes at the call, before the guest is told it was sent), with a sequence number.
  A message the journal cannot take (a full disk) is refused to its sender;
* **handled means recorded**: after each batch, one transaction marks what each
  message did: outcome, reply, the results of the host calls it made (its
  nondeterministic inputs: storage reads, HTTP responses, process output, request
  ids, the replies to its requests as callback messages), the digest of the calls
  (its effects) and the replay-hash chain;
* **a fresh instance is replayed** (after a trap, a restart of the process, or a
  hot update) from the latest snapshot plus the handled messages after it, with
  every host call answered from the journal and suppressed (nothing is sent,
  written, fetched or run again). A message that killed its instance is recorded
  ``failed`` and skipped. A replay that does not give the recorded outcome, reply,
  calls or hash fails the start with :class:`ReplayDivergence`;
* **nothing accepted is lost**: at every start (a new process, or a restart after a
  failure), the messages the journal holds as accepted but not handled and not
  queued (the process was killed, or the failed incarnation had them in hand) are
  queued again, in order, before anything new; each is handled once (dedupe by
  sequence number: a handled one is never delivered again). Askers whose message
  was in hand got an error, never a reply;
* **snapshots** (components exporting ``airssys:component/snapshot``): every
  ``snapshot-every`` handled messages the state is saved and the journal before it
  compacted, so replay is bounded.

What is not covered: host calls made by the message in flight when the process
was killed may run again when it is redelivered (its effects are at least once;
the component's state sees it exactly once). WASI's wall clock and randomness are
recorded (the runtime's deterministic WASI, ``deterministic=True``); the monotonic
clock is not: a component whose replies depend on it diverges on replay, and says so.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._logging import get_logger, truncate
from ..errors import AirssysError, ExecutionError, HandlerError
from ..manifest import DurabilitySpec
from ..messages import Callback, Envelope
from ..runtime import ReplayDivergence, decode_inputs, encode_inputs
from ._journal import (
    GENESIS,
    WITH_RECORD,
    Accepted,
    Batch,
    Entry,
    Handled,
    Journal,
    Repair,
    Snapshot,
    chain,
)

if TYPE_CHECKING:
    from ..runtime import ComponentInstance

__all__ = ("Durable", "ReplayDivergence", "Replayed", "journal_path")

_log = get_logger("airssys.durability")


def journal_path(data_dir: Path, system: str, address: str) -> Path:
    """``<data dir>/journal/<system>/<address, quoted>.journal``."""
    return data_dir / "journal" / system / (urllib.parse.quote(address, safe="") + ".journal")


@dataclass(frozen=True, slots=True)
class Replayed:
    """Where a replay ended: the byte offset in the journal, the replay hash there, the
    snapshot it started from, the repair it passed (if any), the accepted messages it
    had not seen handled, the journal's generation (its compactions), and how many
    messages this replay ran."""

    offset: int
    head: bytes
    snapshot: int | None
    repaired: Repair | None
    accepted: dict[int, Any]
    generation: int
    messages: int = 0


class Durable:
    """One durable address: its journal, across every incarnation of its actor."""

    def __init__(self, journal: Journal, spec: DurabilitySpec, address: str) -> None:
        self.journal = journal
        self.spec = spec
        self.address = address
        self._since_snapshot = 0
        self.unrecorded: list[Handled] = []
        """Handled messages whose record could not be written yet (a full disk)."""

    # --- accepting -------------------------------------------------------------------

    def accept(self, envelope: Envelope) -> None:
        """The mailbox hook: journal a message before it is queued."""
        if envelope.seq:
            return  # journaled already (a redelivery)
        message = envelope.message
        if type(message) is bytes:
            if envelope.reply is not None:
                # an ask: its acknowledgement is its reply, sent once its handling record
                # is written; it is written with that record (one write per batch)
                envelope.seq = WITH_RECORD
                return
            envelope.seq = self.journal.accept(envelope.sender, "message", message)
        elif isinstance(message, Callback):
            reply = message.reply
            if isinstance(reply, bytes):
                envelope.seq = self.journal.accept(
                    envelope.sender, "callback", reply, message.correlation_id
                )
            else:
                envelope.seq = self.journal.accept(
                    envelope.sender,
                    "callback-error",
                    str(reply).encode("utf-8", "replace"),
                    message.correlation_id,
                )

    def pending(self) -> list[Envelope]:
        """Accepted, never handled (a killed process): envelopes to queue again."""
        envelopes = []
        for row in self.journal.pending():
            envelope = Envelope(_message_of(row), row.sender)
            envelope.seq = row.seq
            envelopes.append(envelope)
        return envelopes

    # --- replay ------------------------------------------------------------------------

    def replay(self, instance: ComponentInstance, since: Replayed | None = None) -> Replayed:
        """Bring a fresh instance to the journal's state: the latest snapshot, then the
        handled messages after it. ``since``: where an earlier replay of this instance
        ended; only what was handled after it is replayed (a hot update catching up at
        the switch)."""
        recorder = instance.recorder
        assert recorder is not None
        journal = self.journal
        if since is not None and since.generation != journal.generation:
            raise ReplayDivergence(
                f"the journal of {self.address} was compacted (a snapshot) since this "
                "version replayed it"
            )
        history = journal.read_history(
            0 if since is None else since.offset, None if since is None else dict(since.accepted)
        )
        head = GENESIS if since is None else since.head
        repaired = None if since is None else since.repaired  # after it: replies may differ
        start = None if since is None else since.snapshot
        count = differed = 0
        for item in history.items:
            if isinstance(item, Snapshot):
                if not instance.has_snapshot:
                    raise ReplayDivergence(
                        f"the journal of {self.address} starts at a snapshot, but this version "
                        "of the component does not export airssys:component/snapshot"
                    )
                instance.restore(item.state)
                head, start = item.chain, item.seq
                continue
            if isinstance(item, Repair):
                repaired, head = item, item.chain
                continue
            if isinstance(item, Batch):
                head = item.step(head)
                if head != item.head:
                    raise ReplayDivergence(
                        f"the journal of {self.address} is inconsistent at the batch ending "
                        f"with message {item.rows[-1][0]} (its replay hash does not match): "
                        f"see `airssys journal check {journal.path}`"
                    )
                continue
            if item.outcome != "failed":
                differed += self._replay_one(instance, item, repaired)
                count += 1
            if item.chain:  # a per-message step (an H record, the format before B)
                head = chain(head, item.seq, item.outcome, item.reply, item.effects)
                if head != item.chain:
                    raise ReplayDivergence(
                        f"the journal of {self.address} is inconsistent at message {item.seq} "
                        f"(its replay hash does not match): see `airssys journal check "
                        f"{journal.path}`"
                    )
        recorder.begin()
        if repaired is not None and count:
            _log.warning(
                "replayed a repaired journal: the state lacks the messages the repair lost",
                address=self.address,
                lost=_seqs(repaired.lost),
                replies_differed=differed,
            )
        elif count:
            _log.info("replayed the journal", address=self.address, messages=count)
        return Replayed(
            history.end, head, start, repaired, history.accepted, history.generation, count
        )

    def _replay_one(
        self, instance: ComponentInstance, entry: Entry, repaired: Repair | None
    ) -> int:
        """Replay one handled message; 1 when (after a repair) it answered otherwise."""
        recorder = instance.recorder
        assert recorder is not None
        recorder.begin(decode_inputs(entry.inputs), strict=repaired is None)
        try:
            outcome, reply = _handle(
                instance, entry.kind, entry.sender, entry.payload, entry.correlation
            )
        except ReplayDivergence as exc:
            if repaired is None:
                raise
            raise ReplayDivergence(
                f"{exc} (message {entry.seq}, after the journal was repaired at offset "
                f"{repaired.offset}: what this message did depends on the lost messages "
                f"{_seqs(repaired.lost + repaired.redelivered)})"
            ) from exc
        _inputs, effects = recorder.finish()
        if (outcome, reply, effects) == (entry.outcome, entry.reply, entry.effects):
            return 0
        if repaired is not None:
            return 1
        what = (
            f"outcome {outcome} where {entry.outcome} was recorded"
            if outcome != entry.outcome
            else "another reply"
            if reply != entry.reply
            else "other host calls"
        )
        raise ReplayDivergence(
            f"replaying message {entry.seq} into {self.address} diverged: {what}. A "
            "version that answers otherwise cannot take over this journal: run the "
            "version that wrote it (airssys rollback), or give the component the snapshot "
            "export so that its state is handed over; `airssys journal check` shows the "
            "journal"
        )

    def hand_over(self, old: ComponentInstance, new: ComponentInstance) -> None:
        """At a hot update's switch: the serving version's state, as its snapshot, into
        the new version, and into the journal (compacted: the new version's replays
        start there, never replaying what the old version handled)."""
        state = old.snapshot()
        new.restore(state)
        self.journal.snapshot(self.journal.last_handled, state)
        self._since_snapshot = 0

    # --- after a message, after a batch --------------------------------------------------

    def finish(
        self, instance: ComponentInstance, envelope: Envelope, outcome: tuple[bool, Any] | None
    ) -> Handled:
        """What ``envelope`` did: its host calls (the recorder's) and its ``(ok, value)``
        outcome, or None when it killed the instance."""
        recorder = instance.recorder
        assert recorder is not None
        inputs, effects = recorder.finish()
        recorded = encode_inputs(inputs) if inputs else b""
        seq = envelope.seq
        accepted = (
            (envelope.sender, "message", envelope.message, None) if seq == WITH_RECORD else None
        )
        if outcome is None:
            return Handled(seq, "failed", None, recorded, effects, accepted)
        ok, value = outcome
        if ok:
            reply = value if value is None or type(value) is bytes else _reply_bytes(value)
            return Handled(seq, "ok", reply, recorded, effects, accepted)
        error = str(value).encode("utf-8", "replace")
        return Handled(seq, "error", error, recorded, effects, accepted)

    def record(self, handled: list[Handled], instance: ComponentInstance) -> None:
        self.journal.record(handled)  # fsynced as the journal's policy says
        every = self.spec.snapshot_every
        if every and instance.has_snapshot and instance.alive:
            self._since_snapshot += len(handled)
            if self._since_snapshot >= every:
                self._since_snapshot = 0
                self.journal.snapshot(self.journal.last_handled, instance.snapshot())

    @property
    def replay_hash(self) -> str:
        return self.journal.replay_hash


def _seqs(seqs: tuple[int, ...], shown: int = 20) -> str:
    """Sequence numbers for a message: the first ``shown``, then how many more."""
    if not seqs:
        return "none"
    more = f" and {len(seqs) - shown} more" if len(seqs) > shown else ""
    return ", ".join(map(str, seqs[:shown])) + more


def _message_of(row: Accepted) -> Any:
    if row.kind == "message":
        return row.payload
    reply: bytes | BaseException = (
        row.payload
        if row.kind == "callback"
        else AirssysError(row.payload.decode("utf-8", "replace"))
    )
    return Callback(row.correlation or "", reply)


def _handle(
    instance: ComponentInstance,
    kind: str,
    sender: str | None,
    payload: bytes,
    correlation: str | None,
) -> tuple[str, bytes | None]:
    """One journaled message, as the journal records its outcome."""
    try:
        if kind == "message":
            ok, value = instance.handle_message_raw(sender or "", payload)
            if ok:
                return "ok", _reply_bytes(value)
            return "error", str(value).encode("utf-8", "replace")
        reply: bytes | BaseException = (
            payload if kind == "callback" else AirssysError(payload.decode("utf-8", "replace"))
        )
        instance.handle_callback(correlation or "", reply)
        return "ok", None
    except HandlerError as exc:
        return "error", str(exc).encode("utf-8", "replace")
    except ExecutionError as exc:
        if isinstance(exc, ReplayDivergence):
            raise
        raise ReplayDivergence(
            f"replay diverged: a message that was handled now kills the instance: "
            f"{truncate(str(exc), 300)}"
        ) from exc


def _reply_bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "replace")
