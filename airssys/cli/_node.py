"""``airssys serve`` and the commands that talk to a running node.

``serve DEPLOYMENT.toml`` runs a node in the foreground (logs on stderr, one
``ready`` line when it is up, one final line per actor when it stops on SIGINT
or SIGTERM). The others are clients of its control socket: ``status``, ``list``,
``info``, ``logs``, ``ask``, ``send``, ``stop``, ``start``, ``restart``, ``update``,
``rollback``, ``versions``. Each
takes ``--node NAME`` or ``--socket PATH`` (default: ``$AIRSSYS_SOCKET``, else the
only node running, else the one named ``default``); a node that is not running
is one line on stderr and exit status 1. Results go to stdout (``--json``: JSON).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from .._logging import truncate
from ._options import LogLevel, Settings
from ._output import out_console
from ._progress import reporting

if TYPE_CHECKING:
    from ..node import ControlClient

__all__ = ("NODE_COMMANDS", "running_packages")

_out = out_console(soft_wrap=True)
_tree_out = out_console()  # the status tree wraps long lines instead
_err = Console(stderr=True, soft_wrap=True)
_ASK_SLACK: Final = 5.0
_LIFECYCLE_TIMEOUT: Final = 600.0  # between two progress lines: a cold compile's length

NodeOption = Annotated[
    str | None,
    typer.Option(
        "--node", metavar="NAME", help="The node's name (its default run dir holds the socket)."
    ),
]
SocketOption = Annotated[
    Path | None,
    typer.Option(
        "--socket",
        metavar="PATH",
        envvar="AIRSSYS_SOCKET",
        help="The node's control socket (default: the only node running, or 'default').",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Address = Annotated[
    str, typer.Argument(metavar="ADDRESS", help="An actor's address, e.g. /app/echo")
]


def _client(
    node: str | None, socket: Path | None, *, timeout: float | None = 30.0
) -> ControlClient:
    from ..node import ControlClient, find_socket

    return ControlClient(find_socket(node, socket), timeout=timeout).connect()


def _call(node: str | None, socket: Path | None, op: str, **fields: Any) -> Any:
    with _client(node, socket) as client:
        return client.request(op, **fields)


def _print_json(value: Any) -> None:
    _out.print(json.dumps(value, ensure_ascii=False), markup=False, highlight=False)


# --- serve ---------------------------------------------------------------------------


def serve(
    deployment: Annotated[
        Path, typer.Argument(metavar="DEPLOYMENT", help="The deployment file (TOML).")
    ],
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            metavar="URL",
            help="Join the cluster at this NATS server (nats://HOST:PORT); replaces "
            "cluster.url (docs/cluster.md).",
        ),
    ] = None,
    node_name: Annotated[
        str | None,
        typer.Option(
            "--node-name",
            metavar="NAME",
            help="This node's name in the cluster (default: cluster.node, else node.name).",
        ),
    ] = None,
) -> None:
    """Run a node: the deployment's supervisors, a control socket and HTTP endpoints.

    Stops on SIGINT or SIGTERM: no more control requests, the mailboxes drain (up
    to node.shutdown-timeout), the supervisors stop in reverse order, and one
    final line per actor says what it processed. Logs go to stderr (info and up
    unless --log-level or --quiet says otherwise).
    """
    from ..node import load_deployment, run_node, to_build, with_cluster
    from ._run import prepare

    with _stop_on_signals() as caught:
        try:
            loaded = load_deployment(deployment)  # every bad value refused before any start
            loaded = with_cluster(loaded, cluster, node_name)
            with reporting():
                for manifest in to_build(loaded):  # Python components: built, or cached
                    prepare(manifest)
        except _Signalled as signalled:
            _err.print(
                f"airssys serve: stopped by {signalled.name} during start-up "
                f"(before the node started)",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(0) from None
        caught.raising = False  # from here the node's own handlers take over
        level = Settings.log_level(default=LogLevel.INFO)
        run_node(
            loaded, level=level.value, json_logs=Settings.json_logs, early_signal=caught.signal
        )


class _Signalled(BaseException):  # like KeyboardInterrupt: nothing catches it on the way
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Caught:
    """A SIGINT or SIGTERM before the node installed its own handlers."""

    def __init__(self) -> None:
        self.raising = True
        self.signal: str | None = None


@contextmanager
def _stop_on_signals() -> Iterator[_Caught]:
    """SIGINT and SIGTERM during start-up: while building, a clean stop at once (one
    line, status 0, the build's subprocess killed); between that and the node's own
    handlers, remembered for the node to stop as soon as it can."""
    import signal

    caught = _Caught()

    def handler(number: int, _frame: object) -> None:
        name = signal.Signals(number).name
        if caught.raising:
            caught.raising = False
            raise _Signalled(name)
        caught.signal = caught.signal or name

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --- status --------------------------------------------------------------------------


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value} B"


def _count(value: int) -> str:
    for unit, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return str(value)


_STATE_STYLE: Final = {
    "running": "green",
    "restarting": "yellow",
    "starting": "yellow",
    "stopping": "yellow",
    "stopped": "dim",
    "failed": "red",
}


def _label(actor: dict[str, Any]) -> Text:
    address = str(actor["address"])
    name = address.rsplit("/", 1)[-1] if actor.get("parent") else address
    state = str(actor.get("state", "?"))
    text = Text.assemble((name, "bold"), "  ", (state, _STATE_STYLE.get(state, "")))
    parts = [
        f"restarts {actor.get('restarts', 0)}",
        f"mailbox {actor.get('queued', 0)}/{actor.get('capacity', 0)}",
    ]
    if actor.get("kind") == "component":
        parts += [
            f"calls {_count(int(actor.get('calls', 0)))}",
            f"errors {actor.get('errors', 0)}",
            f"traps {actor.get('traps', 0)}",
            f"fuel {_count(int(actor.get('fuel', 0)))}",
            f"memory cap {_size(actor.get('memory_limit'))}",
        ]
        if actor.get("denials"):
            parts.append(f"denials {actor['denials']}")
    elif actor.get("kind") == "supervisor" and actor.get("healthy") is False:
        text.append("  crash-looping", "red")
    text.append("  " + "  ".join(parts), "dim")
    if actor.get("last_error"):
        text.append(f"\n  last error: {truncate(actor['last_error'], 200)}", "red")
    return text


def _render_status(status: dict[str, Any]) -> Group:
    health = status.get("health", {})
    healthy = bool(health.get("healthy"))
    ready = "ready" if status.get("ready") else "draining" if status.get("draining") else "starting"
    head = Text.assemble(
        ("node ", "bold"),
        (repr(status.get("node")), "bold cyan"),
        f"  pid {status.get('pid')}  up {float(status.get('uptime', 0)):.0f} s  ",
        (ready, "green" if ready == "ready" else "yellow"),
        "  ",
        ("healthy", "green") if healthy else ("unhealthy", "red"),
    )
    tree = Tree(head)
    nodes: dict[str, Tree] = {}
    for actor in status.get("actors", []):
        parent = nodes.get(str(actor.get("parent"))) if actor.get("parent") else tree
        branch = (parent or tree).add(_label(actor))
        nodes[str(actor["address"])] = branch
    parts: list[Any] = [tree]
    for problem in health.get("problems", []):
        parts.append(Text.assemble(("problem: ", "red"), str(problem)))
    if status.get("metrics"):
        parts.append(Text(f"metrics {status['metrics']}", style="dim"))
    return Group(*parts)


def _render_cluster(view: dict[str, Any]) -> Group:
    state = ("connected", "green") if view.get("connected") else ("disconnected", "red")
    head = Text.assemble(
        ("cluster ", "bold"),
        (str(view.get("url")), "bold cyan"),
        "  ",
        state,
        f"  this node {view.get('node')!r}",
    )
    rows: list[Any] = [head]
    for node in view.get("nodes", []):
        mark = " (this node)" if node.get("self") else f"  seen {node.get('seen_ago')} s ago"
        running = ", ".join(node.get("meta", {}).get("running", [])) or "-"
        rows.append(
            Text(
                f"node {node['node']}  pid {node.get('pid')}  host {node.get('host')}  "
                f"addresses {len(node.get('addresses', []))}  placed {running}{mark}"
            )
        )
    width = max((len(a) for a in view.get("addresses", {})), default=0)
    for address, nodes in view.get("addresses", {}).items():
        rows.append(Text(f"  {address:<{width}}  {', '.join(nodes)}"))
    return Group(*rows)


def status(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between refreshes with --watch.", min=0.1)
    ] = 1.0,
    as_json: JsonOption = False,
    node: NodeOption = None,
    socket: SocketOption = None,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="The cluster: its nodes and where each address lives.")
    ] = False,
) -> None:
    """The node's supervisor tree: state, restarts, mailboxes, calls, fuel, health."""
    if cluster:
        view = _call(node, socket, "cluster")
        if as_json:
            _print_json(view)
        else:
            _out.print(_render_cluster(view))
        return
    if not watch:
        result = _call(node, socket, "status")
        if as_json:
            _print_json(result)
        else:
            _tree_out.print(_render_status(result))
        return
    from rich.live import Live

    with _client(node, socket) as client:
        first = client.request("status")
        if as_json:
            _print_json(first)
            while True:
                time.sleep(interval)
                _print_json(client.request("status"))
        with Live(_render_status(first), console=_tree_out, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(_render_status(client.request("status")), refresh=True)


def list_(
    as_json: JsonOption = False, node: NodeOption = None, socket: SocketOption = None
) -> None:
    """Every actor's address, kind and state."""
    result = _call(node, socket, "list")
    if as_json:
        _print_json(result)
        return
    width = max((len(a["address"]) for a in result), default=0)
    for actor in result:
        _out.print(
            f"{actor['address']:<{width}}  {actor['kind']:<10}  {actor['state']}",
            markup=False,
            highlight=False,
        )


def info(
    address: Address,
    as_json: JsonOption = False,
    node: NodeOption = None,
    socket: SocketOption = None,
) -> None:
    """One actor: its snapshot and its audit counts."""
    result = _call(node, socket, "info", address=address)
    if as_json:
        _print_json(result)
        return
    for key, value in result["actor"].items():
        _out.print(f"{key:<13} {value}", markup=False, highlight=False)
    for kind, counts in sorted(result.get("audit", {}).items()):
        _out.print(
            f"audit {kind:<7} grants={counts['grants']} denials={counts['denials']}",
            markup=False,
            highlight=False,
        )


# --- logs ----------------------------------------------------------------------------


def _audit_line(record: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(float(record.get("time", 0))))
    count = f" x{record['count']}" if record.get("count", 1) != 1 else ""
    return (
        f"{when}Z {record.get('decision')}{count} {record.get('kind')} {record.get('resource')} "
        f"component={record.get('component')} trust={record.get('trust')} "
        f"reason={record.get('reason')}"
    )


def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones.")] = False,
    audit: Annotated[
        bool, typer.Option("--audit", help="The audit records (grants, denials) instead.")
    ] = False,
    component: Annotated[
        str | None,
        typer.Option(
            "--component", metavar="ADDRESS", help="Only what concerns this actor (and below)."
        ),
    ] = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="How many recent ones to show.", min=1)
    ] = 100,
    as_json: JsonOption = False,
    node: NodeOption = None,
    socket: SocketOption = None,
) -> None:
    """The node's recent log events (a ring of the last 10,000), or its audit records.

    With --follow: until Ctrl-C (130), until the node stops (one line on stderr
    saying so, status 0), or until the node dies (an error, status 1). A reader
    that closes the pipe (| head) ends it quietly with status 0.
    """
    from ..node import render_text

    show: Callable[[dict[str, Any]], str] = (
        json.dumps if as_json else _audit_line if audit else render_text
    )
    op = "audit" if audit else "logs"
    fields: dict[str, Any] = {"component": component, "limit": lines}
    with _client(node, socket, timeout=None if follow else 30.0) as client:
        events = client.stream(op, **fields) if follow else client.request(op, **fields)
        for event in events:
            _out.print(show(event), markup=False, highlight=False)
    if follow and client.ended is not None:  # the node stopped: say so, status 0
        _err.print(f"logs: the node ended the stream: {client.ended}", markup=False)


# --- messages ------------------------------------------------------------------------


class MessageCodec(StrEnum):  # the names airssys.codec.CODECS knows
    JSON = "json"
    MESSAGEPACK = "messagepack"
    CBOR = "cbor"
    RAW = "raw"


CodecOption = Annotated[
    MessageCodec,
    typer.Option(
        "--codec",
        case_sensitive=False,
        help="The message's codec: json, messagepack or cbor (the text is JSON, else a "
        "string), or raw (the text's bytes).",
    ),
]


def _show_reply(reply: dict[str, Any]) -> str:
    """The reply as one line of JSON (bytes as ``{"$bytes": "<base64>"}``)."""
    return json.dumps(reply.get("value"), ensure_ascii=False)


def ask(
    address: Address,
    message: Annotated[str, typer.Argument(help="The message: JSON, else text.")],
    codec_name: CodecOption = MessageCodec.JSON,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the reply.", min=0.001, max=300)
    ] = 5.0,
    node: NodeOption = None,
    socket: SocketOption = None,
) -> None:
    """Send a message to a component and print its reply: one line of JSON (a reply
    in raw bytes prints as {"$bytes": "<base64>"}).

    The message is JSON, else text sent as a string; text that starts with {, [ or "
    but is not valid JSON is refused, naming where it went wrong.
    """
    with _client(node, socket, timeout=timeout + _ASK_SLACK) as client:
        reply = client.request(
            "ask", address=address, message=message, codec=codec_name.value, timeout=timeout
        )
    _out.print(_show_reply(reply), markup=False, highlight=False)


def send(
    address: Address,
    message: Annotated[str, typer.Argument(help="The message: JSON, else text.")],
    codec_name: CodecOption = MessageCodec.JSON,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for room in a full mailbox.", min=0.001, max=300),
    ] = 5.0,
    node: NodeOption = None,
    socket: SocketOption = None,
) -> None:
    """Send a message to a component without waiting for a reply.

    A full mailbox is met as its strategy says: wait (the default) waits for room, up
    to --timeout seconds; drop drops the message (said on stderr); raise fails.
    """
    with _client(node, socket, timeout=timeout + _ASK_SLACK) as client:
        result = client.request(
            "send", address=address, message=message, codec=codec_name.value, timeout=timeout
        )
    if not result.get("queued", True):
        _err.print(f"{address}: the mailbox is full: the message was dropped", markup=False)
        raise typer.Exit(1)


def _child_command(op: str, done: str, doc: str) -> Callable[..., None]:
    def command(address: Address, node: NodeOption = None, socket: SocketOption = None) -> None:
        result = _call(node, socket, op, address=address)
        _out.print(f"{done} {result['address']}: {result['state']}", markup=False, highlight=False)

    command.__doc__ = doc
    command.__name__ = op
    return command


# --- lifecycle: update, rollback, versions ---------------------------------------------


def update(
    address: Address,
    package: Annotated[
        str,
        typer.Argument(
            metavar="PACKAGE",
            help="An installed package: NAME@VERSION, NAME (its latest version), or "
            "VERSION alone (the running component's name).",
        ),
    ],
    probation: Annotated[
        float,
        typer.Option(
            min=0,
            max=86400,
            help="Seconds after the switch during which a crash rolls back by itself.",
        ),
    ] = 5.0,
    node: NodeOption = None,
    socket: SocketOption = None,
    json_: JsonOption = False,
) -> None:
    """Update a running component to an installed version, blue-green, losing nothing.

    The new version starts beside the old one, answers a health probe, then takes
    over the address's mailbox; a crash within --probation seconds rolls it back.
    Each step (load, compile, start, probe, switch) is shown on stderr with its time
    (JSON objects with --json).
    """
    if "@" not in package and package[:1].isdigit():
        package = f"@{package}"  # a bare version: the running component's name
    with (
        reporting(json_out=json_, every=True) as report,
        _client(node, socket, timeout=_LIFECYCLE_TIMEOUT) as client,
    ):
        result = client.request(
            "update",
            address=address,
            package=package,
            probation=probation,
            on_progress=report.remote,
        )
    if json_:
        _print_json(result)
        return
    _out.print(
        f"{result['address']}: {result['old']['version'] or '?'} -> {result['package']} "
        f"(trust {result['trust']}; in {result.get('update_ms', result['switch_ms']):.0f} ms, "
        f"the switch itself {result['switch_ms']:.1f} ms)",
        markup=False,
        highlight=False,
    )


def rollback(
    address: Address,
    node: NodeOption = None,
    socket: SocketOption = None,
    json_: JsonOption = False,
) -> None:
    """Return a component to the version it ran before its last update."""
    with (
        reporting(json_out=json_, every=True) as report,
        _client(node, socket, timeout=_LIFECYCLE_TIMEOUT) as client,
    ):
        result = client.request("rollback", address=address, on_progress=report.remote)
    if json_:
        _print_json(result)
        return
    _out.print(
        f"{result['address']}: {result['old']['version'] or '?'} -> {result['package']} "
        f"(rolled back in {result['switch_ms']:.1f} ms)",
        markup=False,
        highlight=False,
    )


def versions(
    address: Address,
    node: NodeOption = None,
    socket: SocketOption = None,
    json_: JsonOption = False,
) -> None:
    """Every version switch at an address, oldest first, kept across rollbacks and
    restarts; ``*`` marks the one serving."""
    result = _call(node, socket, "versions", address=address)
    if json_:
        _print_json(result)
        return
    _out.print(
        f"   {'VERSION':>12}  {'DIGEST':12}  {'SINCE':19}  {'HOW':18}  PACKAGE",
        markup=False,
        highlight=False,
    )
    for row in result["versions"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["since"]))
        mark = " * " if row.get("serving") else "   "
        _out.print(
            f"{mark}{row['version'] or '?':>12}  {row['digest'][:12]:12}  {when}  "
            f"{row.get('how') or '':18}  {row.get('package') or '-'}",
            markup=False,
            highlight=False,
        )


def running_packages() -> set[str]:
    """What the running nodes serve, as ``name`` and ``name@version``: the packages
    ``airssys uninstall`` refuses to remove without --force. The nodes asked: the
    one at ``$AIRSSYS_SOCKET`` when set, else every node in the default run base."""
    import os

    from .._dirs import run_base
    from ..node import ControlClient, NodeNotRunning

    if os.environ.get("AIRSSYS_SOCKET"):
        sockets = [Path(os.environ["AIRSSYS_SOCKET"])]
    else:
        try:
            sockets = [entry / "control.sock" for entry in run_base().iterdir()]
        except OSError:
            sockets = []
    running: set[str] = set()
    for path in sockets:
        if not path.exists():
            continue
        try:
            with ControlClient(path, timeout=10.0).connect() as client:
                status = client.request("status")
        except NodeNotRunning:
            continue
        for actor in status.get("actors", []):
            name, version = actor.get("component"), actor.get("version")
            if name:
                running.add(name)
                if version:
                    running.add(f"{name}@{version}")
    return running


NODE_COMMANDS: Final[tuple[tuple[str, Callable[..., None]], ...]] = (
    ("serve", serve),
    ("status", status),
    ("list", list_),
    ("info", info),
    ("logs", logs),
    ("ask", ask),
    ("send", send),
    (
        "restart",
        _child_command(
            "restart", "restarted", "Restart a supervised child (stop it, then start it)."
        ),
    ),
    ("stop", _child_command("stop", "stopped", "Stop a supervised child (it stays stopped).")),
    ("start", _child_command("start", "started", "Start a stopped supervised child again.")),
    ("update", update),
    ("rollback", rollback),
    ("versions", versions),
)
