"""``airssys serve``: run a node in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from typing import IO

from .._logging import LEVELS, configure_logging
from ._deployment import Deployment
from ._logs import LogRing, LogTee
from ._node import Node

__all__ = ("run_node", "serve")


async def serve(deployment: Deployment, tee: LogTee) -> Node:
    """Run ``deployment`` until SIGINT or SIGTERM; returns the stopped node (its
    ``summaries`` hold the final counters)."""
    loop = asyncio.get_running_loop()
    node = Node(deployment, ring=tee.ring, say=tee.say)
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, node.request_stop)
    try:
        async with node:
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
) -> Node:
    """Configure airssys's logs (``level`` and up on ``out``, default stderr; the
    ring keeps info and up, or ``level`` if lower) and serve ``deployment``."""
    shown = LEVELS[level]
    ring = LogRing()
    tee = LogTee(ring, out=out, json_lines=json_logs, level=shown)
    configure_logging(min(shown, LEVELS["info"]), json=True, stream=tee)  # type: ignore[arg-type]
    return asyncio.run(serve(deployment, tee))
