"""One component instance: one Store, its limits, and calls into it."""

from __future__ import annotations

import ctypes
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, final

import wasmtime
from wasmtime import _bindings
from wasmtime import component as wc

from .._logging import Throttle, get_logger, truncate
from ..errors import (
    ComponentTrap,
    DeadlineExceeded,
    ExecutionError,
    FuelExhausted,
    HandlerError,
    InstanceClosed,
    InstanceDead,
    MemoryLimitExceeded,
    PayloadTooLarge,
    ReplyTooLarge,
    ResourceExhausted,
)
from ..names import check_sender
from ._caller import Attempt, Host, Instances, structlog_method
from ._component import Component
from ._fastcall import (
    LIST_PAYLOAD_MAX,
    FastBulkHandleMessage,
    FastHandleCallback,
    FastHandleMessage,
    RawResult,
    bytes_from_lane,
    is_bulk_signature,
    is_bulk_text_signature,
    is_callback_signature,
    is_fast_signature,
    lane_from_bytes,
)
from ._pinned import PinnedDir, Report
from ._recorder import Recorder
from ._world import BULK, BULK_TEXT, CALLBACK, HANDLER, SNAPSHOT

__all__ = (
    "BULK",
    "BULK_TEXT",
    "LIST_PAYLOAD_MAX",
    "ComponentInstance",
    "Lane",
    "Limits",
    "Mount",
)

MiB: Final = 1024 * 1024
Lane = Literal["list", "bulk"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one instance may use. Every message gets the full fuel and time budget.

    Defaults suit a Python component built with componentize-py; tighten them
    per component in its Component.toml.
    """

    memory: int = 64 * MiB
    """Linear memory cap in bytes (all memories of the instance together)."""
    fuel_per_message: int = 2_000_000_000
    """Fuel refilled before each message; about one unit per wasm instruction."""
    timeout_ms: float = 1000.0
    """Wall-clock budget per message, enforced by epoch interruption."""
    max_payload: int = 16 * MiB
    """Largest payload handed to the component; larger ones are refused unsent."""

    def __post_init__(self) -> None:
        for key in ("memory", "fuel_per_message", "max_payload"):
            value = getattr(self, key)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{key} must be a positive integer, got {value!r}")
        if not self.timeout_ms > 0:
            raise ValueError(f"Limits.timeout_ms must be positive, got {self.timeout_ms!r}")

    def check_payload(self, size: int, component: str, lane: Lane = "bulk") -> None:
        """Raise PayloadTooLarge when ``size`` bytes exceed what the component can take:
        ``max_payload``, and for a component without the bulk lane the list ceiling."""
        if size > self.max_payload:
            raise PayloadTooLarge(
                f"payload of {size} bytes exceeds the max-payload of "
                f"{self.max_payload} bytes for component {component!r}"
            )
        if lane == "list" and size > LIST_PAYLOAD_MAX:
            raise PayloadTooLarge(
                f"payload of {size} bytes is more than component {component!r} can take: "
                f"without the bulk lane (airssys:component/bulk) a payload crosses as "
                f"list<u8>, at most {LIST_PAYLOAD_MAX} bytes each way; build it with the "
                "airssys SDK or export the bulk lane to carry up to max-payload"
            )


_set_fuel: Final = _bindings._wasmtime_context_set_fuel
_get_fuel: Final = _bindings._wasmtime_context_get_fuel
_set_deadline: Final = _bindings._wasmtime_context_set_epoch_deadline
_monotonic: Final = time.monotonic
_TRAP_LINE = re.compile(r"wasm trap: (.+)")
_STDERR_KEEP = 8192  # characters of guest stderr kept to explain a trap
_CREATE_KEY: Final = object()


@dataclass(frozen=True, slots=True)
class Mount:
    """A host directory the guest sees at ``guest`` (a WASI preopen); read-only unless
    ``writable``. Nothing outside it is reachable through it, symlinks included.

    A mount made with :meth:`pinned` keeps the directory open: each instantiation
    checks that ``host`` still names it (else :class:`~airssys.errors.MountChanged`)
    and hands wasmtime the kept directory, and closing an instance removes the
    symlinks a writable mount holds that resolve outside it (see ``_pinned``).
    """

    host: str
    guest: str
    writable: bool = False
    pin: PinnedDir | None = field(default=None, compare=False, repr=False)
    """The kept directory (None: ``host`` is opened by path at each instantiation)."""

    @classmethod
    def pinned(
        cls,
        host: str,
        guest: str,
        writable: bool = False,
        *,
        allowed: Callable[[str], bool] | None = None,
        report: Report | None = None,
    ) -> Mount:
        """A mount of directory ``host`` (a real path: OSError when a symlink stands on
        the way), pinned to the directory there now. ``allowed(path)``: is it still
        under a policy root (asked at every instantiation); ``report(component,
        resource, reason)``: the audit of refusals and removed symlinks."""
        pin = PinnedDir(host, guest, writable, allowed=allowed, report=report)
        return cls(host, guest, writable, pin)

    def host_path(self, component: str) -> str:
        """What wasmtime opens: the kept directory once verified, else ``host``."""
        return self.host if self.pin is None else self.pin.verify(component)

    def sweep(self, component: str) -> int:
        """Remove escaping symlinks from a pinned writable mount; how many."""
        return 0 if self.pin is None or not self.writable else self.pin.sweep(component)


@dataclass(slots=True)
class _CallStats:
    calls: int = 0
    fuel_used_last: int = 0
    fuel_used_total: int = 0
    stderr: str = ""


@final
class ComponentInstance:
    """A live component: owns exactly one Store. Built by :meth:`Runtime.instantiate`.

    Not thread-safe: one caller at a time (an actor is that caller). After a trap,
    fuel exhaustion or timeout the instance is dead; every later call raises
    :class:`InstanceDead`. ``close()`` releases the Store; a context manager works too.
    """

    def __init__(
        self,
        component: Component,
        *,
        name: str,
        limits: Limits,
        host: Host,
        engine: wasmtime.Engine,
        linker: wc.Linker,
        instances: Instances[ComponentInstance],
        epoch_tick_ms: float,
        fast_path: bool = True,
        mounts: tuple[Mount, ...] = (),
        _key: object = None,
    ) -> None:
        if _key is not _CREATE_KEY:
            raise TypeError("use Runtime.instantiate(component) to create a ComponentInstance")
        self._closed = True  # until the Store exists
        self.name = name
        self.component = component
        self.limits = limits
        self.host = host
        self._instances = instances
        self._stats = _CallStats()
        self._death: ExecutionError | None = None
        # every string lowered into the guest is checked first: a lone surrogate
        # reaching wasmtime's string lowering aborts the process
        self.address: str = check_sender(host.self_address(), "self-address") or ""
        self._host_failure: tuple[str, BaseException] | None = None
        self.recorder: Recorder | None = None
        """Set for a durable component: host calls recorded, or answered in replay."""
        # (interface, outcome) -> calls, when the host keeps count (an actor's stats)
        self._host_calls: dict[tuple[str, str], int] | None = getattr(host, "host_calls", None)
        self._log = get_logger("airssys.component").bind(component=name, address=self.address)
        # a chatty guest is summarised, not printed whole
        self._guest_log = Throttle(self._log, "guest log lines", burst=100, window=10.0)
        self._ticks = max(1, math.ceil(limits.timeout_ms / epoch_tick_ms)) + 1
        self.mounts = mounts
        self._started = 0.0
        self._closers: list[Callable[[], None]] = []
        self._last_sender: str | None = None
        self._last_sender_bytes = b""

        store = wasmtime.Store(engine)
        try:
            store.set_limits(memory_size=limits.memory)
            if component.world.uses_wasi:
                store.set_wasi(self._wasi_config())
        except BaseException:
            store.close()
            raise
        self._store: wasmtime.Store | None = store
        self._ctx = store._context()
        self._ctx_address = ctypes.cast(self._ctx, ctypes.c_void_p).value or 0
        self._fuel_left = ctypes.c_uint64(0)
        self._fuel_left_ref = ctypes.byref(self._fuel_left)
        self._closed = False
        self._refill()
        instances.add(self._ctx_address, self)
        try:
            instance = linker.instantiate(store, component.wasmtime_component)
        except wasmtime.WasmtimeError as exc:
            instances.remove(self._ctx_address, self)
            self._closed, self._store = True, None
            store.close()
            raise self._classify(exc, during="instantiation") from None
        self._instance = instance
        # the bulk lane: bulk-text (takes the "u" form too) before bulk (built earlier)
        bulk = self._find_func(instance, BULK_TEXT, "handle-message")
        self.text_form = bulk is not None and is_bulk_text_signature(bulk.type(store))
        """The component takes the bulk lane's ``"u"`` form (it exports ``bulk-text``)."""
        if not self.text_form:
            bulk = self._find_func(instance, BULK, "handle-message")
        self.lane: Lane = (
            "bulk"
            if bulk is not None and (self.text_form or is_bulk_signature(bulk.type(store)))
            else "list"
        )
        self._handle = (
            bulk
            if bulk is not None and self.lane == "bulk"
            else self._export_func(instance, HANDLER, "handle-message")
        )
        self._callback = (
            self._export_func(instance, CALLBACK, "handle-callback")
            if component.world.has_callback
            else None
        )
        self._fast_callback = (
            FastHandleCallback(store, self._callback)
            if fast_path
            and self._callback is not None
            and is_callback_signature(self._callback.type(store))
            else None
        )
        self.ceiling = (
            limits.max_payload if self.lane == "bulk" else min(limits.max_payload, LIST_PAYLOAD_MAX)
        )
        """The largest payload this instance takes (checked before every call)."""
        self._fast: FastHandleMessage | FastBulkHandleMessage | None = None
        if fast_path and self.lane == "bulk":
            self._fast = FastBulkHandleMessage(store, self._handle, text=self.text_form)
        elif fast_path and is_fast_signature(self._handle.type(store)):
            self._fast = FastHandleMessage(store, self._handle)
        # the optional snapshot export (durable components): the world checked its shapes
        self._snapshot: tuple[wc.Func, wc.Func] | None = None
        if component.world.has_snapshot:
            take = self._find_func(instance, SNAPSHOT, "snapshot")
            put = self._find_func(instance, SNAPSHOT, "restore")
            if take is not None and put is not None:
                self._snapshot = (take, put)

    # --- the snapshot export ---------------------------------------------------------

    @property
    def has_snapshot(self) -> bool:
        """The component exports ``airssys:component/snapshot``."""
        return self._snapshot is not None

    def snapshot(self) -> bytes:
        """The component's state (its ``snapshot`` export), bounded like a message."""
        return bytes(self._call_snapshot(0))

    def restore(self, state: bytes) -> None:
        """Put a state ``snapshot`` returned back (a fresh instance, before messages)."""
        result = self._call_snapshot(1, state)
        if isinstance(result, str):
            raise HandlerError(f"component {self.name!r} refused its snapshot: {result}")

    def _call_snapshot(self, which: int, *args: Any) -> Any:
        """Call ``snapshot`` (0) or ``restore`` (1) with a message's budget."""
        if self._snapshot is None:
            raise HandlerError(f"component {self.name!r} does not export {SNAPSHOT!r}")
        store = self._usable()
        self._refill()
        try:
            return self._snapshot[which](store, *args)
        except wasmtime.WasmtimeError as exc:
            raise self._die(exc) from None
        finally:
            self._account()

    def _find_func(self, instance: wc.Instance, iface: str, name: str) -> wc.Func | None:
        store = self._store
        assert store is not None
        index = instance.get_export_index(store, iface)
        func_index = instance.get_export_index(store, name, index) if index else None
        return instance.get_func(store, func_index) if func_index else None

    def _export_func(self, instance: wc.Instance, iface: str, name: str) -> wc.Func:
        func = self._find_func(instance, iface, name)
        if func is None:  # check_world already proved it exists
            raise ComponentTrap(f"{self.name}: export {iface}#{name} vanished", component=self.name)
        return func

    def _wasi_config(self) -> wasmtime.WasiConfig:
        # only the granted mounts, no environment, no arguments; output becomes logs
        config = wasmtime.WasiConfig()
        for mount in self.mounts:  # a pinned mount is verified first (MountChanged)
            host = mount.host_path(self.name)
            config.preopen_dir(host, mount.guest, fs_mutable=mount.writable)
        config.stdout_custom = self._output("stdout")
        config.stderr_custom = self._output("stderr")
        return config

    def _output(self, stream: str) -> Any:
        """A WASI output sink: whole lines go to the log; stderr is also kept for traps."""
        pending = [""]

        def write(data: bytes) -> None:
            try:
                text = pending[0] + data.decode("utf-8", "replace")
                *lines, tail = text.split("\n")
                pending[0] = tail[-_STDERR_KEEP:]  # a line without end stays bounded
                if stream == "stderr":
                    stats = self._stats
                    stats.stderr = (stats.stderr + data.decode("utf-8", "replace"))[-_STDERR_KEEP:]
                # stdout is the guest's output (info); stderr is where a crash's
                # traceback and componentize-py's panic notes go: debug, as the
                # crash itself is one warning with the guest's message (_die)
                log = self._log.info if stream == "stdout" else self._log.debug
                for line in lines:
                    if line.strip():
                        log(truncate(line), stream=stream)
            except Exception:  # output must never fail the guest, nor reach wasmtime-py
                pass

        return write

    # --- state -------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True until the instance traps or is closed."""
        return self._death is None and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def death(self) -> ExecutionError | None:
        """The error that killed this instance, if one did."""
        return self._death

    @property
    def has_callback(self) -> bool:
        return self._callback is not None

    @property
    def uses_fast_path(self) -> bool:
        return self._fast is not None

    @property
    def fuel_used(self) -> int:
        """Fuel the last call used."""
        return self._stats.fuel_used_last

    @property
    def fuel_used_total(self) -> int:
        return self._stats.fuel_used_total

    @property
    def calls(self) -> int:
        return self._stats.calls

    def _usable(self) -> wasmtime.Store:
        if self._closed or self._store is None:
            raise InstanceClosed(f"component instance {self.name!r} is closed")
        if self._death is not None:
            raise InstanceDead(
                f"component instance {self.name!r} died earlier ({self._death}); "
                "wasm forbids entering it again: instantiate a fresh one"
            )
        return self._store

    # --- calls -------------------------------------------------------------------

    def handle_message(self, sender: str, payload: bytes) -> bytes | None:
        """Call ``handle-message``. Returns the reply, or None when there is none.

        Raises :class:`HandlerError` when the component returns ``err`` (the
        instance stays alive), :class:`PayloadTooLarge` before calling anything,
        and an :class:`ExecutionError` subclass when the call traps (the instance
        is dead afterwards).
        """
        ok, value = self.handle_message_raw(sender, payload)
        if not ok:
            raise HandlerError(str(value))
        return value  # type: ignore[return-value]

    def handle_message_raw(self, sender: str, payload: bytes) -> RawResult:
        """Like :meth:`handle_message` but returns ``(is_ok, value)`` without raising on err."""
        store = self._store
        if store is None or self._death is not None:
            store = self._usable()  # raises, saying why
        if len(payload) > self.ceiling:
            self.limits.check_payload(len(payload), self.name, self.lane)  # raises
        if sender is not self._last_sender:
            check_sender(sender or "-")  # refused before any native code sees it
            self._last_sender_bytes = sender.encode("utf-8")
            self._last_sender = sender
        self._refill()
        try:
            if self._fast is not None:
                return self._fast(self._last_sender_bytes, payload)
            if self.lane == "bulk":
                lane = lane_from_bytes(payload, text=self.text_form).decode("utf-8")
                return _public_bulk_result(self._handle(store, sender, lane))
            return _public_result(self._handle(store, sender, payload))
        except wasmtime.WasmtimeError as exc:
            raise self._die(exc) from None
        finally:
            self._account()

    def handle_callback(self, correlation_id: str, reply: bytes | BaseException) -> None:
        """Deliver the reply (or failure) of a request the component made.

        Raises :class:`HandlerError` when the component returns ``err``.
        """
        store = self._usable()
        if self._callback is None:
            raise HandlerError(
                f"component {self.name!r} does not export {CALLBACK!r}, so it cannot "
                "take replies to requests"
            )
        check_sender(correlation_id, "correlation id")
        arg: bytes | str = (
            reply
            if isinstance(reply, bytes)
            else truncate(f"{reply}", 4096).encode("utf-8", "replace").decode("utf-8")
        )
        self._refill()
        try:
            if self._fast_callback is not None:
                ok, said = self._fast_callback.call(correlation_id.encode("utf-8"), arg)
                result = None if ok else str(said)
            else:
                result = self._callback(store, correlation_id, arg)
        except wasmtime.WasmtimeError as exc:
            raise self._die(exc) from None
        finally:
            self._account()
        if isinstance(result, str):
            raise HandlerError(result)

    def _refill(self) -> None:
        err = _set_fuel(self._ctx, self.limits.fuel_per_message)
        if err:
            raise wasmtime.WasmtimeError._from_ptr(err)
        _set_deadline(self._ctx, self._ticks)
        self._started = _monotonic()

    def time_left(self) -> float:
        """Seconds left of the current message's deadline (host calls are bounded by it)."""
        return max(0.0, self._started + self.limits.timeout_ms / 1000.0 - _monotonic())

    def _account(self) -> None:
        if _get_fuel(self._ctx, self._fuel_left_ref):
            return
        used = self.limits.fuel_per_message - self._fuel_left.value
        stats = self._stats
        stats.calls += 1
        stats.fuel_used_last = used
        stats.fuel_used_total += used

    def _die(self, exc: wasmtime.WasmtimeError) -> ExecutionError:
        error = self._classify(exc, during="handle")
        self._death = error
        # one line with the guest's message; its full stderr went to debug
        self._log.warning("component instance died", error=truncate(str(error)))
        return error

    def _classify(self, exc: wasmtime.WasmtimeError, *, during: str) -> ExecutionError:
        text = str(exc)
        match = _TRAP_LINE.search(text)
        if match:
            trap = match.group(1).strip()
        elif "Caused by:" in text:  # the cause is what matters, not the backtrace header
            cause = text.split("Caused by:", 1)[1]
            trap = "; ".join(line.strip() for line in cause.splitlines() if line.strip())
        else:
            trap = text.strip().splitlines()[0]
        limits = self.limits
        failure, self._host_failure = self._host_failure, None
        if failure is not None:
            what, raised = failure
            return ComponentTrap(
                f"component {self.name!r} trapped during {during}: host function {what} "
                f"failed: {truncate(repr(raised), 300)}",
                component=self.name,
                detail=text,
            )
        if "fuel allocated for hostcalls has been exhausted" in text:
            return ReplyTooLarge(
                f"component {self.name!r} answered more than can cross as list<u8> (at most "
                f"{LIST_PAYLOAD_MAX} bytes, wasmtime's hostcall budget); export the bulk lane "
                "(airssys:component/bulk-text; the airssys SDK does) and reply with a lane "
                "string (reply.lane) to return up to max-payload",
                component=self.name,
                detail=text,
            )
        if "all fuel consumed" in text:
            return FuelExhausted(
                f"component {self.name!r} used its whole fuel budget "
                f"({limits.fuel_per_message} units per message)",
                component=self.name,
                detail=text,
            )
        if "wasm trap: interrupt" in text:
            return DeadlineExceeded(
                f"component {self.name!r} ran past its {limits.timeout_ms:g} ms deadline",
                component=self.name,
                detail=text,
            )
        if "exceeds memory limits" in text or "memory limit" in text:
            return MemoryLimitExceeded(
                f"component {self.name!r} needs more linear memory than its cap of "
                f"{limits.memory} bytes during {during}: {trap}",
                component=self.name,
                detail=text,
            )
        if "Cannot allocate memory" in text or "failed to reserve" in text.lower():
            return ResourceExhausted(
                f"the host could not provide component {self.name!r} the memory it needs "
                f"during {during} ({trap}); each instance reserves virtual address space "
                "for its linear memory: raise `ulimit -v`, or run fewer instances",
                component=self.name,
                detail=text,
            )
        stderr = self._stats.stderr
        detail = f"{text}\n--- guest stderr ---\n{stderr}" if stderr else text
        said = _last_exception(stderr)
        guest = f"; guest said: {said}" if said else ""
        return ComponentTrap(
            f"component {self.name!r} trapped during {during}: {trap}{guest}",
            component=self.name,
            detail=detail,
        )

    def host_call(
        self, name: str, attempt: Attempt, args: tuple[Any, ...], *, always: bool = False
    ) -> Any:
        """A host import's answer: ``attempt(self, args)``, or for a durable instance
        what its recorder says (recorded live, answered from the journal in replay;
        ``always``: run it in replay too, see :class:`Recorder`)."""
        recorder = self.recorder
        if recorder is None:
            return attempt(self, args)
        return recorder.call(name, args, lambda: attempt(self, args), always=always)

    def count_host_call(self, interface: str, outcome: str) -> None:
        """One host import call by interface and outcome (ok, err, denied, trap)."""
        calls = self._host_calls
        if calls is not None:
            key = (interface, outcome)
            calls[key] = calls.get(key, 0) + 1

    def host_failed(self, what: str, exc: BaseException) -> wasmtime.WasmtimeError:
        """Host function ``what`` cannot answer (it raised ``exc``): counted as a trap,
        and the error that traps this instance; its death names the function."""
        self._host_failure = (what, exc)
        self.count_host_call(what.split(".", 1)[0], "trap")
        return wasmtime.WasmtimeError(f"host function {what} failed: {exc!r:.300}")

    def guest_log(self, level: str, message: str) -> None:
        """Where the ``logging.log`` import lands: structlog, bound to this component."""
        method = structlog_method(level)
        recorder = self.recorder
        if recorder is not None and recorder.replaying:
            return  # said once already, when the message was first handled
        if self._log.enabled(method):
            self._guest_log(level, method=method, event=truncate(message), level=level)

    # --- ownership ---------------------------------------------------------------

    def close(self) -> None:
        """Release the Store and everything in it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fast = self._fast_callback = None
        closers, self._closers = self._closers, []
        for closer in closers:
            try:
                closer()
            except Exception:  # a host table that fails to clear must not keep the Store
                self._log.exception("closing a host resource table failed")
        self._guest_log.flush()
        self._instances.remove(self._ctx_address, self)
        store, self._store = self._store, None
        if store is not None:
            store.close()
        for mount in self.mounts:  # the guest is gone: the links it left that escape go
            try:
                mount.sweep(self.name)
            except Exception:  # a sweep that fails must not fail the close
                self._log.exception("sweeping a writable mount failed", mount=mount.guest)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when this instance closes (host-side tables of its resources)."""
        if self._closed:
            closer()
        else:
            self._closers.append(closer)

    def __enter__(self) -> ComponentInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True) is False:
            warnings.warn(
                f"component instance {self.name!r} was never closed",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("dead" if self._death else "alive")
        return f"<ComponentInstance {self.name!r} {state}>"


def _last_exception(stderr: str) -> str:
    """The final line of the guest's last Python traceback, or its last stderr line."""
    if "Traceback (most recent call last):" in stderr:
        tail = stderr.rsplit("Traceback (most recent call last):", 1)[1]
        tail = tail.split("\nthread '", 1)[0]  # componentize-py's panic note follows
        lines = [line for line in tail.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""
    lines = [
        line
        for line in stderr.splitlines()
        if line.strip() and not any(note in line for note in _PANIC_NOTES)
    ]
    return lines[-1].strip() if lines else ""


_PANIC_NOTES: Final = (
    "panicked at",
    "RUST_BACKTRACE",
    "Python function threw an unexpected exception",
)
"""What componentize-py's runtime adds to stderr when the guest fails: not the
guest's message."""


def _public_bulk_result(value: Any) -> RawResult:
    ok, reply = _public_result(value)
    if not ok or reply is None:
        return ok, reply
    if isinstance(reply, bytes):  # bulk-text's reply.bytes
        return True, reply
    try:
        return True, bytes_from_lane(str(reply).encode("utf-8"))
    except ValueError as exc:
        return False, str(exc)


def _public_result(value: Any) -> RawResult:
    """Map the public API's lifted result to ``(is_ok, value)``."""
    if isinstance(value, wc.Variant):
        return value.tag == "ok", value.payload
    if isinstance(value, str):
        return False, value
    return True, value
