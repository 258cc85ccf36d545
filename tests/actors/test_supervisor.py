"""Supervision: strategies, restart types, intensity, shutdown, dynamic children."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airssys.actors import (
    ActorRef,
    ActorState,
    ActorSystem,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorRef,
    open_system,
)
from airssys.errors import (
    ActorDeadError,
    ActorStartError,
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    NameTaken,
    RestartIntensityExceeded,
)
from tests.actors.helpers import Journal, StartGate, Worker, flaky, settle, worker
from tests.waiting import stays

ABC = ("a", "b", "c")


def specs(journal: Journal, restart: str = "permanent") -> list[ChildSpec]:
    return [ChildSpec(tag, worker(journal, tag), restart=restart) for tag in ABC]


async def crash(sup_child: ActorRef) -> None:
    with pytest.raises(RuntimeError, match="crashed"):
        await sup_child.ask("crash")


def states(sup: SupervisorRef) -> list[tuple[str, ActorState]]:
    return [(row.id, row.state) for row in sup.which_children()]


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
    ("restart", "after_crash", "after_exit", "specs_kept"),
    [
        ("permanent", True, True, 2),
        ("transient", True, False, 2),  # the normal exit keeps its spec (OTP)
        ("temporary", False, False, 0),
    ],
)
async def test_restart_types(
    restart: str, after_crash: bool, after_exit: bool, specs_kept: int
) -> None:
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
        active = int(after_crash) + int(after_exit)
        await settle(
            lambda: (
                sup.count_children()["specs"] == specs_kept
                and sup.count_children()["active"] == active
                and x.is_alive is after_crash
                and y.is_alive is after_exit
            )
        )
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
        assert sup.count_children() == {"specs": 2, "active": 1, "supervisors": 0, "workers": 2}


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
        await sup.terminate_child("d")  # already stopped: nothing to do (OTP)
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
        b = sup.child("b")
        await b.stop()
        # its spec is kept, as terminate_child keeps it; no restart comes
        await stays(
            lambda: states(sup)
            == [("a", ActorState.RUNNING), ("b", ActorState.STOPPED), ("c", ActorState.RUNNING)]
        )
        assert b.restarts == 0


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
    with pytest.raises(ValueError, match="'/'"):
        ChildSpec("a/b", Supervisor)


# --- OTP's child specs: kept after a stop, restart_child, delete_child (item 24) ----------


async def test_terminate_child_keeps_the_spec() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        b = sup.child("b")
        await sup.terminate_child("b")
        assert not b.is_alive
        assert system.lookup("/sup/b") is None
        assert states(sup) == [
            ("a", ActorState.RUNNING),
            ("b", ActorState.STOPPED),
            ("c", ActorState.RUNNING),
        ]
        assert sup.count_children() == {"specs": 3, "active": 2, "supervisors": 0, "workers": 3}


async def test_restart_child_starts_a_stopped_child_in_its_place() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        await sup.terminate_child("b")
        b = await sup.restart_child("b")
        assert await b.ask("hi") == ("b", "hi")
        assert system.lookup("/sup/b") == b
        assert [row.id for row in sup.which_children()] == ["a", "b", "c"]
        mark = len(journal.events)
    # still the second child: stopped after c, before a
    assert journal.since(mark) == [("stop", "c"), ("stop", "b"), ("stop", "a")]


async def test_restart_child_refuses_a_running_child() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        with pytest.raises(ChildRunning, match="running"):
            await sup.restart_child("b")
        assert sup.child("b").restarts == 0
        assert journal.starts() == ["a", "b", "c"]


async def test_restart_child_that_fails_to_start_keeps_its_spec() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [ChildSpec("f", flaky(journal, "f", gate)), ChildSpec("a", worker(journal, "a"))],
            name="sup",
        )
        await sup.terminate_child("f")
        gate.fail_next = 1
        with pytest.raises(ActorStartError, match="/sup/f failed to start"):
            await sup.restart_child("f")
        assert states(sup) == [("f", ActorState.FAILED), ("a", ActorState.RUNNING)]
        assert await (await sup.restart_child("f")).ask(1) == ("f", 1)


async def test_delete_child_removes_a_stopped_childs_spec() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        await sup.terminate_child("b")
        await sup.delete_child("b")
        assert [row.id for row in sup.which_children()] == ["a", "c"]
        assert sup.count_children() == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}
        with pytest.raises(ChildNotFound):
            await sup.restart_child("b")


async def test_delete_child_refuses_a_running_child() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        with pytest.raises(ChildRunning, match="terminate_child it first"):
            await sup.delete_child("b")
        assert await sup.child("b").ask("hi") == ("b", "hi")
        assert sup.count_children()["specs"] == 3


@pytest.mark.parametrize("call", ["terminate_child", "restart_child", "delete_child"])
async def test_an_unknown_child_id_is_not_found(call: str) -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        with pytest.raises(ChildNotFound, match="no child 'zz'") as caught:
            await getattr(sup, call)("zz")
        assert isinstance(caught.value, KeyError)  # what `except KeyError` expects
        assert sup.count_children()["active"] == 3


async def test_start_child_refuses_an_id_whose_spec_is_kept() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        await sup.terminate_child("b")
        with pytest.raises(ChildAlreadyPresent, match="restart_child or delete_child"):
            await sup.start_child(ChildSpec("b", worker(journal, "other")))
        assert journal.starts() == ["a", "b", "c"]  # the new spec was not started
        assert states(sup)[1] == ("b", ActorState.STOPPED)


async def test_start_child_refuses_an_id_that_is_running() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        with pytest.raises(ChildAlreadyStarted) as caught:
            await sup.start_child(ChildSpec("b", worker(journal, "other")))
        assert isinstance(caught.value, NameTaken)
        assert await sup.child("b").ask("hi") == ("b", "hi")


async def test_a_transient_child_that_exits_normally_keeps_its_spec() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [ChildSpec("t", worker(journal, "t"), restart="transient")], name="sup"
        )
        t = sup.child("t")
        assert await t.ask("exit") == "bye"
        await settle(lambda: not t.is_alive)
        assert states(sup) == [("t", ActorState.STOPPED)]
        assert sup.count_children() == {"specs": 1, "active": 0, "supervisors": 0, "workers": 1}
        assert await (await sup.restart_child("t")).ask(1) == ("t", 1)


async def test_a_terminated_temporary_child_loses_its_spec() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [ChildSpec("tmp", worker(journal, "tmp"), restart="temporary")], name="sup"
        )
        await sup.terminate_child("tmp")
        assert sup.which_children() == []
        with pytest.raises(ChildNotFound):
            await sup.restart_child("tmp")


async def test_a_stopped_nested_supervisor_is_counted_and_restarts_its_tree() -> None:
    journal = Journal()

    def inner() -> Supervisor:
        return Supervisor([ChildSpec("leaf", worker(journal, "leaf"))])

    async with open_system() as system:
        top = await system.spawn_supervisor(
            [ChildSpec("inner", inner), ChildSpec("w", worker(journal, "w"))], name="top"
        )
        await top.terminate_child("inner")
        assert system.lookup("/top/inner/leaf") is None
        assert [(r.id, r.state, r.supervisor) for r in top.which_children()] == [
            ("inner", ActorState.STOPPED, True),
            ("w", ActorState.RUNNING, False),
        ]
        assert top.count_children() == {"specs": 2, "active": 1, "supervisors": 1, "workers": 1}
        inner_sup = SupervisorRef(await top.restart_child("inner"))
        assert await system.ref("/top/inner/leaf").ask("hi") == ("leaf", "hi")
        await inner_sup.terminate_child("leaf")
        assert inner_sup.count_children() == {
            "specs": 1,
            "active": 0,
            "supervisors": 0,
            "workers": 1,
        }
        assert top.count_children()["active"] == 2


async def test_a_stopped_child_stays_stopped_when_its_group_restarts() -> None:
    # a deliberate difference: OTP's one_for_all would start "b" with the group
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), strategy="one_for_all", name="sup")
        await sup.terminate_child("b")
        a = sup.child("a")
        await crash(a)
        await settle(lambda: journal.starts().count("c") == 2)
        assert states(sup) == [
            ("a", ActorState.RUNNING),
            ("b", ActorState.STOPPED),
            ("c", ActorState.RUNNING),
        ]
        assert journal.starts() == ["a", "b", "c", "a", "c"]


# --- a failed restart is retried from the child that failed (item 25) --------------------


async def test_rest_for_one_retry_keeps_the_children_already_restarted() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [
                ChildSpec("a", worker(journal, "a")),
                ChildSpec("b", flaky(journal, "b", gate)),
                ChildSpec("c", worker(journal, "c")),
            ],
            strategy="rest_for_one",
            name="sup",
            intensity=10,
            backoff_base=0.001,
        )
        a = sup.child("a")
        mark = len(journal.events)
        gate.fail_next = 1  # b's first restart fails
        await crash(a)
        await settle(
            lambda: (
                journal.starts().count("c") == 2
                and all(row.state is ActorState.RUNNING for row in sup.which_children())
            )
        )
        assert journal.since(mark) == [
            ("stop", "a"),
            ("stop", "c"),
            ("stop", "b"),
            ("start", "a"),
            ("fail", "b"),
            ("start", "b"),  # the retry: b and those after it, not a again
            ("start", "c"),
        ]
        assert a.restarts == 1


async def test_one_for_all_retry_restarts_every_child_again() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [
                ChildSpec("a", worker(journal, "a")),
                ChildSpec("b", flaky(journal, "b", gate)),
                ChildSpec("c", worker(journal, "c")),
            ],
            strategy="one_for_all",
            name="sup",
            intensity=10,
            backoff_base=0.001,
        )
        mark = len(journal.events)
        gate.fail_next = 1
        await crash(sup.child("a"))
        await settle(lambda: journal.starts().count("c") == 2)
        assert journal.since(mark) == [
            ("stop", "a"),
            ("stop", "c"),
            ("stop", "b"),
            ("start", "a"),
            ("fail", "b"),
            ("stop", "a"),  # as in OTP: one_for_all starts the whole group again
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
        ]


# --- the supervisor stays responsive while a child fails to restart (item 26) ------------


async def failing_restarts(system: ActorSystem, journal: Journal, gate: StartGate) -> SupervisorRef:
    """A supervisor whose child "flaky" crashed and now fails every restart attempt."""
    sup = await system.spawn_supervisor(
        [ChildSpec("flaky", flaky(journal, "flaky", gate)), ChildSpec("a", worker(journal, "a"))],
        name="sup",
        intensity=100,
        period=3600,
        backoff_base=0.001,
        backoff_max=0.001,
    )
    gate.fail_always = True
    await crash(sup.child("flaky"))
    await settle(lambda: gate.attempts >= 3)  # the first start, then two failed restarts
    return sup


async def test_start_child_is_answered_between_failed_restart_attempts() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await failing_restarts(system, journal, gate)
        late = await sup.start_child(ChildSpec("late", worker(journal, "late")))
        assert await late.ask("hi") == ("late", "hi")
        assert sup.ref.is_alive
        assert states(sup) == [
            ("flaky", ActorState.RESTARTING),
            ("a", ActorState.RUNNING),
            ("late", ActorState.RUNNING),
        ]


async def test_terminate_child_ends_the_restart_attempts() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await failing_restarts(system, journal, gate)
        await sup.terminate_child("flaky")
        gate.fail_always = False  # a retry now would start it: none may come
        await stays(  # many backoff periods
            lambda: states(sup) == [("flaky", ActorState.STOPPED), ("a", ActorState.RUNNING)]
        )
        assert journal.starts() == ["flaky", "a"]
        assert sup.ref.is_alive


async def test_restart_child_refuses_a_restarting_child() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await failing_restarts(system, journal, gate)
        with pytest.raises(ChildRestarting, match="restarting"):
            await sup.restart_child("flaky")
        with pytest.raises(ChildRestarting):
            await sup.delete_child("flaky")
        assert sup.ref.is_alive


async def test_stopping_the_supervisor_does_not_wait_for_failing_restarts() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await failing_restarts(system, journal, gate)
        before = gate.attempts
        await sup.stop()
        assert gate.attempts - before <= 1
        assert sup.state is ActorState.STOPPED
        assert system.addresses == []


async def test_closing_the_system_does_not_wait_for_a_child_that_keeps_failing_to_start() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await failing_restarts(system, journal, gate)
        before = gate.attempts
    assert gate.attempts - before <= 1  # not the ~100 the restart intensity allows
    assert not sup.ref.is_alive


async def test_failed_restart_attempts_count_toward_intensity() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [ChildSpec("flaky", flaky(journal, "flaky", gate))],
            name="sup",
            intensity=4,
            period=3600,
            backoff_base=0.001,
        )
        gate.fail_always = True
        await crash(sup.child("flaky"))
        await settle(lambda: not sup.ref.is_alive)
        assert gate.attempts == 1 + 4  # the first start, then four restarts: the fifth gives up
        assert isinstance(sup.ref.last_error, RestartIntensityExceeded)


async def test_children_waiting_for_a_terminated_restarting_child_stay_stopped() -> None:
    journal = Journal()
    gate = StartGate()
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [
                ChildSpec("flaky", flaky(journal, "flaky", gate)),
                ChildSpec("a", worker(journal, "a")),
            ],
            strategy="rest_for_one",
            name="sup",
            intensity=100,
            period=3600,
            backoff_base=0.001,
            backoff_max=0.001,
        )
        gate.fail_always = True
        await crash(sup.child("flaky"))
        await settle(lambda: gate.attempts >= 3)
        assert states(sup)[1] == ("a", ActorState.RESTARTING)  # waits for flaky
        await sup.terminate_child("flaky")
        assert states(sup) == [("flaky", ActorState.STOPPED), ("a", ActorState.STOPPED)]
        assert await (await sup.restart_child("a")).ask(1) == ("a", 1)


# --- child specs are checked when given (item 27) -------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("shutdown", -1, "shutdown must be a number of seconds >= 0"),
        ("shutdown", float("nan"), "shutdown must be a number of seconds >= 0"),
        ("shutdown", "brutal", "'brutal_kill', got the unknown word 'brutal'"),
        ("restart", "sometimes", "'permanent', 'transient', 'temporary'"),
        ("backpressure", "block", "'wait', 'drop', 'raise'"),
        ("mailbox", 0, "mailbox must be an int >= 1"),
    ],
)
async def test_child_spec_refuses_a_bad_value(field: str, value: object, accepted: str) -> None:
    bad: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=accepted):
        ChildSpec("x", Supervisor, **bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [("shutdown", [5]), ("shutdown", True), ("restart", None), ("mailbox", "10"), ("start", 42)],
)
async def test_child_spec_refuses_a_value_of_the_wrong_type(field: str, value: object) -> None:
    fields: dict[str, Any] = {"id": "x", "start": Supervisor, field: value}
    with pytest.raises(TypeError, match=field):
        ChildSpec(**fields)


async def test_supervisor_refuses_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="'one_for_one', 'one_for_all', 'rest_for_one'"):
        Supervisor(strategy="one_for_none")


@pytest.mark.parametrize("not_a_spec", [{"id": "x", "start": Worker}, "x", Worker, None])
async def test_start_child_refuses_what_is_not_a_child_spec(not_a_spec: Any) -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        with pytest.raises(TypeError, match="takes a ChildSpec"):
            await sup.start_child(not_a_spec)
        assert [await sup.child(tag).ask("hi") for tag in ABC] == [(tag, "hi") for tag in ABC]
        assert sup.ref.is_alive
        assert [row.id for row in sup.which_children()] == list(ABC)
        assert journal.starts() == list(ABC)


async def test_a_stopped_childs_ref_is_not_handed_out() -> None:
    journal = Journal()
    async with open_system() as system:
        sup = await system.spawn_supervisor(specs(journal), name="sup")
        await sup.terminate_child("b")
        with pytest.raises(ActorDeadError, match="restart_child"):
            sup.child("b")
