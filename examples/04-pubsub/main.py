"""Pub/sub: one publish fans out to every subscribed component."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import codec, open_system


async def main() -> None:
    async with open_system() as system:
        path = component("counter")
        for region in ("eu", "us", "all"):
            ref = await system.spawn_component(path, name=f"counter-{region}")
            system.subscribe("orders.#" if region == "all" else f"orders.{region}.*", ref)
        for topic in ("orders.eu.created", "orders.us.created", "orders.eu.paid"):
            n = system.publish(topic, codec.encode({"add": 1}))
            print(f"  publish {topic:<18} -> {n} subscribers")
        counts = {}
        for region in ("eu", "us", "all"):
            reply = codec.decode(await system.ask(f"/counter-{region}", codec.encode({"add": 0})))
            counts[region] = reply["count"]
        print(f"  counts: {counts}")
        check(counts == {"eu": 2, "us": 1, "all": 3}, "each subscriber saw what it subscribed to")
        n = system.publish("invoices.created", codec.encode({"add": 1}))
        check(
            n == 0 and system.dead_letters[-1].reason.startswith("no subscribers"),
            "a publish nobody hears becomes a dead letter",
        )


if __name__ == "__main__":
    run(main)
