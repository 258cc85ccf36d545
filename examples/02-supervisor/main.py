"""Supervisor: a crash, the restart on a fresh instance, and the strategy at work."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import codec, open_system
from airssys.actors import ActorState
from airssys.errors import ComponentTrap


async def main() -> None:
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [
                system.component_spec("counter", component("counter")),
                system.component_spec("crasher", component("crasher")),
            ],
            strategy="one_for_one",
            name="sup",
        )
        print(f"  {sup.address}: {[c.id for c in sup.which_children()]} (one_for_one)")
        await system.ask("/sup/counter", codec.encode({"add": 5}))
        first = codec.decode(await system.ask("/sup/crasher", codec.encode("a")))
        print(f"  crasher answers {first}")
        try:
            await system.ask("/sup/crasher", codec.encode("poison"))
            check(False, "poison crashes the crasher")
        except ComponentTrap as exc:
            print(f"  crash: {exc}")
            check("RuntimeError: poisoned" in str(exc), "poison crashes the crasher")
        crasher = system.ref("/sup/crasher")
        async with asyncio.timeout(10):
            while crasher.state is not ActorState.RUNNING:
                await asyncio.sleep(0.01)
        again = codec.decode(await system.ask("/sup/crasher", codec.encode("b")))
        print(f"  restarted ({crasher.restarts}); crasher answers {again}")
        check(crasher.restarts == 1, "the supervisor restarted the crasher")
        check(again["handled"] == 1, "the fresh instance starts from scratch (state is lost)")
        count = codec.decode(await system.ask("/sup/counter", codec.encode({"add": 1})))
        print(f"  the counter kept its total: {count}")
        check(count == {"count": 6}, "one_for_one left the counter running")


if __name__ == "__main__":
    run(main)
