"""The actor system: owns every actor task; nothing runs after it closes."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from os import PathLike
from typing import TYPE_CHECKING, Any

from .._logging import get_logger, truncate
from ..broker import Backpressure, DeadLetter, MessageBroker
from ..errors import ActorDeadError, ActorError, NameTaken
from ..manifest import DurabilitySpec
from ..messages import DEFAULT_ASK_TIMEOUT, HEALTH
from ..names import check_name
from ..observability import (
    ActorSnapshot,
    Health,
    MessageTracer,
    Observation,
    enable_tracing,
    registry_for,
    release_tracing,
)
from ..runtime import Component, Limits, Runtime
from ..security import AuditLog, Policy, TrustLevel
from ..storage import Backend
from ._actor import Actor
from ._cell import ActorCell, Shutdown
from ._component import (
    ComponentActor,
    ComponentHealth,
    Execution,
    resolve_execution,
)
from ._loading import Capabilities, ComponentSource, Loaded, admit, load
from ._observe import health, observe, snapshot
from ._ref import ActorRef
from ._resources import Resources
from ._supervisor import (
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorRef,
    check_shutdown,
)
from ._update import UpdateReport, VersionInfo

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ..durability import Durable, Journal

__all__ = ("ActorSystem", "open_system")

_log = get_logger("airssys.system")


class ActorSystem:
    """Spawns, finds and stops actors. Create it with :func:`open_system`."""

    def __init__(
        self,
        name: str = "airssys",
        *,
        runtime: Runtime | None = None,
        cache_dir: str | PathLike[str] | None = None,
        workers: int | None = None,
        policy: Policy | None = None,
        audit: AuditLog | None = None,
        storage: str | Backend = "sqlite",
        data_dir: str | PathLike[str] | None = None,
        metrics: bool = True,
        tracing: Any = False,
    ) -> None:
        self.name = name
        self._tracer: MessageTracer | None = None
        if tracing is not False and tracing is not None:
            self._tracer = MessageTracer(None if tracing is True else tracing)
        self.metrics_enabled = metrics
        """Components time every message for the latency histogram (the rest of the
        metrics are counters kept anyway, read when scraped)."""
        self._registry: CollectorRegistry | None = None
        self._escalations: deque[str] = deque(maxlen=20)
        self._versions: dict[str, list[VersionInfo]] = {}  # hot updates, by address
        self.rollback_listeners: list[Callable[[str, str, str], None]] = []
        """Called with (address, failed version, version back to) when an update fails
        on probation and the address rolls back by itself (a node records it)."""
        self.resources = Resources(
            name,
            runtime=runtime,
            cache_dir=cache_dir,
            workers=workers,
            storage=storage,
            data_dir=data_dir,
        )
        """The runtime, storage backend, worker threads and journals components use."""
        self.policy = policy if policy is not None else Policy.default()
        """Bounds what components may be granted, per trust level (airssys.security)."""
        self.audit = audit if audit is not None else AuditLog()
        """Grants at start and denials at run time (``system.audit.query(...)``)."""
        self._cells: dict[str, ActorCell] = {}
        self._top: dict[str, ActorCell] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._closed = False
        self.broker = MessageBroker(self._cells, self._tasks)

    # --- registry (used by cells) -----------------------------------------------------

    def _register(self, cell: ActorCell) -> None:
        existing = self._cells.get(cell.address)
        if existing is not None and existing is not cell:
            raise NameTaken(f"an actor is already registered at {cell.address}")
        self._cells[cell.address] = cell

    def _forget(self, cell: ActorCell) -> None:
        if self._cells.get(cell.address) is cell:
            del self._cells[cell.address]
        if cell.parent is None and self._top.get(cell.name) is cell:
            del self._top[cell.name]

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- spawning ----------------------------------------------------------------------

    async def spawn(
        self,
        actor: Callable[[], Actor],
        *,
        name: str | None = None,
        mailbox: int = 1000,
        backpressure: Backpressure | str = Backpressure.WAIT,
        shutdown: Shutdown = 5.0,
    ) -> ActorRef:
        """Start a top-level actor; returns once ``on_start`` has completed.

        ``actor`` is an Actor subclass or a zero-argument factory. Raises
        ``ActorStartError`` (cause chained) when starting fails, ``NameTaken`` when
        the name is in use.
        """
        if self._closed:
            raise ActorError(f"actor system {self.name!r} is closed")
        shutdown = check_shutdown(shutdown)
        if name is None:
            base = getattr(actor, "__name__", "actor").lower()
            name = f"{base}-{next(self._ids)}"
        check_name(name)
        if name in self._top:
            raise NameTaken(f"an actor named {name!r} already exists (address /{name})")
        cell = ActorCell(
            self,
            actor,
            name=name,
            parent=None,
            capacity=mailbox,
            backpressure=backpressure,
            shutdown=shutdown,
        )
        self._register(cell)
        self._top[name] = cell
        try:
            await cell.boot()
        except BaseException:
            cell.finalize(cell.last_error)
            raise
        return cell.ref

    async def spawn_supervisor(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        name: str | None = None,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        backoff_base: float = 0.01,
        backoff_max: float = 1.0,
        shutdown: Shutdown = None,
        unhealthy_after: int = 3,
    ) -> SupervisorRef:
        """Start a top-level supervisor and its children, in order.

        ``unhealthy_after``: restarts within ``period`` from which the supervisor
        reports itself crash-looping (:meth:`health`), before it gives up at
        ``intensity``."""
        shutdown = check_shutdown(shutdown)

        def make() -> Supervisor:
            return Supervisor(
                children,
                strategy=strategy,
                intensity=intensity,
                period=period,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                unhealthy_after=unhealthy_after,
            )

        make()  # checked here, so a bad strategy or child reaches the caller as itself

        ref = await self.spawn(
            make, name=name or f"supervisor-{next(self._ids)}", mailbox=10_000, shutdown=shutdown
        )
        return SupervisorRef(ref)

    # --- components ------------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        """The component runtime (engine, cache); created on first use, closed with the system."""
        return self.resources.runtime

    @property
    def storage(self) -> Backend:
        """The key-value backend components' buckets live in; opened on first use
        (``open_system(storage="sqlite"|"lmdb"|"memory"|<a Backend>, data_dir=...)``),
        closed with the system when the system opened it."""
        return self.resources.storage

    def load_component(
        self, source: ComponentSource, *, limits: Limits | None = None
    ) -> tuple[Component, Limits, int | None]:
        """Resolve a component source: a Component.toml (or its directory), a .wasm or
        .wat path, wasm bytes, WAT text, or a loaded Component. Returns the component,
        its limits (manifest values over defaults; ``limits`` overrides both) and the
        manifest's mailbox size."""
        loaded = load(self.runtime, source, limits)
        return loaded.component, loaded.limits, loaded.mailbox

    def component_factory(
        self,
        source: ComponentSource,
        *,
        limits: Limits | None = None,
        execution: Execution = "auto",
        trust: TrustLevel | str = TrustLevel.UNKNOWN,
        capabilities: Capabilities = None,
        label: str | None = None,
        durability: DurabilitySpec | dict[str, Any] | None = None,
    ) -> tuple[Callable[[], ComponentActor], int | None]:
        """A factory of fresh ComponentActors (for a ChildSpec) and the manifest's
        mailbox. The component's capabilities are admitted by the policy here, once."""
        loaded = load(self.runtime, source, limits)
        factory = self._factory(loaded, execution, trust, capabilities, label, durability)
        return factory, loaded.mailbox

    def _factory(
        self,
        loaded: Loaded,
        execution: Execution,
        trust: TrustLevel | str,
        capabilities: Capabilities,
        label: str | None,
        durability: DurabilitySpec | dict[str, Any] | None = None,
    ) -> Callable[[], ComponentActor]:
        spec = _durability(loaded, durability, label)
        admission = admit(
            self.policy,
            self.audit,
            loaded,
            label=label or loaded.component.name,
            trust=trust,
            capabilities=capabilities,
        )
        if admission.root is not None:
            self.resources.scratch.append(admission.root)
        execution = resolve_execution(execution, loaded.limits)
        executor = self.resources.pool() if execution != "inline" else None
        component, merged = loaded.component, loaded.limits

        def make() -> ComponentActor:
            return ComponentActor(
                component,
                runtime=self.runtime,
                limits=merged,
                executor=executor,
                execution=execution,
                admission=admission,
                durability=spec,
            )

        return make

    def component_spec(
        self,
        child_id: str,
        source: ComponentSource,
        *,
        limits: Limits | None = None,
        restart: Restart | str = Restart.PERMANENT,
        shutdown: Shutdown = 5.0,
        mailbox: int | None = None,
        backpressure: Backpressure | str = Backpressure.WAIT,
        execution: Execution = "auto",
        trust: TrustLevel | str = TrustLevel.UNKNOWN,
        capabilities: Capabilities = None,
        durability: DurabilitySpec | dict[str, Any] | None = None,
    ) -> ChildSpec:
        """A supervisor child spec for a component; loading errors and a policy refusal
        (``PolicyViolation``) surface here, at once. ``durability`` replaces the
        manifest's ``[durability]`` table (a DurabilitySpec, or the same table as a dict)."""
        make, manifest_mailbox = self.component_factory(
            source,
            limits=limits,
            execution=execution,
            trust=trust,
            capabilities=capabilities,
            label=child_id,
            durability=durability,
        )
        return ChildSpec(
            child_id,
            make,
            restart=restart,
            shutdown=shutdown,
            mailbox=mailbox or manifest_mailbox or 1000,
            backpressure=backpressure,
        )

    async def spawn_component(
        self,
        source: ComponentSource,
        *,
        name: str | None = None,
        limits: Limits | None = None,
        mailbox: int | None = None,
        backpressure: Backpressure | str = Backpressure.WAIT,
        execution: Execution = "auto",
        trust: TrustLevel | str = TrustLevel.UNKNOWN,
        capabilities: Capabilities = None,
        durability: DurabilitySpec | dict[str, Any] | None = None,
    ) -> ActorRef:
        """Spawn a top-level ComponentActor; returns once the component is instantiated.

        ``trust`` (unknown, trusted or dev) picks the policy's ceiling for the
        component's capabilities: its manifest's ``[capabilities]``, or
        ``capabilities`` (a Grants or the same table as a dict), which replaces them.
        Declaring more than the ceiling raises ``PolicyViolation`` naming every excess.

        Loading (reading, hashing, compiling or deserializing) runs on a worker
        thread unless ``source`` is an already loaded Component, so spawning never
        stalls the event loop for long.
        """
        if name is not None:
            check_name(name)  # before anything is loaded; "" is refused, not replaced
        if self._closed:
            raise ActorError(f"actor system {self.name!r} is closed")
        if isinstance(source, Component):
            loaded = load(self.runtime, source, limits)
        else:
            loaded = await asyncio.get_running_loop().run_in_executor(
                self.resources.instantiator(), partial(load, self.runtime, source, limits)
            )
        name = name if name is not None else f"{loaded.component.name}-{next(self._ids)}"
        return await self.spawn(
            self._factory(loaded, execution, trust, capabilities, f"/{name}", durability),
            name=name,
            mailbox=mailbox or loaded.mailbox or 1000,
            backpressure=backpressure,
        )

    async def health(
        self, address: str, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> ComponentHealth:
        """A component actor's health, answered through its mailbox (so it proves liveness)."""
        result = await self.ref(address).ask(HEALTH, timeout=timeout)
        assert isinstance(result, ComponentHealth)
        return result

    # --- messaging (the broker) -----------------------------------------------------------

    def send(self, to: str, message: Any, *, sender: str | None = None) -> None:
        """Deliver to ``to`` now; raises and records a dead letter when it cannot."""
        self.broker.send(to, message, sender=sender)

    async def ask(
        self,
        to: str,
        message: Any,
        *,
        timeout: float | None = DEFAULT_ASK_TIMEOUT,
        sender: str | None = None,
    ) -> Any:
        """Request-reply by address with a deadline."""
        return await self.broker.ask(to, message, timeout=timeout, sender=sender)

    def publish(self, topic: str, message: Any, *, sender: str | None = None) -> int:
        """Deliver to every subscriber of ``topic``; returns how many took it."""
        return self.broker.publish(topic, message, sender=sender)

    def subscribe(self, pattern: str, subscriber: ActorRef | str) -> None:
        """Subscribe an actor to a topic pattern (``*``: one segment, ``#``: any number)."""
        self.broker.subscribe(pattern, subscriber)

    def unsubscribe(self, pattern: str, subscriber: ActorRef | str) -> None:
        self.broker.unsubscribe(pattern, subscriber)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return list(self.broker.dead_letters)

    # --- durability ---------------------------------------------------------------------------

    def open_journal(
        self,
        address: str,
        spec: DurabilitySpec,
        *,
        scope: str | None = None,
        journal: Journal | None = None,
    ) -> Durable:
        """The journal of a durable address (opened once; closed with the system).

        ``scope``: whose journal it is, the directory under ``<data dir>/journal/``
        (default: this system's name; a cluster's placed components use the
        cluster's). ``journal``: one opened already, to use (a cluster's journal in
        JetStream)."""
        return self.resources.open_journal(address, spec, scope, journal)

    def release_journal(self, address: str) -> None:
        """Close an address's journal (its component now runs elsewhere)."""
        self.resources.release_journal(address)

    def replay_hash(self, address: str) -> str:
        """A durable component's replay hash: the chain over every message it handled."""
        return self.resources.journal(address).replay_hash

    # --- hot update -------------------------------------------------------------------------

    async def update(
        self,
        address: str,
        source: ComponentSource,
        *,
        probation: float = 5.0,
        execution: Execution = "auto",
        trust: TrustLevel | str | None = None,
        capabilities: Capabilities = None,
    ) -> UpdateReport:
        """Replace the component at ``address`` by ``source``, blue-green, losing nothing.

        The new version starts beside the running one and must answer a health
        probe; then it takes over the address's mailbox between two batches (the
        old version finishes the batch in hand; everything queued behind goes to
        the new one, in order). A failure within ``probation`` seconds rolls the
        address back to the previous version by itself. ``trust`` defaults to the
        running version's. Raises ``UpdateFailed`` (the old version keeps serving).
        """
        from ._update import update

        return await update(
            self,
            address,
            source,
            probation=probation,
            execution=execution,
            trust=trust,
            capabilities=capabilities,
        )

    async def rollback(self, address: str) -> UpdateReport:
        """Return ``address`` to the version before the current one, blue-green."""
        from ._update import rollback

        return await rollback(self, address)

    def versions(self, address: str) -> list[VersionInfo]:
        """The versions that served ``address`` through updates, oldest first."""
        from ._update import _component_cell, history

        return list(history(self, _component_cell(self, address)))

    # --- observability ----------------------------------------------------------------------

    def snapshot(self) -> list[ActorSnapshot]:
        """Every actor now (each parent before its children): state, restarts,
        mailbox, and for components calls, errors, traps, fuel and denials."""
        return snapshot(self)

    def health_report(self) -> Health:
        """Unhealthy while a supervisor is crash-looping (``unhealthy_after`` restarts
        within its period) or after a top-level supervisor gave up."""
        return health(self)

    def observe(self) -> Observation:
        """Snapshots, component counters and health in one walk (what a scrape reads)."""
        return observe(self)

    @property
    def metrics(self) -> CollectorRegistry:
        """A prometheus-client registry with this system's metrics, read at scrape
        time (``prometheus_client.generate_latest(system.metrics)``)."""
        if self._registry is None:
            self._registry = registry_for(self)
        return self._registry

    def _failed(self, address: str, error: BaseException, supervisor: bool) -> None:
        """A top-level actor failed for good (no supervisor to restart it)."""
        if supervisor:
            self._escalations.append(f"supervisor {address} gave up: {truncate(str(error), 300)}")

    # --- finding and stopping --------------------------------------------------------------

    def lookup(self, address: str) -> ActorRef | None:
        """The actor at ``address`` (e.g. ``/sup/worker``), or None."""
        cell = self._cells.get(address)
        return cell.ref if cell is not None else None

    def ref(self, address: str) -> ActorRef:
        """The actor at ``address``; raises ``ActorDeadError`` when there is none."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorDeadError(f"no actor at {address!r}")
        return cell.ref

    @property
    def addresses(self) -> list[str]:
        return list(self._cells)

    async def stop(self, target: ActorRef | str, *, kill: bool = False) -> None:
        ref = self.ref(target) if isinstance(target, str) else target
        await ref.stop(kill=kill)

    @property
    def closed(self) -> bool:
        return self._closed

    def _kill_all(self) -> None:
        """Kill every actor task now (a second cancellation while closing)."""
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Stop every actor (top-level ones in reverse spawn order), then wait for all tasks."""
        self._closed = True
        for cell in reversed(list(self._top.values())):
            await cell.stop()
        leftovers = [t for t in self._tasks if not t.done()]
        for task in leftovers:  # pending component requests, or an actor that escaped
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers)
        self.broker.close()
        self.broker.flush_logs()
        self.audit.close()
        await self.resources.aclose()


def _durability(
    loaded: Loaded, override: DurabilitySpec | dict[str, Any] | None, label: str | None
) -> DurabilitySpec | None:
    """The durability a component runs with: the override, else its manifest's."""
    if isinstance(override, dict):
        from ..manifest import parse_durability

        override = parse_durability(override, f"durability of {label or loaded.component.name}")
    spec = override
    if spec is None and loaded.manifest is not None:
        spec = loaded.manifest.durability
    return spec if spec is not None and spec.journal else None


@asynccontextmanager
async def open_system(
    name: str = "airssys",
    *,
    runtime: Runtime | None = None,
    cache_dir: str | PathLike[str] | None = None,
    workers: int | None = None,
    policy: Policy | str | PathLike[str] | None = None,
    audit_log: str | PathLike[str] | None = None,
    storage: str | Backend = "sqlite",
    data_dir: str | PathLike[str] | None = None,
    metrics: bool = True,
    tracing: Any = False,
) -> AsyncIterator[ActorSystem]:
    """``async with open_system() as system:`` — every actor stops when the block ends.

    ``runtime``: share a component Runtime (the system then leaves it open);
    otherwise one is created on first use with ``cache_dir``. ``workers``: threads
    that run component calls. ``policy``: the operator's capability policy (a
    Policy, or the path of a policy TOML file); the default is safe for unknown
    code. ``audit_log``: a JSON-lines file the audit records are appended to.
    ``storage``: where components' key-value buckets live: ``"sqlite"`` (one file
    per system under ``data_dir``, default ``$AIRSSYS_DATA_DIR`` or the XDG data
    home), ``"lmdb"`` (the ``storage`` extra), ``"memory"``, or a Backend you own.
    ``metrics``: time every component message for ``system.metrics``' latency
    histogram (the counters are kept either way). ``tracing``: True (the global
    OpenTelemetry tracer provider) or a TracerProvider: a span per handled message,
    trace context carried across sends, requests and publishes (the ``otel`` extra).
    """
    if isinstance(policy, str | PathLike):
        policy = Policy.load(policy)
    system = ActorSystem(
        name,
        runtime=runtime,
        cache_dir=cache_dir,
        workers=workers,
        policy=policy,
        audit=AuditLog(path=audit_log),
        storage=storage,
        data_dir=data_dir,
        metrics=metrics,
        tracing=tracing,
    )
    system.broker.bind_loop(asyncio.get_running_loop())
    if system._tracer is not None:
        enable_tracing()
    try:
        yield system
    finally:
        try:
            await _close_fully(system)
        finally:
            if system._tracer is not None:
                release_tracing()


async def _close_fully(system: ActorSystem) -> None:
    """Close ``system`` and return only once everything it owns has stopped.

    A cancellation while closing does not cut the close short: it escalates it
    (every actor is killed at once, without ``on_stop``), the close still runs to
    its end, and the cancellation is re-raised afterwards.
    """
    closing = asyncio.ensure_future(system.aclose())
    cancelled = False
    while not closing.done():
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            if closing.done():
                break
            cancelled = True
            system._kill_all()
    closing.result()  # the close's own failure, if it had one
    if cancelled:
        raise asyncio.CancelledError
