"""Durable counter: the count survives a trap and a killed process, by replaying its journal.

The crasher component counts the messages it handled and crashes on "poison".
With ``[durability] journal = true`` (given here where it is spawned), every
accepted message is journaled before it is queued, and a fresh instance is
replayed from the journal: after the trap the count goes on (the poison is
recorded as failed and skipped); a child process that is killed with SIGKILL
after its messages were accepted loses none of them; the replay hash is the same
whoever replays the journal.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import codec, open_system
from airssys.actors import ActorState
from airssys.errors import ComponentTrap

DURABLE = {"journal": True}


async def counted(system: object, value: object) -> int:
    reply = codec.decode(await system.ask("/app/counter", codec.encode(value)))  # type: ignore[attr-defined]
    return int(reply["handled"])


async def first_life(crasher: Path, data: Path) -> str:
    async with open_system("durable-demo", data_dir=data) as system:
        await system.spawn_supervisor(
            [system.component_spec("counter", crasher, durability=DURABLE)], name="app"
        )
        for n in range(4):
            handled = await counted(system, n)
        print(f"  handled {handled} messages")
        try:
            await system.ask("/app/counter", codec.encode("poison"))
        except ComponentTrap:
            print(
                "  poison: the instance trapped; the supervisor restarts it, replaying the journal"
            )
        ref = system.ref("/app/counter")
        async with asyncio.timeout(10):
            while ref.state is not ActorState.RUNNING:
                await asyncio.sleep(0.01)
        after = await counted(system, "after the trap")
        check(after == 5, "the count went on across the trap (the poison was skipped)")
        return system.replay_hash("/app/counter")


KILLED = """
import asyncio, os, signal, sys
from airssys import codec, open_system
async def main():
    async with open_system("durable-demo", data_dir=sys.argv[2]) as system:
        await system.spawn_supervisor(
            [system.component_spec("counter", sys.argv[1], durability={"journal": True})],
            name="app", )
        for n in range(10):
            system.send("/app/counter", codec.encode(n))  # accepted: journaled, then queued
        os.kill(os.getpid(), signal.SIGKILL)  # before they are all handled
asyncio.run(main())
"""


async def after_the_kill(crasher: Path, data: Path) -> None:
    async with open_system("durable-demo", data_dir=data) as system:
        await system.spawn_supervisor(
            [system.component_spec("counter", crasher, durability=DURABLE)], name="app"
        )
        total = await counted(system, "after the kill")
        replay_hash = system.replay_hash("/app/counter")
        print(f"  after the kill: handled {total} messages; replay hash {replay_hash[:16]}...")
        check(total == 16, "the 10 messages the killed process accepted were each handled once")


async def main() -> None:
    crasher = component("crasher")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        hash_before = await first_life(crasher, data)
        print(f"  replay hash {hash_before[:16]}...")
        killed = subprocess.run(
            [sys.executable, "-c", KILLED, str(crasher), str(data)], check=False, timeout=120
        )
        check(killed.returncode == -signal.SIGKILL, "the second process was killed (SIGKILL)")
        await after_the_kill(crasher, data)


if __name__ == "__main__":
    run(main)
