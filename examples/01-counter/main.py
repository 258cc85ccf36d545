"""Counter: state lives in the component instance, across messages."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import codec, open_system
from airssys.errors import HandlerError


async def main() -> None:
    async with open_system() as system:
        await system.spawn_component(component("counter"), name="counter")
        counts = []
        for step in (1, 2, 3):
            reply = codec.decode(await system.ask("/counter", codec.encode({"add": step})))
            print(f"  add {step} -> {reply}")
            counts.append(reply["count"])
        check(counts == [1, 3, 6], "the total carries across messages")
        try:
            await system.ask("/counter", codec.encode({"add": "lots"}))
            check(False, "a bad message is rejected")
        except HandlerError as exc:
            print(f"  rejected: {exc}")
            check(True, "a bad message is rejected")
        reply = codec.decode(await system.ask("/counter", codec.encode({"add": 0})))
        check(reply == {"count": 6}, "a rejected message leaves the component and its state intact")


if __name__ == "__main__":
    run(main)
