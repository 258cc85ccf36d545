"""Supervision: strategies, restart types, intensity, shutdown, dynamic children."""

from __future__ import annotations

import asyncio

import pytest

from airssys.actors import (
    ActorState,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    open_system,
)
from airssys.errors import ActorStartError, NameTaken, RestartIntensityExceeded
from tests.actors.helpers import Journal, Worker, settle, worker

ABC = ("a", "b", "c")


def specs(journal: Journal, restart: str = "permanent") -> list[ChildSpec]:
    return [ChildSpec(tag, worker(journal, tag), restart=restart) for tag in ABC]


async def crash(sup_child: object) -> None:
    from airssys.actors import ActorRef

    assert isinstance(sup_child, ActorRef)
    with pytest.raises(RuntimeError, match="crashed"):
        await sup_child.ask("crash")


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("one_for_one", [("start", "b")]),
        (
            "one_for_all",
            [("stop", "c"), ("stop", "a"), ("start", "a"), ("start", "b"), ("start", "c")],
        ),
        ("rest_for_one", [("stop", "c"), ("start", "b"), ("start", "c")]),
    ],
)
async def test_strategy_restarts_the_right_siblings_in_order(
    strategy: str, expected: list[tuple[str, str]]
) -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), strategy=strategy, name="sup")
        assert journal.starts() == ["a", "b", "c"]
        mark = len(journal.events)
        b = sup.child("b")
        await crash(b)
        # the crashed child ran on_stop itself; what follows is the supervisor's work
        await settle(
            lambda: (
                all(c.state is ActorState.RUNNING for c in sup.which_children())
                and len(journal.since(mark)) >= len(expected) + 1
            )
        )
        assert journal.since(mark) == [("stop", "b"), *expected]
        assert await b.ask("hi") == ("b", "hi")  # same ref, fresh instance
        assert b.restarts == 1


async def test_queued_messages_survive_a_restart() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        a = sup.child("a")
        failed = asyncio.create_task(a.ask("crash"))
        behind = asyncio.create_task(a.ask("count"))
        with pytest.raises(RuntimeError):
            await failed
        assert await behind == 1  # handled by the fresh instance, whose count starts again


@pytest.mark.parametrize(
    ("restart", "after_crash", "after_exit"),
    [
        ("permanent", True, True),
        ("transient", True, False),
        ("temporary", False, False),
    ],
)
async def test_restart_types(restart: str, after_crash: bool, after_exit: bool) -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [
                ChildSpec("x", worker(journal, "x"), restart=restart),
                ChildSpec("y", worker(journal, "y"), restart=restart),
            ],
            name="sup",
            intensity=10,
        )
        x, y = sup.child("x"), sup.child("y")
        await crash(x)
        await y.ask("exit")
        expected_specs = int(after_crash) + int(after_exit)
        await settle(
            lambda: (
                sup.count_children()["specs"] == expected_specs
                and sup.count_children()["active"] == expected_specs
            )
        )
        assert x.is_alive is after_crash
        assert y.is_alive is after_exit
        assert x.state is (ActorState.RUNNING if after_crash else ActorState.FAILED)
        assert y.state is (ActorState.RUNNING if after_exit else ActorState.STOPPED)


async def test_intensity_exceeded_stops_children_and_fails_the_supervisor() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            specs(journal), name="sup", intensity=2, period=60, backoff_base=0.0
        )
        a = sup.child("a")
        for _ in range(2):
            await crash(a)
            await settle(lambda: a.state is ActorState.RUNNING)
        mark = len(journal.events)
        await crash(a)
        await settle(lambda: not sup.ref.is_alive)
        assert sup.state is ActorState.FAILED
        assert isinstance(sup.ref.last_error, RestartIntensityExceeded)
        assert journal.since(mark) == [("stop", "a"), ("stop", "c"), ("stop", "b")]
        assert system.addresses == []


async def test_intensity_exceeded_escalates_to_the_parent() -> None:
    journal = Journal()

    def inner() -> Supervisor:
        return Supervisor(
            [ChildSpec("leaf", worker(journal, "leaf"))], intensity=1, period=60, backoff_base=0.0
        )

    async with open_system() as system:
        top = await system.spawn_supervisor(
            [ChildSpec("inner", inner), ChildSpec("sibling", worker(journal, "sibling"))],
            name="top",
            strategy="one_for_one",
        )
        leaf = system.ref("/top/inner/leaf")
        await crash(leaf)  # inner restarts it (1 of 1)
        await settle(lambda: leaf.state is ActorState.RUNNING)
        await crash(leaf)  # inner gives up and fails to top, which restarts inner
        inner_ref = top.child("inner")
        await settle(
            lambda: (
                inner_ref.restarts == 1
                and inner_ref.state is ActorState.RUNNING
                and system.lookup("/top/inner/leaf") is not None
            )
        )
        assert isinstance(inner_ref.last_error, RestartIntensityExceeded)
        assert journal.starts() == ["leaf", "sibling", "leaf", "leaf"]
        assert await system.ref("/top/inner/leaf").ask("hi") == ("leaf", "hi")
        assert top.child("sibling").restarts == 0


async def test_stuck_actor_is_killed_after_its_shutdown_timeout() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [
                ChildSpec("stuck", worker(journal, "stuck"), shutdown=0.05),
                ChildSpec("polite", worker(journal, "polite")),
            ],
            name="sup",
        )
        stuck = sup.child("stuck")
        await stuck.tell("hang")
        await settle(lambda: stuck.mailbox.queued == 0)
        await sup.terminate_child("stuck")
        assert stuck.state is ActorState.STOPPED
        assert ("stop", "stuck") not in journal.events  # killed: on_stop never ran
        assert sup.count_children() == {"specs": 1, "active": 1, "supervisors": 0, "workers": 1}


async def test_brutal_kill_skips_on_stop() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [ChildSpec("k", worker(journal, "k"), shutdown="brutal_kill")], name="sup"
        )
        await sup.terminate_child("k")
        assert journal.events == [("start", "k")]


async def test_children_stop_in_reverse_order_with_the_system() -> None:
    journal = Journal()
    async with open_system() as system:
        await system.spawn_supervisor(specs(journal), name="sup")
    assert journal.events == [
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
        ("stop", "c"),
        ("stop", "b"),
        ("stop", "a"),
    ]


async def test_dynamic_children() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor([], name="sup")
        ref = await sup.start_child(ChildSpec("d", worker(journal, "d"), restart="transient"))
        assert ref.address == "/sup/d"
        assert await ref.ask(1) == ("d", 1)
        with pytest.raises(NameTaken):
            await sup.start_child(ChildSpec("d", worker(journal, "d")))
        nested = await sup.start_child(ChildSpec("nested", Supervisor))
        rows = sup.which_children()
        assert [(r.id, r.restart, r.supervisor) for r in rows] == [
            ("d", Restart.TRANSIENT, False),
            ("nested", Restart.PERMANENT, True),
        ]
        assert sup.count_children() == {"specs": 2, "active": 2, "supervisors": 1, "workers": 1}
        await sup.terminate_child("d")
        assert not ref.is_alive
        with pytest.raises(KeyError, match="no child 'd'"):
            await sup.terminate_child("d")
        assert nested.is_alive


async def test_a_child_that_cannot_start_fails_start_child() -> None:
    class Broken(Worker):
        async def on_start(self) -> None:
            raise OSError("port in use")

    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor([], name="sup")
        with pytest.raises(ActorStartError, match="/sup/bad failed to start"):
            await sup.start_child(ChildSpec("bad", lambda: Broken(journal, "bad")))
        assert sup.count_children()["specs"] == 0
        assert system.lookup("/sup/bad") is None


async def test_stopping_a_supervised_child_by_ref_does_not_restart_it() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        await sup.child("b").stop()
        await asyncio.sleep(0.01)
        assert [r.id for r in sup.which_children()] == ["a", "c"]


def test_backoff_grows_and_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    sup = Supervisor(intensity=100, period=10, backoff_base=0.01, backoff_max=0.05)

    class _Ref:
        address = "/s"

    sup.ref = _Ref()  # type: ignore[assignment]
    delays = [sup._next_delay() for _ in range(6)]
    assert delays == [0.0, 0.01, 0.02, 0.04, 0.05, 0.05]
    now[0] += 11  # the window empties: the next restart is immediate again
    assert sup._next_delay() == 0.0


def test_strategy_and_restart_accept_strings() -> None:
    assert Supervisor(strategy="rest_for_one").strategy is Strategy.REST_FOR_ONE
    with pytest.raises(ValueError):
        ChildSpec("x", Supervisor, restart="sometimes")
    with pytest.raises(ValueError, match="without '/'"):
        ChildSpec("a/b", Supervisor)
