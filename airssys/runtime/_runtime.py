"""The runtime: one engine configuration, its epoch ticker, linker and compile cache."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Final, TypeGuard, final

import wasmtime
from wasmtime import component as wc

from ..errors import ComponentLoadError, RuntimeClosed
from ._cache import CompileCache, default_cache_dir
from ._caller import DetachedHost, Host, Instances
from ._component import Component
from ._determinism import define_deterministic_wasi
from ._host import define_imports
from ._instance import _CREATE_KEY, ComponentInstance, Limits, Mount
from ._world import check_world

__all__ = ("Component", "Runtime", "looks_like_wat")

_WASM_MAGIC: Final = b"\0asm"
_FILES_KEPT: Final = 256  # loaded files remembered by (path, size, mtime)
_COMPACT_GUARD: Final = 0  # no guard region: one mapping per memory (vm.max_map_count)
_COMPACT_GROWTH: Final = 1024 * 1024  # address space kept for a memory to grow in place


def looks_like_wat(source: object) -> TypeGuard[str]:
    """True for WAT text (it opens with a form or a comment), as opposed to a path."""
    return isinstance(source, str) and source.lstrip()[:1] in ("(", ";")


class _EpochTicker:
    """Advances the engine's epoch every ``tick_ms`` on a daemon thread."""

    def __init__(self, engine: wasmtime.Engine, tick_ms: float) -> None:
        self._engine = engine
        self._tick = tick_ms / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="airssys-epoch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick, stop, increment = self._tick, self._stop, self._engine.increment_epoch
        while not stop.wait(tick):
            increment()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@final
class Runtime:
    """Loads, validates, caches and instantiates components.

    One ``wasmtime.Engine`` with fuel metering and epoch interruption, one epoch
    ticker thread started and stopped with it, one linker with the airssys host
    imports and WASI 0.2, and a compile cache (memory + disk).

    ``cache_dir``: where serialized artifacts go; default ``$AIRSSYS_CACHE_DIR``
    or the user's cache directory. ``disk_cache=False`` keeps only the memory cache.
    ``epoch_tick_ms``: deadline granularity.
    ``reserve_memory``: reserve wasmtime's default 4 GiB of address space per linear
    memory, which lets compiled code skip bounds checks (measured ~9% faster on a
    Python component) but caps a process at about 30,000 instances and fails under
    a ``ulimit -v`` of a few GiB. The default (False) reserves nothing up front:
    over 100,000 small instances fit, at the price of explicit bounds checks.
    The memory cap (``Limits.memory``) is exact either way.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        cache_dir: str | PathLike[str] | None = None,
        disk_cache: bool = True,
        epoch_tick_ms: float = 2.0,
        reserve_memory: bool = False,
    ) -> None:
        if epoch_tick_ms <= 0:
            raise ValueError(f"epoch_tick_ms must be positive, got {epoch_tick_ms!r}")
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        if not reserve_memory:
            # no up-front 4 GiB reservation per linear memory: memories start at their
            # size and move as they grow, with explicit bounds checks in the code
            config.memory_reservation = 0
            config.memory_guard_size = _COMPACT_GUARD
            config.memory_reservation_for_growth = _COMPACT_GROWTH
        self.engine = wasmtime.Engine(config)
        self.epoch_tick_ms = float(epoch_tick_ms)
        self.reserve_memory = reserve_memory
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        memory_key = "reserve" if reserve_memory else f"compact-{_COMPACT_GUARD}-{_COMPACT_GROWTH}"
        self.cache = CompileCache(
            self.engine,
            settings_key=f"fuel=1,epoch=1,component-model=1,memory={memory_key}",
            directory=(directory / "compiled") if disk_cache else None,
        )
        self.linker = wc.Linker(self.engine)
        self.linker.add_wasip2()
        self._instances: Instances[ComponentInstance] = Instances()
        self._lock = threading.Lock()
        self._host_types = define_imports(self.linker, self._instances.of)
        self._deterministic_linker: wc.Linker | None = None
        self._ticker: _EpochTicker | None = _EpochTicker(self.engine, self.epoch_tick_ms)
        self._files: dict[tuple[str, int, int, str | None], Component] = {}
        self._closed = False

    # --- loading -----------------------------------------------------------------

    def load(self, source: str | bytes | PathLike[str], *, name: str | None = None) -> Component:
        """Load a component from a path, wasm bytes, or WAT text."""
        if isinstance(source, bytes | bytearray):
            return self.load_bytes(bytes(source), name=name)
        if looks_like_wat(source):
            return self.load_wat(source, name=name)
        return self.load_file(source, name=name)

    def load_file(self, path: str | PathLike[str], *, name: str | None = None) -> Component:
        """Load a ``.wasm`` or ``.wat`` file. A file already loaded and unchanged (same
        size and modification time) is not read or hashed again."""
        p = Path(path)
        try:
            st = p.stat()
            key = (str(p.resolve()), st.st_size, st.st_mtime_ns, name)
            known = self._files.get(key)
            if known is not None:
                return known
            data = p.read_bytes()
        except OSError as exc:
            raise ComponentLoadError(f"cannot read component {str(p)!r}: {exc.strerror}") from exc
        label = name or p.stem
        if p.suffix == ".wat":
            component = self.load_wat(data.decode("utf-8"), name=label)
        else:
            component = self.load_bytes(data, name=label)
        with self._lock:
            if len(self._files) >= _FILES_KEPT:
                self._files.clear()
            self._files[key] = component
        return component

    def load_wat(self, text: str, *, name: str | None = None) -> Component:
        label = name or "component"
        try:
            wasm = wasmtime.wat2wasm(text)
        except wasmtime.WasmtimeError as exc:
            raise ComponentLoadError(f"component {label!r} is not valid WAT: {exc}") from None
        return self.load_bytes(bytes(wasm), name=label)

    def load_bytes(self, wasm: bytes, *, name: str | None = None) -> Component:
        label = name or "component"
        self._check_open()
        if wasm[:4] != _WASM_MAGIC:
            raise ComponentLoadError(
                f"component {label!r} is not WebAssembly: it starts with {wasm[:8]!r}, "
                "expected the '\\0asm' magic of a binary component (or pass WAT text)"
            )
        if wasm[4:8] == b"\x01\x00\x00\x00":
            raise ComponentLoadError(
                f"component {label!r} is a core wasm module, not a component; wrap it "
                "with `wasm-tools component new` or build it for the airssys WIT world"
            )
        try:
            sha, compiled = self.cache.get(wasm)
        except wasmtime.WasmtimeError as exc:
            raise ComponentLoadError(
                f"component {label!r} is not a valid WebAssembly component: {exc}"
            ) from None
        world = check_world(label, self.engine, compiled, self.linker, self._host_types)
        return Component(name=label, sha256=sha, world=world, wasmtime_component=compiled)

    # --- instances ---------------------------------------------------------------

    def instantiate(
        self,
        component: Component,
        *,
        limits: Limits | None = None,
        host: Host | None = None,
        name: str | None = None,
        fast_path: bool = True,
        mounts: Sequence[Mount] = (),
        deterministic: bool = False,
    ) -> ComponentInstance:
        """A fresh instance on a fresh Store. The caller owns it and must close it.

        ``mounts``: host directories the guest may see (WASI preopens); none by default.
        ``fast_path=False`` forces wasmtime-py's public call path (for comparison).
        ``deterministic``: WASI clocks and randomness go through the instance's
        recorder (durable components; see :mod:`._determinism`).
        """
        self._check_open()
        label = name or component.name
        return ComponentInstance(
            component,
            name=label,
            limits=limits or Limits(),
            host=host or DetachedHost(f"local/{label}"),
            engine=self.engine,
            linker=self._deterministic() if deterministic else self.linker,
            instances=self._instances,
            epoch_tick_ms=self.epoch_tick_ms,
            fast_path=fast_path,
            mounts=tuple(mounts),
            _key=_CREATE_KEY,
        )

    def _deterministic(self) -> wc.Linker:
        """The linker of durable components: WASI's clocks and randomness recorded."""
        with self._lock:
            if self._deterministic_linker is None:
                linker = wc.Linker(self.engine)
                linker.add_wasip2()
                define_imports(linker, self._instances.of)
                define_deterministic_wasi(linker, self._instances.of)
                self._deterministic_linker = linker
            return self._deterministic_linker

    @property
    def live_instances(self) -> int:
        return len(self._instances)

    # --- ownership ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeClosed("this airssys Runtime is closed")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the epoch ticker and close every instance still open. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for instance in self._instances.all():
            instance.close()
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
        self.cache.clear_memory()
        self._files.clear()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True) is False:
            warnings.warn("airssys Runtime was never closed", ResourceWarning, stacklevel=1)
            self.close()
