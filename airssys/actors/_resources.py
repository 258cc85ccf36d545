"""What a system's components run on: the runtime, the storage backend, the worker
threads, the durable journals and the mount-point scratch directories.

Each is made on first use and released by :meth:`Resources.aclose`, after the
actors have stopped. The ActorSystem owns one (``system.resources``); its
``runtime``, ``storage``, ``open_journal`` and ``release_journal`` read from it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import threading
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from .._dirs import hold_lock, make_private_dir
from ..errors import ActorError, DataDirLocked, StorageError
from ..manifest import DurabilitySpec
from ..runtime import Runtime
from ..storage import Backend

if TYPE_CHECKING:
    from ..durability import Durable, Journal

__all__ = ("Resources",)


class Resources:
    """The runtime, storage, threads, journals and scratch dirs of one system."""

    def __init__(
        self,
        system: str,
        *,
        runtime: Runtime | None,
        cache_dir: str | PathLike[str] | None,
        workers: int | None,
        storage: str | Backend,
        data_dir: str | PathLike[str] | None,
    ) -> None:
        self._system = system
        self._runtime = runtime
        self._owns_runtime = runtime is None
        self._cache_dir = cache_dir
        self._workers = workers or min(32, (os.cpu_count() or 1) + 4)
        self._storage_choice = storage
        self._storage: Backend | None = None
        self._storage_lock = threading.Lock()
        self._data_dir = data_dir
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._instantiate_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.journals: dict[str, Durable] = {}
        """The open journals of durable addresses."""
        self.scratch: list[Path] = []
        """Mount-point roots made for components (removed at close)."""
        self._claim_lock = threading.Lock()
        self._claimed: int | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(cache_dir=self._cache_dir)
        return self._runtime

    @property
    def data_dir(self) -> Path:
        """The data directory (created on first use)."""
        if self._data_dir is None:
            from ..storage import default_data_dir

            return default_data_dir()
        path = Path(self._data_dir)
        return make_private_dir(
            path, lambda exc: StorageError(f"cannot create the data directory {str(path)!r}: {exc}")
        )

    def claim(self) -> None:
        """Hold ``<data dir>/<system>.lock`` for the system's life (once): one system of
        a name per data directory, its storage and journals one writer's. A second one,
        in this process or another, is refused (DataDirLocked) naming the holder."""
        with self._claim_lock:
            if self._claimed is not None:
                return
            path = self.data_dir / f"{self._system}.lock"
            try:
                held = hold_lock(path)
            except OSError as exc:
                raise DataDirLocked(f"cannot take the data directory's lock {path}: {exc}") from exc
            if isinstance(held, str):
                raise DataDirLocked(
                    f"another system named {self._system!r} (pid {held}) uses the data "
                    f"directory {path.parent} (lock {path}): stop it first, or give this "
                    "one another name or data directory"
                )
            self._claimed = held

    @property
    def storage(self) -> Backend:
        with self._storage_lock:
            if self._storage is None:
                choice = self._storage_choice
                if isinstance(choice, str):
                    from ..storage import open_backend

                    if choice != "memory":
                        self.claim()
                    data_dir = None if self._data_dir is None else Path(self._data_dir)
                    self._storage = open_backend(choice, data_dir, system=self._system)
                else:
                    self._storage = choice
            return self._storage

    def instantiator(self) -> concurrent.futures.ThreadPoolExecutor:
        """The one thread that loads components and instantiates big ones: many threads
        at once doing Python-level work only fight the event loop for the GIL."""
        if self._instantiate_pool is None:
            self._instantiate_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="airssys-instantiate"
            )
        return self._instantiate_pool

    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The worker threads components run on (execution "thread" and "auto")."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._workers, thread_name_prefix="airssys-wasm"
            )
        return self._executor

    @property
    def threads_running(self) -> bool:
        return self._executor is not None or self._instantiate_pool is not None

    # --- journals -------------------------------------------------------------------------

    def open_journal(
        self,
        address: str,
        spec: DurabilitySpec,
        scope: str | None,
        journal: Journal | None = None,
    ) -> Durable:
        durable = self.journals.get(address)
        if durable is not None and durable.journal.broken:  # a restart opens it again
            durable.journal = durable.journal.reopen()
        if durable is None:
            from ..durability import Durable, journal_path
            from ..durability import Journal as FileJournal

            if journal is None:
                if scope is None or scope == self._system:
                    self.claim()  # (a cluster's shared journals are locked one by one)
                path = journal_path(self.data_dir, scope or self._system, address)
                journal = FileJournal(path, fsync=spec.fsync)
            durable = self.journals[address] = Durable(journal, spec, address)
        return durable

    def release_journal(self, address: str) -> None:
        durable = self.journals.pop(address, None)
        if durable is not None:
            durable.journal.close()

    def journal(self, address: str) -> Durable:
        durable = self.journals.get(address)
        if durable is None:
            raise ActorError(f"{address} is not a durable component (no journal is open)")
        return durable

    # --- closing ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release everything (the actors have stopped; wasm still running on a worker
        thread ends at its deadline)."""
        for attr in ("_executor", "_instantiate_pool"):
            executor = getattr(self, attr)
            if executor is not None:
                setattr(self, attr, None)
                await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)
        if self._runtime is not None and self._owns_runtime:
            self._runtime.close()
        for durable in self.journals.values():
            durable.journal.close()
        self.journals.clear()
        if self._storage is not None and isinstance(self._storage_choice, str):
            self._storage.close()  # ours: opened on first use
        for root in self.scratch:
            shutil.rmtree(root, ignore_errors=True)
        self.scratch.clear()
        if self._claimed is not None:
            os.close(self._claimed)
            self._claimed = None
