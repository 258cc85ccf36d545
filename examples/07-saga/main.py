"""Saga: a chain of three durable components, and the compensation when a step fails.

An order takes one item from the stock, charges the wallet, then books a delivery
slot. Each step is a ledger component (components/ledger: balances, a step and
its undo; durable). When a step is refused, the steps done before it are undone
in reverse order (the compensation), so no order leaves a charge without an
item. The coordinator is a plain Python actor; the balances survive a restart of
the whole system (journal replay), and each run verifies itself.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import codec, open_system
from airssys.actors import Actor, ActorSystem
from airssys.errors import HandlerError

STEPS = (
    ("/shop/stock", "widget", -1),
    ("/shop/wallet", "alice", -30),
    ("/shop/slots", "monday", -1),
)


class Coordinator(Actor):
    """Runs an order's steps in order; on a refusal, undoes the done ones in reverse."""

    async def on_message(self, message: Any) -> dict[str, Any]:
        done: list[tuple[str, str, int]] = []
        for address, key, amount in STEPS:
            try:
                await self.system.ask(address, codec.encode({"do": key, "amount": amount}))
            except HandlerError as refused:
                for back_address, back_key, back_amount in reversed(done):
                    await self.system.ask(
                        back_address, codec.encode({"undo": back_key, "amount": back_amount})
                    )
                return {"order": message, "ok": False, "refused": str(refused), "undone": len(done)}
            done.append((address, key, amount))
        return {"order": message, "ok": True}


async def balances(system: ActorSystem) -> dict[str, int]:
    out = {}
    for address, key, _ in STEPS:
        reply = codec.decode(await system.ask(address, codec.encode({"get": key})))
        out[key] = reply["balance"]
    return out


async def shop(system: ActorSystem, ledger: Path) -> None:
    children = [system.component_spec(address.rsplit("/", 1)[1], ledger) for address, _, _ in STEPS]
    await system.spawn_supervisor(children, name="shop")


async def main() -> None:
    ledger = component("ledger")
    with tempfile.TemporaryDirectory() as data:
        async with open_system("saga", storage="memory", data_dir=data) as system:
            await shop(system, ledger)
            for address, key, _ in STEPS:
                start = {"widget": 5, "alice": 100, "monday": 2}[key]
                await system.ask(address, codec.encode({"init": {key: start}}))
            coordinator = await system.spawn(Coordinator, name="orders")
            results = [await coordinator.ask(n) for n in range(4)]
            for result in results:
                print(f"  order {result['order']}: {'done' if result['ok'] else 'compensated'}")
            print(f"  {results[2]['refused']}")
            check([r["ok"] for r in results] == [True, True, False, False], "two slots: two orders")
            check(results[2]["undone"] == 2, "the refused order undid its charge and its item")
            after = await balances(system)
            print(f"  balances: {after}")
            check(after == {"widget": 3, "alice": 40, "monday": 0}, "nothing charged for nothing")
        async with open_system("saga", storage="memory", data_dir=data) as system:
            await shop(system, ledger)  # a fresh system: the journals replay the balances
            check(await balances(system) == after, "the balances survived the restart")


if __name__ == "__main__":
    run(main)
