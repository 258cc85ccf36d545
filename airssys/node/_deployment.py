"""DEPLOYMENT.toml: what one node runs, checked whole before anything starts.

    [node]
    name = "demo"                      # required: the system's name, the run dir's name
    run-dir = "/run/airssys/demo"      # control socket; default: XDG_RUNTIME_DIR or /tmp
    metrics = "127.0.0.1:9464"         # HTTP /metrics, /healthz, /readyz (loopback)
    shutdown-timeout = 10              # seconds to drain the mailboxes on SIGTERM
    storage = "sqlite"                 # sqlite, lmdb or memory
    data-dir = "data"                  # relative to this file
    policy = "policy.toml"             # relative to this file
    audit-log = "audit.jsonl"          # relative to this file

    [cluster]                          # optional: join a cluster (docs/cluster.md)
    url = "nats://127.0.0.1:4222"
    node = "a"                         # this node's name in the cluster (default: node.name)

    [[supervisor]]
    name = "app"
    strategy = "one_for_one"
    intensity = 3
    period = 5.0
    unhealthy-after = 3
    instances = 1                      # cluster: how many nodes run it at once
    node = ["a", "b"]                  # cluster: the nodes that may run it, preferred first

    [[supervisor.component]]
    id = "echo"
    manifest = "../echo"               # a folder, Component.toml, .wasm or .wat
    trust = "unknown"
    restart = "permanent"
    mailbox = 1000
    execution = "auto"

Every error is a :class:`DeploymentError` naming the file, the key and what is
accepted; nothing else escapes :func:`load_deployment`. Component manifests and
the policy file are read and validated here too, so a bad one stops the node
before any actor starts.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .._dirs import run_base
from .._logging import truncate
from ..actors import Restart, Strategy
from ..errors import AirssysError, InvalidName, ManifestError
from ..errors import DeploymentError as DeploymentError
from ..manifest import DurabilitySpec, parse_durability
from ..names import NODE_NAME, NODE_NAME_RULE, check_name
from ..security import TrustLevel
from ..units import show

if TYPE_CHECKING:
    from ..security import AuditLog

__all__ = (
    "ClusterSettings",
    "ComponentEntry",
    "Deployment",
    "DeploymentError",
    "MetricsAddress",
    "NodeSettings",
    "SupervisorEntry",
    "audit_trust",
    "default_run_dir",
    "load_deployment",
    "parse_deployment",
    "run_base",
)

_NODE_KEYS: Final = (
    "name",
    "run-dir",
    "metrics",
    "metrics-allow-remote",
    "shutdown-timeout",
    "storage",
    "data-dir",
    "policy",
    "audit-log",
)
_SUPERVISOR_KEYS: Final = (
    "name",
    "strategy",
    "intensity",
    "period",
    "unhealthy-after",
    "instances",
    "node",
    "component",
)
_CLUSTER_KEYS: Final = ("url", "node", "journal", "replicas", "lease", "renew")
_CLUSTER_JOURNALS: Final = ("auto", "jetstream", "local")
_CLUSTER_URL: Final = re.compile(r"(nats|tls)://[^\s/]+:[0-9]{1,5}", re.ASCII)
_COMPONENT_KEYS: Final = (
    "id",
    "manifest",
    "package",
    "durability",
    "trust",
    "restart",
    "mailbox",
    "execution",
)
_STORAGE: Final = ("sqlite", "lmdb", "memory")
_EXECUTION: Final = ("auto", "inline", "thread")
_SOURCES: Final = (".wasm", ".wat", ".toml")
# the node's name is a directory and a file name: stricter than the actor-name rule
_MAILBOX_MAX: Final = 10_000_000
_TIMEOUT_MAX: Final = 3600.0
_INTENSITY_MAX: Final = 1_000_000
_FILE_MAX: Final = 1024 * 1024
DEFAULT_SHUTDOWN_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    """Where the node's HTTP endpoints listen (port 0: any free port)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """The ``[node]`` table, paths made absolute."""

    name: str
    run_dir: Path
    metrics: MetricsAddress | None = None
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    storage: str = "sqlite"
    data_dir: Path | None = None
    policy: Path | None = None
    audit_log: Path | None = None

    @property
    def socket(self) -> Path:
        return self.run_dir / "control.sock"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """The ``[cluster]`` table (or ``airssys serve --cluster``)."""

    url: str
    node: str
    """This node's name in the cluster (the ``[node]`` name unless given)."""
    journal: str = "auto"
    """Where placed durable components journal: ``jetstream`` (the stream is the truth,
    owners fenced by leases), ``local`` (the node's data dir), ``auto`` (JetStream when
    the servers have it)."""
    replicas: int = 1
    """Copies of the journal stream and the owners bucket (3 with 3 NATS servers)."""
    lease: float = 3.0
    """Seconds a placed supervisor's owner may go without renewing its lease."""
    renew: float = 1.0
    """Seconds between two renewals of a lease."""


@dataclass(frozen=True, slots=True)
class ComponentEntry:
    """One ``[[supervisor.component]]``: a supervised component."""

    id: str
    source: Path
    """The component folder, Component.toml, .wasm or .wat; for a package, its
    verified checkout in the store."""
    trust: str = "unknown"
    restart: Restart = Restart.PERMANENT
    mailbox: int | None = None
    execution: str = "auto"
    durability: DurabilitySpec | None = None
    """The ``durability`` table: replaces the component manifest's ``[durability]``."""
    package: str | None = None
    """``name@version`` of an installed package (``airssys install``), when the
    component comes from the store; its trust is decided when the deployment is
    read: ``trusted`` while its signer's key is in the trust store (unless ``trust``
    is given)."""
    revoked: str | None = None
    """For a package: its signer's key id when that key is no longer trusted (the
    package then runs as ``unknown``); :func:`audit_trust` records it."""


@dataclass(frozen=True, slots=True)
class SupervisorEntry:
    """One ``[[supervisor]]``: a top-level supervisor and its components, in order."""

    name: str
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 3
    period: float = 5.0
    unhealthy_after: int | None = None
    components: tuple[ComponentEntry, ...] = ()
    instances: int | None = None
    """In a cluster: how many nodes run this supervisor at once (None: every node
    whose deployment lists it, and no failover)."""
    nodes: tuple[str, ...] = ()
    """In a cluster: the nodes that may run it, most preferred first (empty: any)."""

    @property
    def placed(self) -> bool:
        """Placed by the cluster (``instances`` or ``node`` given)."""
        return self.instances is not None or bool(self.nodes)


@dataclass(frozen=True, slots=True)
class Deployment:
    """A parsed, validated deployment file."""

    path: Path
    node: NodeSettings
    supervisors: tuple[SupervisorEntry, ...]
    cluster: ClusterSettings | None = None


def default_run_dir(name: str) -> Path:
    return run_base() / name


# --- helpers -------------------------------------------------------------------------


class _Where:
    """Builds error messages: ``<file>: <key>: <problem>``."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, problem: str) -> DeploymentError:
        return DeploymentError(f"{self.path}: {key}: {problem}")


def _keys(where: _Where, table: dict[str, Any], accepted: tuple[str, ...], key: str) -> None:
    for name in table:
        if name not in accepted:
            raise where.error(
                f"{key}.{show(name) if not name.isprintable() else name}",
                f"unknown key; accepted in {key}: {', '.join(accepted)}",
            )


def _int(where: _Where, key: str, value: object, low: int, high: int) -> int:
    accepted = f"accepted: a whole number from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(key, f"expected a whole number, got {show(value)}; {accepted}")
    if not low <= value <= high:
        raise where.error(key, f"{show(value)} is out of range; {accepted}")
    return value


def _seconds(where: _Where, key: str, value: object, *, zero: bool) -> float:
    low = ">= 0" if zero else "> 0"
    accepted = f"accepted: a number of seconds {low}, at most {_TIMEOUT_MAX:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(key, f"expected a number, got {show(value)}; {accepted}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        raise where.error(key, f"{show(value)} is out of range; {accepted}")
    if seconds > _TIMEOUT_MAX:
        raise where.error(key, f"{show(value)} is out of range; {accepted}")
    return seconds


_E = TypeVar("_E", bound=StrEnum)


def _enum(where: _Where, key: str, kind: type[_E], value: object) -> _E:
    accepted = ", ".join(repr(m.value) for m in kind)
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise where.error(key, f"{show(value)} is not accepted; accepted: {accepted}")


def _word(where: _Where, key: str, value: object, accepted: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in accepted:
        return value
    choices = ", ".join(repr(a) for a in accepted)
    raise where.error(key, f"{show(value)} is not accepted; accepted: {choices}")


def _path(where: _Where, key: str, value: object) -> Path:
    """A path relative to the deployment file (or absolute), made absolute."""
    accepted = "accepted: a path, relative to the deployment file or absolute"
    if not isinstance(value, str) or not value:
        raise where.error(key, f"expected a non-empty string, got {show(value)}; {accepted}")
    if not value.isprintable() or re.search("[\ud800-\udfff]", value):
        raise where.error(key, f"{show(value)} holds a character that is not printable")
    try:
        return (where.path.parent / os.path.expanduser(value)).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise where.error(key, f"{show(value)} cannot be resolved: {exc}") from None


def _name(where: _Where, key: str, value: object, what: str) -> str:
    if not isinstance(value, str):
        raise where.error(key, f"expected a string, got {show(value)}")
    try:
        return check_name(value, what)
    except InvalidName as exc:
        raise where.error(key, str(exc)) from None


def _metrics(where: _Where, value: object, allow_remote: bool) -> MetricsAddress | None:
    key = "node.metrics"
    accepted = (
        'accepted: "HOST:PORT" with a loopback host (127.0.0.1, [::1] or localhost) '
        'and a port from 0 (any free port) to 65535, e.g. "127.0.0.1:9464"; '
        'or "" for no HTTP endpoints'
    )
    if not isinstance(value, str):
        raise where.error(key, f"expected a string, got {show(value)}; {accepted}")
    if value == "":
        return None
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):([0-9]{1,5})", value)
    if match is None:
        raise where.error(key, f"{show(value)} is not HOST:PORT; {accepted}")
    host, port_text = match.group(1), match.group(2)
    port = int(port_text)
    if port > 65535:
        raise where.error(key, f"port {port} is out of range; {accepted}")
    host = host.strip("[]")
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            if not allow_remote:
                raise where.error(
                    key, f"{show(host)} is not an IP address or localhost; {accepted}"
                ) from None
    if not loopback and not allow_remote:
        raise where.error(
            key,
            f"{show(host)} is not a loopback address; {accepted} "
            "(set node.metrics-allow-remote = true to listen beyond this host)",
        )
    if host == "localhost":
        host = "127.0.0.1"
    return MetricsAddress(host, port)


# --- parsing -------------------------------------------------------------------------


def load_deployment(path: str | PathLike[str]) -> Deployment:
    """Read and validate a deployment file, its components' manifests and its policy."""
    p = Path(path)
    try:
        p = p.resolve()
        problem = None
        if not p.is_file():
            what = "it is a directory" if p.is_dir() else "no such file"
            problem = f"cannot read the deployment: {what}"
        elif p.stat().st_size > _FILE_MAX:
            problem = f"the deployment is larger than {_FILE_MAX} bytes"
        text = "" if problem else p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeploymentError(f"{p}: cannot read the deployment: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DeploymentError(f"{p}: the deployment is not UTF-8 text: {exc}") from exc
    except ValueError as exc:  # a NUL in the path
        raise DeploymentError(f"{show(str(path))}: cannot read the deployment: {exc}") from exc
    if problem:  # raised out here: a DeploymentError is a ValueError too
        raise DeploymentError(f"{p}: {problem}")
    return parse_deployment(text, path=p)


def parse_deployment(
    text: str, *, path: str | PathLike[str] = "deployment.toml", check_files: bool = True
) -> Deployment:
    """Validate deployment text; ``path`` names it in errors and anchors relative paths.

    ``check_files``: also read every component manifest and the policy (the default);
    without it only the deployment's own keys are checked.
    """
    p = Path(path)
    where = _Where(p)
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise DeploymentError(f"{p}: not valid TOML: nested too deeply") from None
    except ValueError as exc:
        raise DeploymentError(f"{p}: not valid TOML: {exc}") from exc
    for key in data:
        if key not in ("node", "supervisor", "cluster"):
            raise where.error(
                show(key) if not key.isprintable() else key,
                "unknown section; accepted: [node], [[supervisor]], [cluster]",
            )
    node_table = data.get("node")
    if not isinstance(node_table, dict):
        raise where.error("node", 'missing [node] table (with at least name = "...")')
    node = _node(where, node_table)
    raw_supervisors = data.get("supervisor", [])
    if not isinstance(raw_supervisors, list) or not all(
        isinstance(s, dict) for s in raw_supervisors
    ):
        raise where.error("supervisor", "expected [[supervisor]] tables")
    if not raw_supervisors:
        raise where.error("supervisor", "no [[supervisor]] table: a node runs at least one")
    supervisors: list[SupervisorEntry] = []
    for index, table in enumerate(raw_supervisors):
        entry = _supervisor(where, index, table, check_files=check_files, data_dir=node.data_dir)
        if any(s.name == entry.name for s in supervisors):
            raise where.error(f"supervisor.{entry.name}.name", "two supervisors share this name")
        supervisors.append(entry)
    if check_files and node.policy is not None:
        _check_policy(where, node.policy)
    cluster = None
    if "cluster" in data:
        cluster = _cluster(where, data["cluster"], node.name)
    return Deployment(path=p, node=node, supervisors=tuple(supervisors), cluster=cluster)


def cluster_url(value: object, key: str = "cluster.url", where: _Where | None = None) -> str:
    """A NATS server URL: ``nats://HOST:PORT`` or ``tls://HOST:PORT`` (comma-separated
    for several servers)."""
    accepted = 'accepted: "nats://HOST:PORT" or "tls://HOST:PORT", comma-separated for several'
    if not isinstance(value, str) or not all(
        _CLUSTER_URL.fullmatch(part.strip()) for part in value.split(",")
    ):
        problem = f"{show(value)} is not a NATS URL; {accepted}"
        raise where.error(key, problem) if where else DeploymentError(f"{key}: {problem}")
    return value


def cluster_node(value: object, key: str = "cluster.node", where: _Where | None = None) -> str:
    """A cluster node name: the node-name rule."""
    if not isinstance(value, str) or not NODE_NAME.fullmatch(value):
        problem = f"{show(value)} is not accepted; accepted: {NODE_NAME_RULE}"
        raise where.error(key, problem) if where else DeploymentError(f"{key}: {problem}")
    return value


def _cluster(where: _Where, table: object, default_node: str) -> ClusterSettings:
    if not isinstance(table, dict):
        raise where.error("cluster", "expected a [cluster] table")
    _keys(where, table, _CLUSTER_KEYS, "cluster")
    if "url" not in table:
        raise where.error("cluster.url", 'missing; accepted: "nats://HOST:PORT"')
    url = cluster_url(table["url"], where=where)
    node = cluster_node(table.get("node", default_node), where=where)
    journal = table.get("journal", "auto")
    if journal not in _CLUSTER_JOURNALS:
        raise where.error("cluster.journal", f"{journal!r}; accepted: auto, jetstream, local")
    replicas = table.get("replicas", 1)
    if type(replicas) is not int or not 1 <= replicas <= 5:
        raise where.error("cluster.replicas", f"{replicas!r}; accepted: an integer from 1 to 5")
    timings = {}
    for key, default in (("lease", 3.0), ("renew", 1.0)):
        value = table.get(key, default)
        if type(value) not in (int, float) or not 0.1 <= value <= 600:
            raise where.error(f"cluster.{key}", f"{value!r}; accepted: seconds from 0.1 to 600")
        timings[key] = float(value)
    if timings["renew"] * 2 > timings["lease"]:
        raise where.error(
            "cluster.renew",
            f"{timings['renew']:g} s with a lease of {timings['lease']:g} s; accepted: at "
            "most half the lease (a renewal may be late once)",
        )
    return ClusterSettings(url=url, node=node, journal=journal, replicas=replicas, **timings)


def with_cluster(deployment: Deployment, url: str | None, node: str | None) -> Deployment:
    """``deployment`` joined to the cluster at ``url`` as ``node`` (``airssys serve
    --cluster URL --node-name NAME``): each replaces the ``[cluster]`` table's value."""
    import dataclasses

    if url is None and node is None:
        return deployment
    current = deployment.cluster
    if url is None and current is None:
        raise DeploymentError(
            f"{deployment.path}: --node-name needs a cluster: --cluster nats://HOST:PORT "
            "or a [cluster] table"
        )
    kept = (
        {}
        if current is None
        else {
            "journal": current.journal,
            "replicas": current.replicas,
            "lease": current.lease,
            "renew": current.renew,
        }
    )
    settings = ClusterSettings(
        url=cluster_url(url, "--cluster") if url is not None else current.url,  # type: ignore[union-attr]
        node=cluster_node(node, "--node-name")
        if node is not None
        else current.node
        if current is not None
        else deployment.node.name,
        **kept,  # type: ignore[arg-type]
    )
    return dataclasses.replace(deployment, cluster=settings)


def _node(where: _Where, table: dict[str, Any]) -> NodeSettings:
    _keys(where, table, _NODE_KEYS, "node")
    if "name" not in table:
        raise where.error("node.name", f"missing; accepted: {NODE_NAME_RULE}")
    name = _name(where, "node.name", table["name"], "node.name")
    if not NODE_NAME.fullmatch(name):
        raise where.error("node.name", f"{show(name)} is not accepted; accepted: {NODE_NAME_RULE}")
    run_dir = (
        _path(where, "node.run-dir", table["run-dir"])
        if "run-dir" in table
        else default_run_dir(name)
    )
    if len(str(run_dir / "control.sock").encode()) > 100:  # sun_path holds 108 bytes
        raise where.error(
            "node.run-dir",
            f"{str(run_dir)!r} is too long for a Unix socket path; "
            "accepted: a directory whose path is at most 87 bytes",
        )
    allow_remote = table.get("metrics-allow-remote", False)
    if not isinstance(allow_remote, bool):
        raise where.error(
            "node.metrics-allow-remote", f"expected true or false, got {show(allow_remote)}"
        )
    metrics = _metrics(where, table["metrics"], allow_remote) if "metrics" in table else None
    timeout = (
        _seconds(where, "node.shutdown-timeout", table["shutdown-timeout"], zero=True)
        if "shutdown-timeout" in table
        else DEFAULT_SHUTDOWN_TIMEOUT
    )
    storage = _word(where, "node.storage", table.get("storage", "sqlite"), _STORAGE)
    paths = {
        key: _path(where, f"node.{key}", table[key]) if key in table else None
        for key in ("data-dir", "policy", "audit-log")
    }
    audit = paths["audit-log"]
    if audit is not None and not audit.parent.is_dir():
        raise where.error(
            "node.audit-log",
            f"the directory {str(audit.parent)!r} does not exist; accepted: a file in an "
            "existing directory",
        )
    return NodeSettings(
        name=name,
        run_dir=run_dir,
        metrics=metrics,
        shutdown_timeout=timeout,
        storage=storage,
        data_dir=paths["data-dir"],
        policy=paths["policy"],
        audit_log=audit,
    )


def _supervisor(
    where: _Where,
    index: int,
    table: dict[str, Any],
    *,
    check_files: bool,
    data_dir: Path | None = None,
) -> SupervisorEntry:
    key = f"supervisor[{index}]"
    if "name" not in table:
        raise where.error(f"{key}.name", "missing; accepted: " + _NAME_HELP)
    name = _name(where, f"{key}.name", table["name"], "supervisor name")
    key = f"supervisor.{name}"
    _keys(where, table, _SUPERVISOR_KEYS, key)
    strategy = _enum(where, f"{key}.strategy", Strategy, table.get("strategy", "one_for_one"))
    intensity = _int(where, f"{key}.intensity", table.get("intensity", 3), 0, _INTENSITY_MAX)
    period = _seconds(where, f"{key}.period", table.get("period", 5.0), zero=False)
    unhealthy = (
        _int(where, f"{key}.unhealthy-after", table["unhealthy-after"], 1, _INTENSITY_MAX)
        if "unhealthy-after" in table
        else None
    )
    instances = (
        _int(where, f"{key}.instances", table["instances"], 1, 1000)
        if "instances" in table
        else None
    )
    nodes: tuple[str, ...] = ()
    if "node" in table:
        value = table["node"]
        listed = [value] if isinstance(value, str) else value
        if not isinstance(listed, list) or not listed:
            raise where.error(
                f"{key}.node", f"expected a node name or a list of them, got {show(value)}"
            )
        nodes = tuple(cluster_node(n, f"{key}.node", where) for n in listed)
        if len(set(nodes)) != len(nodes):
            raise where.error(f"{key}.node", "a node is listed twice")
    raw = table.get("component", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise where.error(f"{key}.component", "expected [[supervisor.component]] tables")
    components: list[ComponentEntry] = []
    for position, child in enumerate(raw):
        entry = _component(where, key, position, child, check_files=check_files, data_dir=data_dir)
        if any(c.id == entry.id for c in components):
            raise where.error(f"{key}.component.{entry.id}.id", "two components share this id")
        components.append(entry)
    return SupervisorEntry(
        name=name,
        strategy=strategy,
        intensity=intensity,
        period=period,
        unhealthy_after=unhealthy,
        components=tuple(components),
        instances=instances,
        nodes=nodes,
    )


_NAME_HELP: Final = (
    "1 to 255 characters, not '.' or '..', no '/', no control characters (airssys.names)"
)


def _component(
    where: _Where,
    parent: str,
    position: int,
    table: dict[str, Any],
    *,
    check_files: bool,
    data_dir: Path | None = None,
) -> ComponentEntry:
    key = f"{parent}.component[{position}]"
    if "id" not in table:
        raise where.error(f"{key}.id", "missing; accepted: " + _NAME_HELP)
    child_id = _name(where, f"{key}.id", table["id"], "component id")
    key = f"{parent}.component.{child_id}"
    _keys(where, table, _COMPONENT_KEYS, key)
    package: str | None = None
    if "package" in table:
        if "manifest" in table:
            raise where.error(f"{key}.package", "give either manifest or package, not both")
        source, package, installed_trust, revoked = _package(
            where, f"{key}.package", table["package"], data_dir
        )
        default_trust = installed_trust
    elif "manifest" not in table:
        raise where.error(
            f"{key}.manifest",
            "missing; accepted: a component folder, Component.toml, .wasm or .wat "
            '(or package = "name@version" of an installed one)',
        )
    else:
        source = _path(where, f"{key}.manifest", table["manifest"])
        default_trust, revoked = "unknown", None
    trust = _enum(where, f"{key}.trust", TrustLevel, table.get("trust", default_trust)).value
    restart = _enum(where, f"{key}.restart", Restart, table.get("restart", "permanent"))
    mailbox = (
        _int(where, f"{key}.mailbox", table["mailbox"], 1, _MAILBOX_MAX)
        if "mailbox" in table
        else None
    )
    execution = _word(where, f"{key}.execution", table.get("execution", "auto"), _EXECUTION)
    durability = None
    if "durability" in table:
        try:
            durability = parse_durability(table["durability"], f"{key}.durability")
        except ManifestError as exc:
            raise DeploymentError(f"{where.path}: {exc}") from None
    if check_files and package is None:
        _check_source(where, f"{key}.manifest", source)
    return ComponentEntry(
        id=child_id,
        source=source,
        trust=trust,
        restart=restart,
        mailbox=mailbox,
        execution=execution,
        durability=durability,
        package=package,
        revoked=revoked if trust == "unknown" else None,
    )


def _package(
    where: _Where, key: str, value: object, data_dir: Path | None
) -> tuple[Path, str, str, str | None]:
    """An installed package: its verified checkout, ``name@version``, its trust now
    and the key id of a signer no longer trusted (None otherwise)."""
    from ..lifecycle import Store, split_spec

    if not isinstance(value, str):
        raise where.error(key, f"expected a string NAME or NAME@VERSION, got {show(value)}")
    try:
        name, version = split_spec(value)
        store = Store(data_dir)
        installed = store.get(name, version)
        checkout = store.path(installed)
    except (AirssysError, ValueError, OSError) as exc:
        raise where.error(
            key, f"{truncate(str(exc), 300)} (install it first: airssys install SOURCE)"
        ) from None
    return checkout, f"{installed.name}@{installed.version}", installed.trust, installed.revoked


def audit_trust(deployment: Deployment, audit: AuditLog) -> int:
    """Record in ``audit`` (kind ``trust``) every package of ``deployment`` whose
    signer's key is no longer trusted, by the address it runs at; how many. The node
    calls it once its audit log is open (the deployment is read before)."""
    from ..lifecycle import revocation_reason
    from ..security import DENY

    found = 0
    for supervisor in deployment.supervisors:
        for entry in supervisor.components:
            if entry.revoked is None or entry.package is None:
                continue
            found += 1
            audit.record(
                f"/{supervisor.name}/{entry.id}",
                "trust",
                f"{entry.package} signed by {entry.revoked}",
                DENY,
                revocation_reason(entry.package, entry.revoked),
                version=entry.package.rpartition("@")[2],
                trust=entry.trust,
            )
    return found


def _check_source(where: _Where, key: str, source: Path) -> None:
    """The component exists and its manifest (if any) is valid, its wasm built."""
    from ..manifest import load_manifest

    accepted = "accepted: a component folder (with Component.toml), a Component.toml, .wasm or .wat"
    if source.is_dir():
        if not (source / "Component.toml").is_file():
            raise where.error(key, f"{str(source)!r} holds no Component.toml; {accepted}")
    elif not source.is_file():
        raise where.error(key, f"{str(source)!r}: no such file or directory; {accepted}")
    elif source.suffix not in _SOURCES:
        raise where.error(key, f"{str(source)!r} is not a component; {accepted}")
    if not (source.is_dir() or source.suffix == ".toml"):
        return
    try:
        manifest = load_manifest(source)
    except ManifestError as exc:
        raise where.error(key, f"bad component manifest: {exc}") from None
    if not manifest.wasm.is_file():
        if manifest.source is not None and _can_build():
            return  # airssys serve builds it before the node starts
        hint = (
            f" (build it: airssys build {manifest.path.parent}; the build extra builds it at serve)"
            if manifest.source
            else ""
        )
        raise where.error(key, f"the component's wasm {str(manifest.wasm)!r} does not exist{hint}")


def _can_build() -> bool:
    import importlib.util

    return importlib.util.find_spec("componentize_py") is not None


def to_build(deployment: Deployment) -> list[Path]:
    """The deployment's Python components (a manifest with a ``source``), which
    ``airssys serve`` builds (cached) before the node starts."""
    from ..manifest import load_manifest

    found = []
    for supervisor in deployment.supervisors:
        for entry in supervisor.components:
            source = entry.source
            if entry.package is None and (source.is_dir() or source.suffix == ".toml"):
                manifest = load_manifest(source)
                if manifest.source is not None:
                    found.append(manifest.path)
    return found


def _check_policy(where: _Where, policy: Path) -> None:
    from ..security import Policy

    try:
        Policy.load(policy)
    except (ManifestError, ValueError) as exc:
        raise where.error("node.policy", f"bad policy: {exc}") from None
