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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._logging import get_logger, truncate
from ..errors import AirssysError, ExecutionError, HandlerError
from ..manifest import DurabilitySpec
from ..messages import Callback, Envelope
from ..runtime import ReplayDivergence, decode_inputs, encode_inputs
from ._journal import GENESIS, Accepted, Handled, Journal, Repair, chain

if TYPE_CHECKING:
    from ..runtime import ComponentInstance

__all__ = ("Durable", "ReplayDivergence", "journal_path")

_log = get_logger("airssys.durability")


def journal_path(data_dir: Path, system: str, address: str) -> Path:
    """``<data dir>/journal/<system>/<address, quoted>.journal``."""
    return data_dir / "journal" / system / (urllib.parse.quote(address, safe="") + ".journal")


class Durable:
    """One durable address: its journal, across every incarnation of its actor."""

    def __init__(self, journal: Journal, spec: DurabilitySpec, address: str) -> None:
        self.journal = journal
        self.spec = spec
        self.address = address
        self._since_snapshot = 0

    # --- accepting -------------------------------------------------------------------

    def accept(self, envelope: Envelope) -> None:
        """The mailbox hook: journal a message before it is queued."""
        if envelope.seq:
            return  # journaled already (a redelivery)
        message = envelope.message
        if type(message) is bytes:
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

    def replay(self, instance: ComponentInstance) -> int:
        """Bring a fresh instance to the journal's state; the messages replayed."""
        recorder = instance.recorder
        assert recorder is not None
        journal = self.journal
        head = GENESIS
        snapshot = journal.latest_snapshot()
        if snapshot is not None:
            if not instance.has_snapshot:
                raise ReplayDivergence(
                    f"the journal of {self.address} starts at a snapshot, but this version "
                    "of the component does not export airssys:component/snapshot"
                )
            instance.restore(snapshot.state)
            head = snapshot.chain
        count = 0
        repaired: Repair | None = None  # after a repair: replies may differ
        differed = 0
        for entry in journal.history():
            if isinstance(entry, Repair):
                repaired, head = entry, entry.chain
                continue
            if entry.outcome != "failed":
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
                if (outcome, reply, effects) != (entry.outcome, entry.reply, entry.effects):
                    if repaired is not None:
                        differed += 1
                    else:
                        what = (
                            f"outcome {outcome} where {entry.outcome} was recorded"
                            if outcome != entry.outcome
                            else "another reply"
                            if reply != entry.reply
                            else "other host calls"
                        )
                        raise ReplayDivergence(
                            f"replaying message {entry.seq} into {self.address} diverged: "
                            f"{what}. If the component changed, run the version that wrote the "
                            "journal (airssys rollback); `airssys journal check` shows the journal"
                        )
                count += 1
            head = chain(head, entry.seq, entry.outcome, entry.reply, entry.effects)
            if head != entry.chain:
                raise ReplayDivergence(
                    f"the journal of {self.address} is inconsistent at message {entry.seq} "
                    f"(its replay hash does not match): see `airssys journal check "
                    f"{journal.path}`"
                )
        if repaired is not None:
            _log.warning(
                "replayed a repaired journal: the state lacks the messages the repair lost",
                address=self.address,
                lost=_seqs(repaired.lost),
                replies_differed=differed,
            )
        recorder.begin()
        if count:
            _log.info("replayed the journal", address=self.address, messages=count)
        return count

    # --- after a message, after a batch --------------------------------------------------

    def finish(
        self, instance: ComponentInstance, seq: int, outcome: tuple[bool, Any] | None
    ) -> Handled:
        """What message ``seq`` did: its host calls (the recorder's) and its
        ``(ok, value)`` outcome, or None when it killed the instance."""
        recorder = instance.recorder
        assert recorder is not None
        inputs, effects = recorder.finish()
        if outcome is None:
            return Handled(seq, "failed", None, encode_inputs(inputs), effects)
        ok, value = outcome
        if ok:
            return Handled(seq, "ok", _reply_bytes(value), encode_inputs(inputs), effects)
        reply = str(value).encode("utf-8", "replace")
        return Handled(seq, "error", reply, encode_inputs(inputs), effects)

    def record(self, handled: list[Handled], instance: ComponentInstance) -> None:
        self.journal.record(handled)  # fsynced as the journal's policy says
        every = self.spec.snapshot_every
        if every and instance.has_snapshot and instance.alive:
            self._since_snapshot += len(handled)
            if self._since_snapshot >= every:
                self._since_snapshot = 0
                self.journal.snapshot(handled[-1].seq, instance.snapshot())

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
