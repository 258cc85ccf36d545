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
  ``INLINE_MAX_MS`` (10 ms), so the worst stall is short; ``thread`` otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..broker import Callback
from ..codec import codec_of
from ..errors import (
    CodecError,
    ExecutionError,
    HandlerError,
    InstanceDead,
    InvalidName,
    PayloadTooLarge,
)
from ..runtime import Component, ComponentInstance, Limits, Runtime
from ._actor import Actor
from ._mailbox import Envelope

__all__ = (
    "HEALTH",
    "INLINE_MAX_MS",
    "ComponentActor",
    "ComponentHealth",
    "Execution",
    "resolve_execution",
)

Execution = Literal["auto", "thread", "inline"]
INLINE_MAX_MS: Final = 10.0
Outcome = tuple[bool, Any]  # (ok, reply) or (False, exception for the asker)


class _Health:
    def __repr__(self) -> str:
        return "HEALTH"


HEALTH: Final = _Health()
"""Ask a ComponentActor this to get a :class:`ComponentHealth` through its mailbox."""


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    address: str
    component: str
    alive: bool
    calls: int
    fuel_used_total: int
    restarts: int
    queued: int


class _BrokerHost:
    """The instance's Host: messaging imports go through the broker (any thread)."""

    __slots__ = ("_address", "_broker")

    def __init__(self, broker: Any, address: str) -> None:
        self._broker = broker
        self._address = address

    def self_address(self) -> str:
        return self._address

    def send(self, to: str, payload: bytes) -> None:
        self._broker.send_from(self._address, to, bytes(payload))

    def publish(self, topic: str, payload: bytes) -> None:
        self._broker.publish_from(self._address, topic, bytes(payload))

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        return str(self._broker.request_from(self._address, to, bytes(payload), timeout_ms))


def _run_batch(
    instance: ComponentInstance, batch: list[Envelope], health: Any
) -> tuple[list[Outcome], BaseException | None]:
    """Handle envelopes in order; stop at the first failure that kills the instance.

    Never raises: an error that fails one message becomes that message's outcome;
    anything else (a trap, or an exception nobody foresaw) ends the batch as the
    failure, with the outcomes of the messages that ran before it.
    """
    outcomes: list[Outcome] = []
    append = outcomes.append
    for envelope in batch:
        message = envelope.message
        try:
            if type(message) is bytes:
                ok, value = instance.handle_message_raw(envelope.sender or "", message)
                append((True, value) if ok else (False, HandlerError(str(value))))
            elif isinstance(message, Callback):
                instance.handle_callback(message.correlation_id, message.reply)
                append((True, None))
            elif message is HEALTH:
                append((True, health()))
            else:
                append((False, CodecError(_not_bytes(message))))
        except (HandlerError, PayloadTooLarge, CodecError, InvalidName) as exc:
            append((False, exc))
        except (ExecutionError, InstanceDead) as exc:
            return outcomes, exc
        except Exception as exc:  # a bug of ours or the host's: fail the actor, lose nothing
            return outcomes, exc
    return outcomes, None


def resolve_execution(execution: Execution, limits: Limits) -> Execution:
    if execution == "auto":
        return "inline" if limits.timeout_ms <= INLINE_MAX_MS else "thread"
    if execution not in ("thread", "inline"):
        raise ValueError(f"execution must be 'auto', 'thread' or 'inline', got {execution!r}")
    return execution


def _not_bytes(message: Any) -> str:
    return (
        f"a component takes bytes with a multicodec prefix, not {type(message).__name__}; "
        "encode it first (airssys.codec.encode(value, 'json'))"
    )


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
    ) -> None:
        self.component = component
        self.limits = limits
        self.execution: Execution = resolve_execution(execution, limits)
        self._runtime = runtime
        self._executor = executor
        self._instance: ComponentInstance | None = None
        self._job: concurrent.futures.Future[Any] | None = None

    async def on_start(self) -> None:
        host = _BrokerHost(self.system.broker, self.ref.address)
        self._instance = self._runtime.instantiate(
            self.component, limits=self.limits, host=host, name=self.ref.address
        )

    def check_message(self, message: Any) -> None:
        """Refuse what the component could never take, before it is queued."""
        if isinstance(message, Callback) or message is HEALTH:
            return
        if type(message) is not bytes:
            raise CodecError(_not_bytes(message))
        codec_of(message)
        instance = self._instance
        lane = instance.lane if instance is not None else "bulk"
        self.limits.check_payload(len(message), self.ref.address, lane)

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
        )

    async def on_batch(self, batch: list[Envelope]) -> tuple[list[Outcome], BaseException | None]:
        instance = self._instance
        assert instance is not None
        if self.execution == "inline" or self._executor is None:
            return _run_batch(instance, batch, self._health)
        job = self._executor.submit(_run_batch, instance, batch, self._health)
        self._job = job
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            # killed mid-batch: the wasm call ends at its deadline; close the Store then
            job.add_done_callback(lambda _: instance.close())
            self._instance = None
            raise
        finally:
            self._job = None

    async def on_stop(self) -> None:
        instance, self._instance = self._instance, None
        if instance is not None:
            instance.close()
