"""``airssys serve``: run a node in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from typing import IO

from .._logging import LEVELS, configure_logging
from .._progress import LineReporter, listen
from ._deployment import Deployment
from ._logs import LogRing, LogTee
from ._node import Node

__all__ = ("run_node", "serve")


async def serve(deployment: Deployment, tee: LogTee, *, early_signal: str | None = None) -> Node:
    """Run ``deployment`` until SIGINT or SIGTERM; returns the stopped node (its
    ``summaries`` hold the final counters).

    A signal during start-up (``early_signal``: one that came before this was
    called) stops the node as soon as the step in progress (a compile) ends: one
    line when it comes, nothing more (no ready line, no final lines)."""
    loop = asyncio.get_running_loop()
    early: list[str] = []
    node = Node(
        deployment,
        ring=tee.ring,
        say=lambda text, **values: None if early else tee.say(text, **values),
    )

    def stop(name: str) -> None:
        if not node.ready and not early and not node.draining:
            early.append(name)
            tee.say(
                f"airssys node {node.name!r} stopping: {name} during start-up "
                "(once the step in progress ends)",
                node=node.name,
                signal=name,
            )
        node.request_stop()

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop, sig.name)
    if early_signal is not None:
        stop(early_signal)
    try:
        async with node:
            if early:
                return node
            where = f"socket {node.socket_path}"
            if node.metrics_url is not None:
                where += f", metrics {node.metrics_url}"
            tee.say(
                f"airssys node {node.name!r} ready: {where}",
                node=node.name,
                socket=str(node.socket_path),
                metrics=node.metrics_url,
            )
            await node.wait()
            tee.say(f"airssys node {node.name!r} stopping: draining", node=node.name)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return node


def run_node(
    deployment: Deployment,
    *,
    level: str = "info",
    json_logs: bool = False,
    out: IO[str] | None = None,
    early_signal: str | None = None,
) -> Node:
    """Configure airssys's logs (``level`` and up on ``out``, default stderr; the
    ring keeps info and up, or ``level`` if lower) and serve ``deployment``. Waits
    over a second (a compile at start-up) are lines of the node's output (JSON
    objects with ``json_logs``), unless ``level`` is above info."""
    shown = LEVELS[level]
    ring = LogRing()
    tee = LogTee(ring, out=out, json_lines=json_logs, level=shown)
    configure_logging(min(shown, LEVELS["info"]), json=True, stream=tee)  # type: ignore[arg-type]
    stop_listening = None
    if shown <= LEVELS["info"]:
        lines = LineReporter(lambda text, event: tee.say(text, **event.as_dict()))
        stop_listening = listen(lines)
    try:
        return asyncio.run(serve(deployment, tee, early_signal=early_signal))
    finally:
        if stop_listening is not None:
            stop_listening()
            lines.close()
