"""ComponentActor: a WebAssembly component living inside an actor.

One instance (one Store) per actor incarnation. Messages are handled one at a
time, through the runtime's fast path. A trap, timeout or fuel exhaustion fails
the actor; its supervisor restarts it on a fresh Store, so state kept in the
component's linear memory starts over.

Execution: the actor takes up to ``max_batch`` queued messages at once and runs
them in order, either

* ``thread``: on a worker thread. wasm releases the GIL, so components on different
  actors run in parallel on several cores, and a slow component never stalls the
  event loop. One thread hop per batch, not per message: a round trip costs about
  0.1 ms on the 2-vCPU machine this was measured on (bench_messaging), many times
  a small call;
* ``inline``: on the event-loop thread, with no hop. The loop is then blocked for
  as long as the batch runs, which the per-message deadline bounds;
* ``auto`` (the default): ``inline`` when the component's ``timeout-ms`` is at most
  ``INLINE_MAX_MS`` (10 ms), so the worst stall is short. Otherwise adaptive: a
  component starts on a worker thread; once ``PROBATION`` messages in a row each
  took less than ``STALL_BUDGET_MS`` it runs inline, and a batch on the loop
  stops at the first message that takes longer than that, the actor going back
  to the thread (for twice as long a probation each time). So a lone caller of a
  fast component is answered without a thread hop, and a component that turns
  slow costs the loop at most one message's run (bounded by ``timeout-ms``) each
  time it is caught; ``execution="thread"`` never runs wasm on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal

from .._logging import Throttle, get_logger, truncate
from ..broker import ComponentPort, PayloadGate, not_bytes
from ..errors import (
    AirssysError,
    CodecError,
    HandlerError,
    InvalidName,
    JournalError,
    PayloadTooLarge,
    UpdateFailed,
)
from ..messages import HEALTH, Callback, Envelope
from ..observability import ComponentStats
from ..runtime import Component, ComponentInstance, HostServices, Limits, Recorder, Runtime
from ..security import CompiledGrants, Grants, TrustLevel
from ._actor import Actor
from ._loading import Admission

if TYPE_CHECKING:
    from ..durability import Durable, Replayed
    from ..durability._journal import Handled
    from ..manifest import DurabilitySpec
    from ..storage import StagedBackend

__all__ = (
    "INLINE_MAX_MS",
    "PROBATION",
    "STALL_BUDGET_MS",
    "ComponentActor",
    "ComponentHealth",
    "Execution",
    "resolve_execution",
)

Execution = Literal["auto", "thread", "inline"]
INLINE_MAX_MS: Final = 10.0
STALL_BUDGET_MS: Final = 1.0
"""Under ``auto``, the longest a message may run on the event loop before its
component is moved back to a worker thread."""
PROBATION: Final = 256
"""Fast messages in a row (on the thread) before ``auto`` runs a component inline."""
Outcome = tuple[bool, Any]  # (ok, reply) or (False, exception for the asker)
_log = get_logger("airssys.component")
_unrecorded = Throttle(_log, "journal full", burst=3, window=10.0)


# every codec's prefix (one or two bytes): a set lookup instead of the varint parse
# instantiation cost by component digest, learnt from the last start
_INSTANTIATE_COST: dict[str, float] = {}
_INLINE_INSTANTIATE_S: Final = 0.0005


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    address: str
    component: str
    alive: bool
    calls: int
    fuel_used_total: int
    restarts: int
    queued: int
    on_loop: bool
    """True while the component runs on the event loop (inline), False on a thread."""
    trust: str
    """Its trust level: trusted, unknown, or dev (every capability granted)."""
    denials: int
    """Capability denials so far (all incarnations), as the audit log counts them."""


def _run_batch(
    instance: ComponentInstance,
    batch: list[Envelope],
    health: Any,
    stats: ComponentStats,
    stall_budget: float = 0.0,
    stop_when_slow: bool = False,
    durable: Durable | None = None,
    staging: StagedBackend | None = None,
) -> tuple[list[Outcome], BaseException | None, bool]:
    """Handle envelopes in order; stop at the first failure that kills the instance.

    Never raises: an error that fails one message becomes that message's outcome;
    anything else (a trap, or an exception nobody foresaw) ends the batch as the
    failure, with the outcomes of the messages that ran before it.

    With a ``stall_budget`` (seconds), also reports whether the batch ran long: a
    message took longer than the budget by the wall clock, and the thread's CPU
    time confirms that this message itself used more than the budget (so being
    preempted, or waiting for the GIL, does not count). The CPU time of one message
    is bounded from below without reading the clock per message: the batch's CPU
    time so far, less the wall time of the messages before it (each used at most
    its wall time). ``stop_when_slow`` ends the batch there (the rest goes
    back to the mailbox).

    Counts into ``stats`` (handled, errors, traps, and each message's latency when
    its histogram is on): a few integer additions per message.

    For a ``durable`` component, each journaled message's host calls are recorded
    and what it did is written to the journal, one record for the batch (a message
    that killed the instance is recorded ``failed``); its storage writes wait in
    ``staging`` and are stored when it succeeds (a commit that fails kills the
    instance like a trap), dropped when it fails.
    """
    outcomes: list[Outcome] = []
    append = outcomes.append
    clock = time.perf_counter
    cpu_start = time.thread_time() if stall_budget else 0.0
    wall_start = clock()
    slow = False
    errors = 0
    observe = stats.latency.observe if stats.latency is not None else None
    timed = observe is not None or stall_budget
    tracer = stats.tracer
    handled: list[Handled] = []
    recorder = instance.recorder if durable is not None else None
    if staging is not None:
        staging.begin()  # each message's writes wait, and are committed after it
    for envelope in batch:
        message = envelope.message
        if tracer is not None:
            span = tracer.begin(envelope, instance.address, instance.component.name)
            errors_before = errors
        journaled = recorder is not None and envelope.seq != 0  # a health probe is not
        if journaled:
            recorder.begin()  # type: ignore[union-attr]
        started = clock()
        done = len(outcomes)
        try:
            if type(message) is bytes:
                ok, value = instance.handle_message_raw(envelope.sender or "", message)
                if ok:
                    append((True, value))
                else:
                    append((False, HandlerError(str(value))))
                    errors += 1
            elif isinstance(message, Callback):
                instance.handle_callback(message.correlation_id, message.reply)
                append((True, None))
            elif message is HEALTH:
                append((True, health()))
            else:
                append((False, CodecError(not_bytes(message))))
                errors += 1
            if staging is not None and staging.writes:  # its writes, with it or not at all
                if outcomes[-1][0]:
                    staging.commit()
                else:
                    staging.discard()
        except (HandlerError, PayloadTooLarge, CodecError, InvalidName) as exc:
            if staging is not None:
                staging.discard()
            append((False, exc))
            errors += 1
        except Exception as exc:  # a trap, or a bug of ours or the host's: fail the actor
            if staging is not None:
                staging.end()
            del outcomes[done:]  # a commit that failed: its message failed with it
            if tracer is not None:
                tracer.end(*span, "trap", instance.fuel_used)
            if journaled:  # recorded failed: replay skips it
                assert durable is not None
                handled.append(durable.finish(instance, envelope, None))
                with contextlib.suppress(JournalError):  # else all handled again after it
                    durable.record(handled, instance)
            _count(stats, outcomes, errors, trapped=True)
            return outcomes, exc, True
        if journaled:
            assert durable is not None
            handled.append(durable.finish(instance, envelope, outcomes[-1]))
        if tracer is not None:
            outcome = "ok" if errors == errors_before else "error"
            tracer.end(*span, outcome, instance.fuel_used)
        if timed:
            elapsed = clock() - started
            if observe is not None:
                observe(elapsed)
            if stall_budget and ran_long(stall_budget, elapsed, started - wall_start, cpu_start):
                slow = True
                if stop_when_slow:
                    break
    if staging is not None:
        staging.end()
    if handled:
        assert durable is not None
        try:
            durable.record(handled, instance)
        except JournalError:  # a full disk: held, and written later (on_batch)
            durable.unrecorded = handled
    _count(stats, outcomes, errors, trapped=False)
    return outcomes, None, slow


def ran_long(budget: float, elapsed: float, before: float, cpu_start: float) -> bool:
    """A message took ``elapsed`` seconds by the wall clock, more than ``budget``,
    and its own CPU time did too: the batch's CPU time so far (from ``cpu_start``)
    less ``before``, the wall time of the messages before it (each used at most that)."""
    return elapsed > budget and (time.thread_time() - cpu_start) - before > budget


def _count(stats: ComponentStats, outcomes: list[Outcome], errors: int, *, trapped: bool) -> None:
    stats.handled += len(outcomes)
    stats.errors += errors
    if trapped:
        stats.traps += 1


def _close_result(job: concurrent.futures.Future[ComponentInstance]) -> None:
    if not job.cancelled() and job.exception() is None:
        job.result().close()


def resolve_execution(execution: Execution, limits: Limits) -> Execution:
    """``auto`` with a deadline of at most INLINE_MAX_MS is simply ``inline``."""
    if execution == "auto":
        return "inline" if limits.timeout_ms <= INLINE_MAX_MS else "auto"
    if execution not in ("thread", "inline"):
        raise ValueError(f"execution must be 'auto', 'thread' or 'inline', got {execution!r}")
    return execution


class ComponentActor(Actor):
    """Hosts one component. Spawn with ``system.spawn_component``."""

    max_batch = 64

    def __init__(
        self,
        component: Component,
        *,
        runtime: Runtime,
        limits: Limits,
        executor: concurrent.futures.Executor | None,
        execution: Execution = "auto",
        admission: Admission | None = None,
        durability: DurabilitySpec | None = None,
    ) -> None:
        self.component = component
        self.durability = durability
        """Set when the component is durable: its journal's settings."""
        self.durable: Durable | None = None
        self.predecessor: ComponentActor | None = None
        """In a hot update: the version serving the address (set before on_start)."""
        self._replayed: Replayed | None = None
        self._handed_over = False
        self.admission = admission or Admission(
            Grants.none(), TrustLevel.UNKNOWN, "", component.sha256
        )
        self.checks: CompiledGrants | None = None
        self.limits = limits
        self.gate = PayloadGate(self._oversize)
        """What the broker checks before queueing a message here: bytes with a known
        codec prefix, within the payload cap (the instance's ceiling, else _oversize)."""
        self.execution: Execution = resolve_execution(execution, limits)
        self._runtime = runtime
        self._executor = executor
        self._instance: ComponentInstance | None = None
        self._job: concurrent.futures.Future[Any] | None = None
        # auto: where this incarnation runs now, and what it must prove to move inline
        self.inline_now = self.execution == "inline" or executor is None
        self._fast_streak = 0
        self._probation = PROBATION
        self._stall_budget = STALL_BUDGET_MS / 1000.0
        self.stats = ComponentStats(latency=False)  # the cell's own, from on_start
        self._run: Callable[..., tuple[list[Outcome], BaseException | None, bool]] = _run_batch

    async def on_start(self) -> None:
        cell = self.ref._cell
        if cell.stats is None:  # the first incarnation: the cell keeps them after
            cell.stats = ComponentStats(
                latency=self.system.metrics_enabled, tracer=self.system._tracer
            )
        self.stats = cell.stats
        address, admission = self.ref.address, self.admission
        scope = self.system.audit.bind(
            address,
            version=admission.version,
            digest=admission.digest,
            trust=admission.trust.value,
        )
        self.checks = admission.grants.compile(
            address, on_deny=scope, shared_buckets=self.system.policy.shared_buckets
        )
        scope.grants(admission.grants)
        if cell.actor is self:  # (an update's new version gets them when it takes over)
            cell.grants = self.checks
        services = HostServices(
            self.checks,
            self.system.resources,
            self.system.policy,
            admission.trust,
            staged=self.durability is not None,  # a durable message's writes commit with it
        )
        host = ComponentPort(
            self.system.broker, address, self.checks, services, self.stats.host_calls
        )

        durable = self.system.open_journal(address, self.durability) if self.durability else None
        self.durable = durable
        if durable is not None:  # the same execution, each batch recorded in the journal
            self._run = partial(_run_batch, durable=durable, staging=services.staging)
            # journal what arrives from now on, before the replay: a message accepted
            # while the component starts is kept, never only queued
            backlog = self._journal_mailbox(durable)

        def instantiate() -> ComponentInstance:
            started = time.perf_counter()
            instance = self._runtime.instantiate(
                self.component,
                limits=self.limits,
                host=host,
                name=self.ref.address,
                mounts=admission.mounts,
                deterministic=durable is not None,
            )
            _INSTANTIATE_COST[self.component.sha256] = time.perf_counter() - started
            if durable is not None:  # its state: the snapshot and the journal after it
                instance.recorder = Recorder()
                serving = self.predecessor._instance if self.predecessor is not None else None
                if serving is not None and serving.has_snapshot and instance.has_snapshot:
                    self._handed_over = True  # its state comes at the switch (_take_over)
                    return instance
                try:
                    self._replayed = durable.replay(instance)
                except BaseException:
                    instance.close()
                    raise
            return instance

        # a big component (a Python one: ~2 ms) is instantiated on a worker thread so
        # that many spawns never stall the loop; a small one (~40 us) is cheaper inline
        # than a thread hop. Unknown components take the thread the first time.
        cost = _INSTANTIATE_COST.get(self.component.sha256)
        if self._executor is not None and (cost is None or cost > _INLINE_INSTANTIATE_S):
            # one instantiation thread per system: many at once only fight the loop
            # for the GIL (measured: 19 ms stalls with a thread each, 100 spawns)
            job = self.system.resources.instantiator().submit(instantiate)
            try:
                self._instance = instance = await asyncio.wrap_future(job)
            except asyncio.CancelledError:  # the instance, when it comes, has no owner
                job.add_done_callback(_close_result)
                raise
        else:
            self._instance = instance = instantiate()
        self.gate.ceiling = instance.ceiling
        if durable is not None and backlog:
            self.ref._cell.mailbox.requeue(backlog)
            _log.info(
                "redelivering accepted messages that were never handled",
                address=self.ref.address,
                messages=len(backlog),
            )

    async def _take_over(self, old: Actor) -> None:
        """A durable component's update, at the switch: the new version reaches exactly
        the state the serving one has now. With the snapshot export on both, the
        serving version's snapshot is restored into the new one (and compacts the
        journal); otherwise the new version replays what was handled since its start,
        reproducing every recorded reply, or the switch is refused (UpdateFailed)."""
        durable, instance = self.durable, self._instance
        if durable is None or instance is None or not isinstance(old, ComponentActor):
            return
        serving = old._instance
        if serving is None or not serving.alive:
            raise UpdateFailed(f"the serving version of {self.ref.address} has no instance")
        try:
            if self._handed_over:
                durable.hand_over(serving, instance)
                return
            await self.catch_up()
        except AirssysError as exc:
            raise UpdateFailed(
                f"the new version of {self.ref.address} could not take over the serving "
                f"version's state: {truncate(str(exc), 400)}"
            ) from exc

    async def catch_up(self) -> int:
        """In a hot update (a durable component without the snapshot hand-over): replay
        what the serving version handled since this one last replayed (reading only
        what was written since); how many messages that was. Done beside the serving
        version until little is left, so that the switch itself has only the last
        few messages to replay."""
        durable, instance = self.durable, self._instance
        if durable is None or instance is None or self._handed_over:
            return 0
        job = self.system.resources.instantiator().submit(durable.replay, instance, self._replayed)
        self._replayed = await asyncio.wrap_future(job)
        return self._replayed.messages

    def _journal_mailbox(self, durable: Durable) -> list[Envelope]:
        """Make the mailbox journal every message before queueing it, and return what
        the journal holds as accepted but unhandled that is not queued: what a killed
        process left, or what a failed incarnation had in hand (queued again, first)."""
        cell = self.ref._cell
        mailbox = cell.mailbox
        queued = mailbox.envelopes()
        for envelope in queued:  # queued before the hook (a seq: journaled already)
            durable.accept(envelope)
        mailbox.on_accept = durable.accept
        if cell.actor is not self:  # a hot update: the running version has them in hand
            return []
        waiting = {envelope.seq for envelope in queued}
        return [envelope for envelope in durable.pending() if envelope.seq not in waiting]

    def _endpoint_checks(self) -> tuple[PayloadGate | None, CompiledGrants | None]:
        return self.gate, self.checks

    def _oversize(self, size: int) -> None:
        """Past the instance's own ceiling (or with no instance): the payload cap."""
        instance = self._instance
        lane = instance.lane if instance is not None else "bulk"
        self.limits.check_payload(size, self.ref.address, lane)

    def _health(self) -> ComponentHealth:
        instance = self._instance
        return ComponentHealth(
            address=self.ref.address,
            component=self.component.name,
            alive=instance is not None and instance.alive,
            calls=instance.calls if instance else 0,
            fuel_used_total=instance.fuel_used_total if instance else 0,
            restarts=self.ref.restarts,
            queued=self.ref.mailbox.queued,
            on_loop=self.inline_now,
            trust=self.admission.trust.value,
            denials=self.system.audit.denials(self.ref.address),
        )

    async def on_batch(self, batch: list[Envelope]) -> tuple[list[Outcome], BaseException | None]:
        outcomes, failure = await self._handle(batch)
        durable = self.durable
        if durable is not None and durable.unrecorded:
            if failure is None:
                await self._record_later(durable)
            else:  # the instance is gone: its messages are handled again after the restart
                durable.unrecorded = []
        return outcomes, failure

    async def _record_later(self, durable: Durable) -> None:
        """The record of a handled batch could not be written (a full disk): hold its
        replies and take no other batch until it is written, retrying with a backoff.
        A journal that takes no more writes fails the actor (its restart reopens it)."""
        delay = 0.01
        while durable.unrecorded:
            await asyncio.sleep(delay)
            instance = self._instance
            if instance is None:  # stopped meanwhile: handled again at the next start
                durable.unrecorded = []
                return
            try:
                durable.record(durable.unrecorded, instance)
            except JournalError as exc:
                if durable.journal.broken:
                    durable.unrecorded = []
                    raise
                _unrecorded(
                    "unrecorded",
                    event="cannot record handled messages; their replies wait until it can",
                    address=self.ref.address,
                    error=str(exc),
                )
                delay = min(delay * 2, 1.0)
                continue
            durable.unrecorded = []

    async def _handle(self, batch: list[Envelope]) -> tuple[list[Outcome], BaseException | None]:
        instance = self._instance
        assert instance is not None
        run = self._run
        if self.inline_now:
            if self.execution == "inline":
                outcomes, failure, _ = run(instance, batch, self._health, self.stats)
                return outcomes, failure
            outcomes, failure, slow = run(
                instance, batch, self._health, self.stats, self._stall_budget, True
            )
            if slow:  # caught running long on the loop: back to the thread
                self.inline_now = False
                self._fast_streak = 0
                self._probation *= 2
            return outcomes, failure
        assert self._executor is not None
        budget = self._stall_budget if self.execution == "auto" else 0.0
        job = self._executor.submit(run, instance, batch, self._health, self.stats, budget)
        self._job = job
        try:
            outcomes, failure, slow = await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            # killed mid-batch: the wasm call ends at its deadline; close the Store then
            job.add_done_callback(lambda _: self._retire(instance))
            self._instance = None
            self.gate.ceiling = 0
            raise
        finally:
            self._job = None
        if budget:
            if slow:
                self._fast_streak = 0
            else:
                self._fast_streak += len(outcomes)
                if self._fast_streak >= self._probation:
                    self.inline_now = True
        return outcomes, failure

    def _retire(self, instance: ComponentInstance) -> None:
        self.stats.fuel_past += instance.fuel_used_total
        instance.close()

    @property
    def fuel_used(self) -> int:
        """Fuel consumed at this address, every incarnation included."""
        instance = self._instance
        current = instance.fuel_used_total if instance is not None else 0
        return self.stats.fuel_past + current

    async def on_stop(self) -> None:
        instance, self._instance = self._instance, None
        self.gate.ceiling = 0
        if instance is not None:
            self._retire(instance)
