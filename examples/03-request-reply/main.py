"""Request-reply between components: an aggregator fans out and joins the replies."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import Actor, codec, open_system


class Inbox(Actor):
    def __init__(self, got: asyncio.Queue[Any]) -> None:
        self.got = got

    def on_message(self, message: Any) -> None:
        self.got.put_nowait((self.sender, codec.decode(message)))


async def main() -> None:
    got: asyncio.Queue[Any] = asyncio.Queue()
    async with open_system() as system:
        await system.spawn_component(component("echo"), name="echo")
        await system.spawn_component(component("counter"), name="counter")
        await system.spawn_component(component("aggregator"), name="aggregator")
        await system.spawn(lambda: Inbox(got), name="inbox")
        ask = {"ask": ["/echo", "/counter", "/nobody"], "value": {"add": 4}, "reply_to": "/inbox"}
        started = codec.decode(await system.ask("/aggregator", codec.encode(ask)))
        print(f"  aggregator: {started}")
        sender, joined = await asyncio.wait_for(got.get(), 10)
        print(f"  {sender} -> /inbox: {joined}")
        check(sender == "/aggregator", "the joined result comes from the aggregator")
        results = joined["results"]
        check(
            results["/echo"] == {"add": 4} and results["/counter"] == {"count": 4},
            "both replies arrived through handle-callback and were joined",
        )
        refused = results["/nobody"]["error"]
        check("no actor at '/nobody'" in refused, "the unknown address is reported")


if __name__ == "__main__":
    run(main)
