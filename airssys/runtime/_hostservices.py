"""The host services one component incarnation may use, each made on first use.

A component that never touches storage, HTTP or processes costs nothing here: the
key-value service (and the storage backend behind it), the HTTP client and the
process runner are built the first time a host call needs them. Each is bound to
the component's compiled grants, so every call passes its capability check first;
a denial is audited by the checks' hook. The runtime's host imports reach them as
``host.services`` (the actors give every component one).

Host calls arrive on whatever thread runs the component: building is guarded by a
lock, and the services themselves are thread-safe.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from ._instance import LIST_PAYLOAD_MAX

if TYPE_CHECKING:
    from ..host import HttpService, ProcessService
    from ..security import CompiledGrants, Policy, TrustLevel
    from ..storage import Backend, KeyValue, StagedBackend

__all__ = ("HostServices", "StorageSource")


class StorageSource(Protocol):
    """Where the storage backend comes from: opened the first time it is asked for."""

    @property
    def storage(self) -> Backend: ...


class HostServices:
    """Storage, HTTP and processes for one component, behind its grants."""

    def __init__(
        self,
        checks: CompiledGrants,
        source: StorageSource,
        policy: Policy,
        trust: TrustLevel,
        *,
        staged: bool = False,
    ) -> None:
        self._checks = checks
        self._source = source
        self.staging: StagedBackend | None = None
        """With ``staged`` (a durable component): storage writes wait for the run loop's
        commit at the end of each message (see airssys.storage.StagedBackend)."""
        if staged:
            from ..storage import StagedBackend

            self.staging = StagedBackend(lambda: source.storage)
        self._policy = policy
        self._trust = trust
        self._lock = threading.Lock()
        self._keyvalue: KeyValue | None = None
        self._http: HttpService | None = None
        self._process: ProcessService | None = None

    @property
    def keyvalue(self) -> KeyValue:
        with self._lock:
            if self._keyvalue is None:
                from ..storage import KeyValue

                backend = self.staging if self.staging is not None else self._source.storage
                self._keyvalue = KeyValue.from_policy(
                    backend, self._checks, self._policy, self._trust
                )
            return self._keyvalue

    @property
    def http(self) -> HttpService:
        with self._lock:
            if self._http is None:
                from ..host import HttpService

                # a body larger than list<u8> can carry into a component is refused anyway
                self._http = HttpService(self._checks, max_response=LIST_PAYLOAD_MAX)
            return self._http

    @property
    def process(self) -> ProcessService:
        with self._lock:
            if self._process is None:
                from ..host import ProcessService

                self._process = ProcessService(self._checks)
            return self._process
