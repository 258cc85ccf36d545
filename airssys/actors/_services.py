"""The host services one component incarnation may use, each made on first use.

A component that never touches storage, HTTP or processes costs nothing here: the
key-value service (and the system's storage backend behind it), the HTTP client and
the process runner are built the first time a host call needs them. Each is bound
to the component's compiled grants, so every call passes its capability check
first; a denial is audited by the checks' hook.

Host calls arrive on whatever thread runs the component: building is guarded by a
lock, and the services themselves are thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..runtime import LIST_PAYLOAD_MAX

if TYPE_CHECKING:
    from ..host import HttpService, ProcessService
    from ..security import CompiledGrants
    from ..storage import KeyValue
    from ._loading import Admission
    from ._system import ActorSystem

__all__ = ("ComponentServices",)


class ComponentServices:
    """Storage, HTTP and processes for one component, behind its grants."""

    def __init__(
        self,
        system: ActorSystem,
        checks: CompiledGrants,
        admission: Admission,
        time_left: Callable[[], float],
    ) -> None:
        self._system = system
        self._checks = checks
        self._admission = admission
        self.time_left = time_left
        """Seconds left in the message being handled (host calls are bounded by it)."""
        self._lock = threading.Lock()
        self._keyvalue: KeyValue | None = None
        self._http: HttpService | None = None
        self._process: ProcessService | None = None

    @property
    def keyvalue(self) -> KeyValue:
        with self._lock:
            if self._keyvalue is None:
                from ..storage import KeyValue

                self._keyvalue = KeyValue.from_policy(
                    self._system.storage,
                    self._checks,
                    self._system.policy,
                    self._admission.trust,
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
