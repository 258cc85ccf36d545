"""A node: one actor system running a deployment, with a control socket and HTTP.

``async with Node(deployment) as node:`` prepares the run dir (private, locked:
one node per run dir), opens the system, starts the HTTP endpoints and the
control socket, loads every component (a bad one stops the node before any
supervisor starts), starts the supervisors in order and becomes ready. Leaving
the block (or :meth:`Node.shutdown`) stops accepting control requests, drains
the mailboxes (up to ``shutdown-timeout``), stops the supervisors in reverse
order, reports one final line per actor and closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import stat
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final, cast

from .. import codec
from .._dirs import run_base
from .._logging import Throttle, get_logger, truncate
from .._progress import about
from .._version import __version__
from ..actors import ActorRef, ActorSystem, ChildSpec, Execution, SupervisorRef, open_system
from ..errors import ActorDeadError, AirssysError, CodecError, MailboxFull, UpdateFailed
from ..errors import NodeError as NodeError
from ._control import ControlServer
from ._deployment import ComponentEntry, Deployment, SupervisorEntry, audit_trust
from ._desired import DesiredState, Row
from ._http import HttpServer
from ._logs import Event, LogRing, matches
from ._protocol import Request, jsonable, message_value

if TYPE_CHECKING:
    from ..cluster import Bridge, Cluster, NodeInfo, Owners
    from ..manifest import DurabilitySpec
    from ._deployment import SupervisorEntry

__all__ = ("ActorSummary", "Node", "NodeError")

_log = get_logger("airssys.node")
_placement_failed = Throttle(_log, "cluster placement failed", burst=3, window=30.0)
_FOLLOW_QUEUE: Final = 1000
_FOLLOW_BACKLOG: Final = 100
_LOGS_DEFAULT: Final = 1000
_DRAIN_POLL: Final = 0.02
_AUDIT_POLL: Final = 0.25
READY_FILE: Final = "ready"
LOCK_FILE: Final = "node.lock"
SOCKET_FILE: Final = "control.sock"


@dataclass(frozen=True, slots=True)
class ActorSummary:
    """One actor's counters when the node stopped."""

    address: str
    processed: int
    queued: int
    dropped: int
    restarts: int
    state: str

    def line(self) -> str:
        return (
            f"final {self.address}: processed={self.processed} queued={self.queued} "
            f"dropped={self.dropped} restarts={self.restarts} state={self.state}"
        )


def _private_dir(path: Path) -> None:
    """``path`` exists, is a real directory of ours, and only we can enter it."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise NodeError(f"cannot create the run dir {path}: {exc.strerror or exc}") from exc
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise NodeError(f"{path} is not a directory (a symlink or a file): refusing to use it")
    if info.st_uid != os.getuid():
        raise NodeError(
            f"{path} belongs to another user (uid {info.st_uid}): refusing to use it; "
            "set node.run-dir to a directory of yours"
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)


class Node:
    """Runs one deployment. See the module docstring."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        ring: LogRing | None = None,
        say: Callable[..., None] | None = None,
    ) -> None:
        self.deployment = deployment
        self.settings = deployment.node
        self.name = deployment.node.name
        self.ring = ring if ring is not None else LogRing()
        self._say: Callable[..., None] = say or (lambda _text, **_values: None)
        self.run_dir = self.settings.run_dir
        self.socket_path = self.run_dir / SOCKET_FILE
        self.ready = False
        self.draining = False
        self.started = time.time()
        self._started_clock = time.monotonic()
        self._stack = AsyncExitStack()
        self._system: ActorSystem | None = None
        self._desired: DesiredState | None = None
        self._supervisors: list[SupervisorRef] = []
        self._cluster: Cluster | None = None
        self._owners: Owners | None = None
        """Leases of placed supervisors, when durable journals live in JetStream."""
        self._bridge: Bridge | None = None
        self._placement: asyncio.Task[None] | None = None
        self._placement_wake = asyncio.Event()
        self._specs: dict[str, list[ChildSpec]] = {}
        self._placed_refs: dict[str, SupervisorRef] = {}
        self._control: ControlServer | None = None
        self._http: HttpServer | None = None
        self._lock: IO[str] | None = None
        self._stop = asyncio.Event()
        self._closed = False
        self._components = {
            f"/{sup.name}/{c.id}" for sup in deployment.supervisors for c in sup.components
        }
        self.summaries: list[ActorSummary] = []
        self.serving: dict[str, str] = {
            f"/{sup.name}/{c.id}": c.package
            for sup in deployment.supervisors
            for c in sup.components
            if c.package is not None
        }
        """address -> name@version of the installed package serving it."""

    # --- lifecycle ------------------------------------------------------------------

    @property
    def system(self) -> ActorSystem:
        if self._system is None:
            raise NodeError(f"node {self.name!r} is not running")
        return self._system

    @property
    def metrics_url(self) -> str | None:
        return f"{self._http.url}/metrics" if self._http is not None else None

    async def __aenter__(self) -> Node:
        try:
            await self.start()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def start(self) -> None:
        settings = self.settings
        if settings.run_dir.parent == run_base():
            _private_dir(run_base())
        else:
            try:
                settings.run_dir.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise NodeError(
                    f"cannot create {settings.run_dir.parent}: {exc.strerror or exc}"
                ) from exc
        _private_dir(self.run_dir)
        self._take_lock()
        for stale in (self.socket_path, self.run_dir / READY_FILE):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self._system = await self._stack.enter_async_context(
            open_system(
                self.name,
                policy=settings.policy,
                audit_log=settings.audit_log,
                storage=settings.storage,
                data_dir=settings.data_dir,
            )
        )
        self._system.resources.claim()  # one node of this name per data directory
        audit_trust(self.deployment, self._system.audit)  # packages whose key was removed
        self._desired = DesiredState(self._system.resources.data_dir, self.name)
        self._system.rollback_listeners.append(self._rolled_back_by_itself)
        if settings.metrics is not None:
            from prometheus_client import ProcessCollector

            # the process's own memory, CPU and descriptors (process_resident_memory_bytes,
            # ...): the node owns its process, a library embedded elsewhere does not
            ProcessCollector(registry=self._system.metrics)
            self._http = HttpServer(self, settings.metrics)
            try:
                await self._http.start()
            except OSError as exc:
                self._http = None
                raise NodeError(
                    f"cannot listen on {settings.metrics} (node.metrics): {exc.strerror or exc}"
                ) from exc
        self._control = ControlServer(self, self.socket_path)
        await self._control.start()
        specs = await self._load_specs()  # every component, before any supervisor starts
        if self._stop.is_set():  # a signal during start-up: no supervisor starts
            return
        if self.deployment.cluster is not None:
            await self._join(self.deployment.cluster.url, self.deployment.cluster.node)
        for entry, children in zip(self.deployment.supervisors, specs, strict=True):
            self._specs[entry.name] = children
            if self._cluster is not None and entry.placed:
                continue  # started by the placement, once the node has seen the cluster
            self._supervisors.append(await self._spawn_supervisor(entry, children))
        if self._cluster is not None:
            self._placement = asyncio.get_running_loop().create_task(
                self._place(), name="airssys-placement"
            )
        self.ready = True
        _write_atomic(
            self.run_dir / READY_FILE,
            json.dumps(
                {
                    "node": self.name,
                    "pid": os.getpid(),
                    "socket": str(self.socket_path),
                    "metrics": self.metrics_url,
                }
            )
            + "\n",
        )
        _log.info("node ready", node=self.name, socket=str(self.socket_path))

    async def _spawn_supervisor(
        self, entry: SupervisorEntry, children: list[ChildSpec]
    ) -> SupervisorRef:
        extra: dict[str, Any] = {}
        if entry.unhealthy_after is not None:
            extra["unhealthy_after"] = entry.unhealthy_after
        ref = await self.system.spawn_supervisor(
            children,
            name=entry.name,
            strategy=entry.strategy,
            intensity=entry.intensity,
            period=entry.period,
            **extra,
        )
        _log.info("supervisor started", supervisor=ref.address, children=len(children))
        return ref

    # --- the cluster: joining and placement ---------------------------------------------------

    async def _join(self, url: str, name: str) -> None:
        from ..cluster import join_cluster

        cluster = await self._stack.enter_async_context(join_cluster(self.system, url, node=name))
        self._cluster = cluster
        cluster.meta = {"eligible": self._eligible(name), "running": []}
        cluster.on_node_down(self._node_down)
        _log.info("joined the cluster", node=name, url=url)
        await self._use_jetstream(cluster, url, name)

    async def _use_jetstream(self, cluster: Cluster, url: str, name: str) -> None:
        """Placed durable components journal in JetStream when ``[cluster] journal`` is
        ``jetstream``, or ``auto`` and the servers have it (docs/cluster.md)."""
        from ..cluster import Bridge, Owners, ensure_stream

        settings = self.deployment.cluster
        assert settings is not None
        if settings.journal == "local":
            return
        js = cluster.nc.jetstream(timeout=5.0)
        try:
            for attempt in range(6):  # a loaded server may be slow to answer: not a "no"
                try:
                    await js.account_info()
                    break
                except TimeoutError:
                    if attempt == 5:
                        raise
        except Exception as exc:
            if settings.journal == "jetstream":
                raise NodeError(
                    f'[cluster] journal = "jetstream", but the NATS server at {url} has no '
                    f"JetStream ({exc!r:.200}): start it with -js (and --store_dir)"
                ) from exc
            _log.warning(
                "cluster: the NATS server has no JetStream; placed durable components "
                "journal in this node's data dir (failover needs a shared one)",
                url=url,
            )
            return
        try:
            await ensure_stream(js, settings.replicas)
        except Exception as exc:
            raise NodeError(f"cannot make the journal stream in JetStream: {exc!r:.300}") from exc
        loop = asyncio.get_running_loop()
        servers = [part.strip() for part in url.split(",")]
        self._bridge = await loop.run_in_executor(None, lambda: Bridge(servers, name=name))
        self._stack.callback(self._bridge.close)
        self._owners = Owners(
            js,
            name,
            alive=lambda node: any(peer.name == node for peer in cluster.nodes()),
            on_lost=self._lost_lease,
            lease=settings.lease,
            renew=settings.renew,
        )
        self._stack.push_async_callback(self._owners.close)
        _log.info("cluster: durable journals in JetStream", replicas=settings.replicas)

    async def _lost_lease(self, supervisor: str) -> None:
        """Another node owns ``supervisor`` now (or this one is cut off): stop it here."""
        entry = next((e for e in self.deployment.supervisors if e.name == supervisor), None)
        if entry is not None and supervisor in self._placed_refs:
            await self._stop_placed(entry)
        self._placement_wake.set()

    def _eligible(self, me: str) -> dict[str, dict[str, Any]]:
        """The placed supervisors this node may run: name -> {instances, nodes}."""
        return {
            sup.name: {"instances": sup.instances or 1, "nodes": list(sup.nodes)}
            for sup in self.deployment.supervisors
            if sup.placed and (not sup.nodes or me in sup.nodes)
        }

    def _node_down(self, info: NodeInfo) -> None:
        self._placement_wake.set()

    async def _place(self) -> None:
        """Start the placed supervisors this node should run, now and whenever a node
        leaves; stop one that runs on more nodes than its ``instances``."""
        cluster = self._cluster
        assert cluster is not None
        await asyncio.sleep(cluster.dead_after)  # see the others first
        while True:
            try:
                await self._place_once(cluster)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS unreachable, say: once per kind, then summed up
                _placement_failed(type(exc).__name__, error=truncate(repr(exc), 300))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._placement_wake.wait(), cluster.heartbeat)
            self._placement_wake.clear()

    async def _place_once(self, cluster: Cluster) -> None:
        me = cluster.node
        for entry in self.deployment.supervisors:
            ref = self._placed_refs.get(entry.name)
            if ref is not None and not ref.ref.is_alive:
                # it gave up (say its journal in JetStream was unreachable for a moment
                # and its components failed their restarts): placed again below, from
                # the stream, once the node can take the lease again
                _log.warning(
                    "cluster: a placed supervisor stopped by itself; placing it again",
                    supervisor=entry.name,
                )
                await self._stop_placed(entry)
            if not entry.placed or (entry.nodes and me not in entry.nodes):
                continue
            alive: dict[str, dict[str, Any]] = {me: cluster.meta}
            for peer in cluster.nodes():
                alive[peer.name] = peer.meta
            eligible = [n for n, meta in alive.items() if entry.name in meta.get("eligible", {})]
            runners = [n for n, meta in alive.items() if entry.name in meta.get("running", [])]

            def rank(name: str, entry: SupervisorEntry = entry) -> tuple[int, str]:
                return (entry.nodes.index(name) if name in entry.nodes else 0, name)

            desired = entry.instances or 1
            running_here = entry.name in self._placed_refs
            if not running_here and len(runners) < desired:
                idle = sorted((n for n in eligible if n not in runners), key=rank)
                if me in idle[: desired - len(runners)]:
                    await self._start_placed(entry)
            elif (
                running_here
                and len(runners) > desired
                and me not in sorted(runners, key=rank)[:desired]
                and not self._leased(entry.name)  # a lease says who runs it: not the ranks
            ):
                await self._stop_placed(entry)

    def _leased(self, supervisor: str) -> bool:
        """True while this node holds ``supervisor``'s lease (JetStream journals): it runs
        it until it loses the lease, whatever another node's stale heartbeat claims."""
        return self._owners is not None and supervisor in self._owners.held

    def _running_placed(self) -> None:
        assert self._cluster is not None
        self._cluster.meta = {**self._cluster.meta, "running": sorted(self._placed_refs)}

    async def _start_placed(self, entry: SupervisorEntry) -> None:
        if (entry.instances or 1) == 1:
            durable = self._durable_components(entry)
            if self._owners is not None and durable:
                if not await self._open_stream_journals(entry, durable):
                    return  # another node owns it
            else:
                for address, spec in durable:
                    self.system.open_journal(address, spec, scope="cluster")
        ref = await self._spawn_supervisor(entry, self._specs[entry.name])
        self._supervisors.append(ref)
        self._placed_refs[entry.name] = ref
        self._running_placed()
        if self._cluster is not None:
            await self._cluster.refresh()
        _log.info("cluster: placed supervisor started here", supervisor=ref.address)

    async def _stop_placed(self, entry: SupervisorEntry) -> None:
        ref = self._placed_refs.pop(entry.name)
        self._running_placed()
        await ref.stop()
        with contextlib.suppress(ValueError):
            self._supervisors.remove(ref)
        for component in entry.components:  # another node may take the journal now
            self.system.release_journal(f"/{entry.name}/{component.id}")
        if self._owners is not None:
            await self._owners.give_back(entry.name)
        _log.info("cluster: placed supervisor stopped here (runs elsewhere)", supervisor=entry.name)

    def _durable_components(self, entry: SupervisorEntry) -> list[tuple[str, DurabilitySpec]]:
        """The durable components of a placed supervisor with one instance: they journal
        under the cluster's name (or in JetStream), so the node that takes the
        supervisor over resumes from the journal."""
        from ..manifest import load_manifest

        found = []
        for component in entry.components:
            spec = component.durability
            if spec is None and (component.source.is_dir() or component.source.suffix == ".toml"):
                spec = load_manifest(component.source).durability
            if spec is not None and spec.journal:
                found.append((f"/{entry.name}/{component.id}", spec))
        return found

    async def _open_stream_journals(
        self, entry: SupervisorEntry, durable: list[tuple[str, DurabilitySpec]]
    ) -> bool:
        """Take ``entry``'s lease and open its durable components' journals from
        JetStream (each appends its takeover); False when another node owns it."""
        from ..cluster import JetStreamJournal, local_copy

        assert self._owners is not None and self._bridge is not None
        owner = await self._owners.take(entry.name)
        if owner is None:
            _log.info("cluster: another node owns this placed supervisor", supervisor=entry.name)
            return False
        bridge, loop = self._bridge, asyncio.get_running_loop()
        try:
            for address, spec in durable:
                path = local_copy(self.system.resources.data_dir, self.name, address)
                opened = partial(
                    JetStreamJournal,
                    path,
                    bridge=bridge,
                    address=address,
                    owner=owner,
                    fsync=spec.fsync,
                )
                journal = await loop.run_in_executor(None, opened)
                self.system.open_journal(address, spec, journal=journal)
        except BaseException:
            for address, _spec in durable:
                self.system.release_journal(address)
            await self._owners.give_back(entry.name)
            raise
        return True

    async def _load_specs(self) -> list[list[ChildSpec]]:
        """Load (compile or read from the cache) every component, off the event loop."""
        system = self.system

        def spec(sup: SupervisorEntry, entry: ComponentEntry) -> ChildSpec:
            address = f"/{sup.name}/{entry.id}"
            with about(address):  # a compile here is shown as this address's
                return _spec(address, sup, entry)

        def _spec(address: str, sup: SupervisorEntry, entry: ComponentEntry) -> ChildSpec:
            source, trust = self._desired_source(address, entry)
            return system.component_spec(
                entry.id,
                source,
                restart=entry.restart,
                mailbox=entry.mailbox,
                execution=cast(Execution, entry.execution),
                trust=trust,
                durability=entry.durability,
            )

        def load() -> list[list[ChildSpec]]:
            return [
                [spec(sup, entry) for entry in sup.components]
                for sup in self.deployment.supervisors
            ]

        return await asyncio.get_running_loop().run_in_executor(None, load)

    # --- desired state: what update and rollback decided, across restarts -------------------

    @property
    def desired(self) -> DesiredState:
        if self._desired is None:
            raise NodeError(f"node {self.name!r} is not running")
        return self._desired

    @staticmethod
    def _base(entry: ComponentEntry) -> str:
        """What the deployment names for a component: its package, else its path."""
        return entry.package or str(entry.source)

    def _entry(self, address: str) -> ComponentEntry:
        for sup in self.deployment.supervisors:
            for entry in sup.components:
                if f"/{sup.name}/{entry.id}" == address:
                    return entry
        raise ActorDeadError(f"{address} is not a component of this deployment")

    def _desired_source(self, address: str, entry: ComponentEntry) -> tuple[Path, str]:
        """Where ``address``'s component comes from at start: the version an update
        decided before the node stopped, else the deployment's."""
        row = self.desired.serving(address, self._base(entry))
        if row is None or row.package is None:
            return entry.source, entry.trust
        from ..lifecycle import split_spec

        store = self._store()
        try:
            installed = store.get(*split_spec(row.package))
            checkout = store.path(installed)
        except AirssysError as exc:
            _log.warning(
                "the version an update decided is not in the store: serving the deployment's",
                address=address,
                package=row.package,
                error=str(exc),
            )
            return entry.source, entry.trust
        _log.info(
            "serving the version updated to before the restart",
            address=address,
            package=row.package,
        )
        self.serving[address] = row.package
        return checkout, installed.trust

    def _rolled_back_by_itself(self, address: str, failed: str, back_to: str) -> None:
        row = self.desired.rolled_back(address, automatic=True)
        self._serve(address, row)

    def _serve(self, address: str, row: Row | None) -> None:
        """``serving`` after a rollback to ``row`` (None: the deployment's version)."""
        package = row.package if row is not None else self._entry(address).package
        if package is None:
            self.serving.pop(address, None)
        else:
            self.serving[address] = package

    def _take_lock(self) -> None:
        path = self.run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        file = os.fdopen(fd, "r+", encoding="utf-8")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = file.read().strip() or "?"
            file.close()
            raise NodeError(
                f"a node is already running in {self.run_dir} (pid {holder}): stop it first, "
                "or give this one another node.name or node.run-dir"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._lock = file

    def request_stop(self) -> None:
        """Ask the node to stop (a signal handler): :meth:`wait` returns."""
        self._stop.set()

    async def wait(self) -> None:
        """Until :meth:`request_stop`."""
        await self._stop.wait()

    async def shutdown(self) -> list[ActorSummary]:
        """Stop accepting requests, drain, stop in reverse order, report, close."""
        if self._closed:
            return self.summaries
        self.ready = False
        self.draining = True
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / READY_FILE).unlink()
        _log.info("node stopping", node=self.name)
        await self._stop_placement()
        try:
            if self._control is not None:
                await self._control.close(grace=min(self.settings.shutdown_timeout, 5.0))
                self._control = None
            if self._system is not None:
                drained = await self._drain(self.settings.shutdown_timeout)
                if not drained:
                    _log.warning(
                        "mailboxes not empty at the shutdown timeout; stopping anyway",
                        node=self.name,
                        timeout=self.settings.shutdown_timeout,
                    )
                refs = self._refs()
                for sup in reversed(self._supervisors):
                    await sup.stop()
                self.summaries = [self._summary(address, ref) for address, ref in refs]
                for summary in self.summaries:
                    self._say(summary.line(), **_fields(summary))
        finally:
            await self._close()
        uptime = time.monotonic() - self._started_clock
        self._say(f"airssys node {self.name!r} stopped after {uptime:.1f} s", node=self.name)
        return self.summaries

    async def _stop_placement(self) -> None:
        if self._placement is not None:
            self._placement.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._placement
            self._placement = None

    async def _close(self) -> None:
        self._closed = True
        self.ready = False
        await self._stop_placement()
        if self._control is not None:
            await self._control.close(grace=0.0)
            self._control = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        try:
            await self._stack.aclose()
        finally:
            self._system = None
            self._cluster = None
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / READY_FILE).unlink()
            if self._lock is not None:
                self._lock.close()  # releases the flock
                self._lock = None

    async def _drain(self, timeout: float) -> bool:
        """Wait until no mailbox holds a message and nothing is in hand, twice in a
        row with no message handled in between, or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        quiet, last = 0, -1
        while True:
            snaps = self.system.snapshot()
            busy = sum(s.queued + s.in_hand for s in snaps)
            processed = sum(s.processed for s in snaps)
            quiet = quiet + 1 if busy == 0 and processed == last else (1 if busy == 0 else 0)
            last = processed
            if quiet >= 2:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_DRAIN_POLL)

    def _refs(self) -> list[tuple[str, ActorRef]]:
        refs = []
        for snap in self.system.snapshot():
            ref = self.system.lookup(snap.address)
            if ref is not None:
                refs.append((snap.address, ref))
        return refs

    @staticmethod
    def _summary(address: str, ref: ActorRef) -> ActorSummary:
        stats = ref.mailbox
        return ActorSummary(
            address=address,
            processed=stats.processed,
            queued=stats.queued,
            dropped=stats.dropped,
            restarts=ref.restarts,
            state=ref.state.value,
        )

    # --- what the endpoints and the control socket read -------------------------------

    def metrics_text(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.system.metrics), CONTENT_TYPE_LATEST

    def system_health(self) -> dict[str, Any]:
        return self.system.health_report().as_dict()

    def health(self) -> tuple[bool, dict[str, Any]]:
        if self._system is None:
            return False, {"healthy": False, "problems": ["the node is not running"]}
        body = self.system_health()
        return bool(body["healthy"]), body

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self.ready, {"ready": self.ready, "draining": self.draining, "node": self.name}

    def actors(self) -> list[dict[str, Any]]:
        """Every actor (snapshot dicts) in tree order, with supervised children that
        are stopped (``terminate_child``) listed in their place, state ``stopped``."""
        system = self.system
        snaps = [s.as_dict() for s in system.snapshot()]
        for snap in snaps:
            snap["package"] = self.serving.get(snap["address"])
        by_parent: dict[str | None, list[dict[str, Any]]] = {}
        for snap in snaps:
            by_parent.setdefault(snap["parent"], []).append(snap)
        for snap in snaps:
            if snap["kind"] != "supervisor":
                continue
            ref = system.lookup(snap["address"])
            if ref is None:
                continue
            try:
                rows = SupervisorRef(ref).which_children()
            except (AssertionError, AirssysError):
                continue
            present = {c["address"]: c for c in by_parent.get(snap["address"], [])}
            ordered = []
            for row in rows:
                address = f"{snap['address']}/{row.id}"
                if address in present:
                    ordered.append(present.pop(address))
                else:
                    ordered.append(self._stopped_child(address, snap["address"], row))
            ordered.extend(present.values())
            by_parent[snap["address"]] = ordered
        result: list[dict[str, Any]] = []

        def visit(parent: str | None) -> None:
            for child in by_parent.get(parent, []):
                result.append(child)
                visit(child["address"])

        visit(None)
        return result

    def _stopped_child(self, address: str, parent: str, row: Any) -> dict[str, Any]:
        stats = row.ref.mailbox
        error = row.ref.last_error
        kind = (
            "supervisor"
            if row.supervisor
            else "component"
            if address in self._components
            else "actor"
        )
        return {
            "address": address,
            "parent": parent,
            "kind": kind,
            "state": row.state.value,
            "restarts": row.ref.restarts,
            "queued": stats.queued,
            "capacity": stats.capacity,
            "processed": stats.processed,
            "dropped": stats.dropped,
            "last_error": None if error is None else repr(error)[:300],
        }

    def _find(self, address: str) -> dict[str, Any]:
        for actor in self.actors():
            if actor["address"] == address:
                return actor
        raise ActorDeadError(f"no actor at {address} (airssys list shows the addresses)")

    # --- the control ops -----------------------------------------------------------------

    async def call(self, request: Request) -> Any:
        handler = getattr(self, f"_op_{request.op}")
        # "progress" is the control server's: it forwards the progress while this works
        result = handler(**{k: v for k, v in request.args.items() if k != "progress"})
        if asyncio.iscoroutine(result):
            result = await result
        return result

    def _op_ping(self) -> dict[str, Any]:
        return {"node": self.name, "pid": os.getpid(), "ready": self.ready}

    def _op_status(self) -> dict[str, Any]:
        return {
            "node": self.name,
            "pid": os.getpid(),
            "version": __version__,
            "uptime": round(time.monotonic() - self._started_clock, 3),
            "started": self.started,
            "ready": self.ready,
            "draining": self.draining,
            "deployment": str(self.deployment.path),
            "socket": str(self.socket_path),
            "metrics": self.metrics_url,
            "health": self.system_health(),
            "actors": self.actors(),
        }

    def _op_cluster(self) -> dict[str, Any]:
        if self._cluster is None:
            raise NodeError(
                f"node {self.name!r} is not in a cluster (airssys serve --cluster nats://HOST:PORT)"
            )
        return self._cluster.view()

    def _op_list(self) -> list[dict[str, Any]]:
        return [
            {"address": a["address"], "kind": a["kind"], "state": a["state"]} for a in self.actors()
        ]

    def _op_info(self, address: str) -> dict[str, Any]:
        actor = self._find(address)
        counts = self.system.audit.counts(address)
        audit = {
            kind: {"grants": c.grants, "denials": c.denials} for (_name, kind), c in counts.items()
        }
        return {"actor": actor, "audit": audit}

    def _op_logs(self, component: str | None, limit: int | None, follow: bool) -> list[Event]:
        return self.ring.recent(address=component, limit=limit or _LOGS_DEFAULT)

    def _op_audit(
        self,
        component: str | None,
        decision: str | None,
        kind: str | None,
        since: float | None,
        limit: int | None,
        follow: bool,
    ) -> list[dict[str, Any]]:
        records = self.system.audit.query(
            component=component,
            decision=cast(Any, decision),
            kind=kind,
            since=since,
            limit=limit or _LOGS_DEFAULT,
        )
        return [r.to_dict() for r in records]

    def _component(self, address: str, what: str) -> None:
        """``address`` is one of the deployment's components (not a supervisor), or an
        address another node of the cluster serves."""
        cluster = self._cluster
        if self.system.lookup(address) is None and cluster is not None and cluster.hosts(address):
            return
        if self.system.lookup(address) is None:
            raise ActorDeadError(f"no actor at {address} (airssys list shows the addresses)")
        if address not in self._components:
            raise ValueError(f"{what} goes to a component; {address} is a supervisor")

    @staticmethod
    def _payload(message: str, codec_name: str) -> bytes:
        value: Any
        if codec_name == "raw":
            value = message.encode("utf-8", "surrogatepass")
        else:
            value = message_value(message)  # JSON, else the text (refused: broken JSON)
        return codec.encode(value, codec_name)

    async def _op_ask(
        self, address: str, message: str, codec: str, timeout: float
    ) -> dict[str, Any]:
        self._component(address, "ask")
        reply = await self.system.ask(address, self._payload(message, codec), timeout=timeout)
        return _reply(reply)

    async def _op_send(
        self, address: str, message: str, codec: str, timeout: float
    ) -> dict[str, Any]:
        """Queue a message as the mailbox's strategy says: ``wait`` waits for room (up
        to ``timeout`` seconds), ``drop`` drops it (``queued`` false), ``raise`` fails."""
        self._component(address, "send")
        payload = self._payload(message, codec)
        ref = self.system.lookup(address)
        if ref is None:  # served by another node of the cluster
            self.system.send(address, payload)
            return {"address": address, "queued": True}
        stats = ref.mailbox
        dropped = stats.dropped
        try:
            await asyncio.wait_for(ref.tell(payload), timeout)
        except TimeoutError:
            raise MailboxFull(
                f"the mailbox of {address} stayed full ({stats.capacity} messages) for "
                f"{timeout:g} s: the message was not sent; wait longer with --timeout"
            ) from None
        return {"address": address, "queued": ref.mailbox.dropped == dropped}

    def _supervisor_of(self, address: str) -> tuple[SupervisorRef, str]:
        parent, _, child_id = address.rpartition("/")
        if not parent:
            raise ValueError(
                f"{address} is a top-level supervisor; stop, start and restart act on its "
                "children (e.g. /app/echo)"
            )
        ref = self.system.lookup(parent)
        kinds = {s.address: s.kind for s in self.system.snapshot()}
        if ref is None:
            raise ActorDeadError(f"no supervisor at {parent}")
        if kinds.get(parent) != "supervisor":
            raise ValueError(f"{parent} is not a supervisor: {address} is not a supervised child")
        return SupervisorRef(ref), child_id

    async def _op_stop(self, address: str) -> dict[str, Any]:
        sup, child_id = self._supervisor_of(address)
        _log.info("control request", op="stop", address=address)
        await sup.terminate_child(child_id)
        return {"address": address, "state": "stopped"}

    async def _op_start(self, address: str) -> dict[str, Any]:
        sup, child_id = self._supervisor_of(address)
        _log.info("control request", op="start", address=address)
        ref = await sup.restart_child(child_id)
        return {"address": address, "state": ref.state.value}

    async def _op_restart(self, address: str) -> dict[str, Any]:
        sup, child_id = self._supervisor_of(address)
        _log.info("control request", op="restart", address=address)
        await sup.terminate_child(child_id)
        ref = await sup.restart_child(child_id)
        return {"address": address, "state": ref.state.value}

    # --- lifecycle: hot update from the store ----------------------------------------------

    def _store(self) -> Any:
        from ..lifecycle import Store

        return Store(self.settings.data_dir, audit=self.system.audit)

    async def _op_update(self, address: str, package: str, probation: float) -> dict[str, Any]:
        """Update ``address`` to an installed package, blue-green (system.update)."""
        from ..lifecycle import split_spec

        snapshot = next((s for s in self.system.snapshot() if s.address == address), None)
        if snapshot is None or snapshot.kind != "component":
            raise ActorDeadError(f"no component at {address} (airssys list shows the addresses)")
        spec = package if not package.startswith("@") else f"{snapshot.component}{package}"
        name, version = split_spec(spec)
        store = self._store()
        loop = asyncio.get_running_loop()
        installed = await loop.run_in_executor(None, store.get, name, version)
        checkout = await loop.run_in_executor(None, store.path, installed)
        _log.info("control request", op="update", address=address, package=spec)
        report = await self.system.update(
            address, checkout, trust=installed.trust, probation=probation
        )
        entry = self._entry(address)
        first = Row(self.serving.get(address), report.old.version, report.old.digest)
        self.serving[address] = f"{installed.name}@{installed.version}"
        now = Row(self.serving[address], report.new.version, report.new.digest)
        self.desired.updated(address, self._base(entry), first, now)
        return {
            **report.as_dict(),
            "package": self.serving[address],
            "trust": installed.trust,
            "signer": installed.signer,
        }

    async def _op_rollback(self, address: str) -> dict[str, Any]:
        _log.info("control request", op="rollback", address=address)
        entry = self._entry(address)
        if len(self.system.versions(address)) >= 2:  # updated since this node started
            report = await self.system.rollback(address)
        else:  # updated before a restart: the recorded previous version, loaded again
            previous = self.desired.previous(address)
            if previous is None:
                raise UpdateFailed(f"{address} has no previous version to roll back to")
            if previous.package is None:
                source, trust = entry.source, entry.trust
            else:
                from ..lifecycle import split_spec

                store = self._store()
                loop = asyncio.get_running_loop()
                installed = await loop.run_in_executor(
                    None, store.get, *split_spec(previous.package)
                )
                source = await loop.run_in_executor(None, store.path, installed)
                trust = installed.trust
            report = await self.system.update(address, source, trust=trust, probation=0)
        row = self.desired.rolled_back(address)
        self._serve(address, row)
        return {**report.as_dict(), "package": self.serving.get(address)}

    def _op_versions(self, address: str) -> dict[str, Any]:
        """Every switch at ``address`` (kept across rollbacks and restarts), the last
        one serving."""
        serving = self.system.versions(address)[-1]
        rows = [row.as_dict() for row in self.desired.log(address)]
        if not rows:
            rows = [
                {**serving.as_dict(), "package": self.serving.get(address), "how": "deployment"}
            ]
        for row in rows:
            row["serving"] = False
        rows[-1]["serving"] = rows[-1]["digest"] == serving.digest
        return {"address": address, "serving": self.serving.get(address), "versions": rows}

    # --- streams -------------------------------------------------------------------------

    async def follow(self, request: Request) -> AsyncGenerator[dict[str, Any], None]:
        if request.op == "logs":
            async for event in self._follow_logs(request.args["component"], request.args["limit"]):
                yield event
        else:
            args = {k: v for k, v in request.args.items() if k != "follow"}
            async for record in self._follow_audit(**args):
                yield record

    async def _follow_logs(
        self, address: str | None, limit: int | None
    ) -> AsyncGenerator[dict[str, Any], None]:
        queue: asyncio.Queue[Event] = asyncio.Queue(_FOLLOW_QUEUE)
        dropped = 0

        def take(event: Event) -> None:
            nonlocal dropped
            if matches(event, address):
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    dropped += 1

        unsubscribe = self.ring.subscribe(take)
        try:
            backlog = self.ring.recent(address=address, limit=limit or _FOLLOW_BACKLOG)
            last = backlog[-1]["seq"] if backlog else 0
            for event in backlog:
                yield event
            while True:
                event = await queue.get()
                if dropped:
                    yield {
                        "event": f"{dropped} log events not sent: the client reads too slowly",
                        "level": "warning",
                    }
                    dropped = 0
                if event.get("seq", 0) > last:
                    yield event
        finally:
            unsubscribe()

    async def _follow_audit(
        self,
        component: str | None,
        decision: str | None,
        kind: str | None,
        since: float | None,
        limit: int | None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        audit = self.system.audit

        def query() -> list[Any]:
            return audit.query(
                component=component, decision=cast(Any, decision), kind=kind, since=since
            )

        records = query()
        for record in records[-(limit or _FOLLOW_BACKLOG) :]:
            yield record.to_dict()
        seen = records[-1] if records else None
        while True:
            await asyncio.sleep(_AUDIT_POLL)
            records = query()
            fresh = records
            if seen is not None:
                index = next(
                    (i for i in range(len(records) - 1, -1, -1) if records[i] is seen), None
                )
                fresh = (
                    records[index + 1 :]
                    if index is not None
                    else [r for r in records if r.time > seen.time]
                )
            for record in fresh:
                yield record.to_dict()
            if records:
                seen = records[-1]


def _fields(summary: ActorSummary) -> dict[str, Any]:
    return {
        "address": summary.address,
        "processed": summary.processed,
        "queued": summary.queued,
        "dropped": summary.dropped,
        "restarts": summary.restarts,
        "state": summary.state,
    }


def _reply(reply: Any) -> dict[str, Any]:
    if not isinstance(reply, bytes | bytearray | memoryview):
        return {"codec": None, "value": jsonable(reply)}
    try:
        value = codec.decode(reply)
        name: str | None = codec.codec_of(reply).name
    except CodecError:
        return {"codec": None, "value": jsonable(bytes(reply))}
    return {"codec": name, "value": jsonable(value)}
