"""The main job: a supervisor demo on the embedded defaults.

Three WASM components (counter, trap, echo) under one supervisor. A poison
message crashes the trap component; the supervisor restarts it on a fresh Store
while its neighbours keep answering; what the strategy does to the siblings is
visible in the counter. The demo ends by checking that all of it happened and
exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
from collections.abc import Sequence
from pathlib import Path

from . import codec
from ._logging import configure_logging
from .actors import ActorState, Strategy, open_system
from .errors import ActorDeadError, ComponentTrap

FIXTURES = Path(__file__).resolve().parent.parent / "components" / "fixtures"


def _count(reply: bytes) -> int:
    return int(struct.unpack("<I", reply)[0])


async def run(strategy: Strategy) -> list[str]:
    """Run the demo; returns the list of checks that failed (empty on success)."""
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAILED'}] {what}")
        if not ok:
            failures.append(what)

    hello = codec.encode({"hello": "airssys"}, "json")
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [
                system.component_spec("counter", FIXTURES / "counter.wat"),
                system.component_spec("trap", FIXTURES / "trap.wat"),
                system.component_spec("echo", FIXTURES / "echo.wat"),
            ],
            strategy=strategy,
            intensity=3,
            period=5.0,
            name="demo",
        )
        print(f"supervisor {sup.address} ({strategy.value}) started its children in order:")
        for child in sup.which_children():
            print(f"  {child.ref.address:<14} {child.state.value}")

        print("\nthe counter keeps state in its linear memory:")
        counts = [_count(await system.ask("/demo/counter", hello)) for _ in range(3)]
        print(f"  /demo/counter answered {counts}")
        check(counts == [1, 2, 3], "counter counts 1, 2, 3")

        print("\npoisoning /demo/trap ...")
        try:
            await system.ask("/demo/trap", codec.encode(b"poison", "raw"))
            check(False, "the poison message traps")
        except ComponentTrap as exc:
            print(f"  the trap failed its actor: {exc}")
            check(True, "the poison message traps")

        reply = await system.ask("/demo/echo", hello)
        print(f"  /demo/echo still answers: {codec.decode(reply)}")
        check(codec.decode(reply) == {"hello": "airssys"}, "the neighbour keeps answering")

        trap = system.ref("/demo/trap")
        async with asyncio.timeout(5):
            while trap.state is not ActorState.RUNNING:
                await asyncio.sleep(0.001)
        echoed = await system.ask("/demo/trap", hello)
        print(f"  /demo/trap is back ({trap.restarts} restart) and answers: {codec.decode(echoed)}")
        check(trap.restarts == 1 and echoed == hello, "the supervisor restarted the trap")

        after = _count(await system.ask("/demo/counter", hello))
        restarted_counter = system.ref("/demo/counter").restarts
        print(f"  /demo/counter now says {after} (restarts: {restarted_counter})")
        if strategy is Strategy.ONE_FOR_ONE:
            check(after == 4 and restarted_counter == 0, "one_for_one left the counter alone")
        elif strategy is Strategy.ONE_FOR_ALL:
            check(after == 1 and restarted_counter == 1, "one_for_all restarted the counter too")
        else:  # rest_for_one: only the siblings after the trap restart
            echo_restarts = system.ref("/demo/echo").restarts
            check(
                after == 4 and echo_restarts == 1,
                "rest_for_one restarted the echo after the trap, not the counter before it",
            )

        print("\na message to an address nobody holds becomes a dead letter:")
        try:
            system.send("/demo/nobody", hello)
        except ActorDeadError as exc:
            print(f"  refused: {exc}")
        letter = system.dead_letters[-1]
        print(f"  dead letter: to={letter.to} reason={letter.reason!r}")
        check(letter.to == "/demo/nobody", "the dead letter is recorded")

        health = await system.health("/demo/trap")
        print(
            f"\nhealth of /demo/trap: alive={health.alive} calls={health.calls} "
            f"restarts={health.restarts} fuel used={health.fuel_used_total}"
        )
    print("\nthe system closed: every actor stopped, every Store released")
    return failures


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m airssys", description=__doc__)
    parser.add_argument(
        "--strategy",
        choices=[s.value for s in Strategy],
        default=Strategy.ONE_FOR_ONE.value,
        help="the supervisor's restart strategy (default: one_for_one)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the runtime's logs")
    args = parser.parse_args(list(argv))
    # the demo crashes a component on purpose: its logs are noise unless asked for
    configure_logging("debug" if args.verbose else "critical")
    return execute(Strategy(args.strategy))


def execute(strategy: Strategy) -> int:
    """Run the demo and report; 0 when every check passed, else 1 (logging left as is)."""
    failures = asyncio.run(run(strategy))
    if failures:
        print(f"\n{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0
