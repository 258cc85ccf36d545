"""The audit log: every grant at start and every denial at run time, as records.

Records go to a bounded in-memory ring (queried with :meth:`AuditLog.query`) and,
when a path is given, to a JSON-lines file (one object per line, appended, each line
handed to the kernel as it is written: a killed process loses none of them). The
file is the owner's alone: created 0600, an existing one with a wider mode is made
0600, and a link, a file that is not a regular one or another user's file is
refused (:class:`~airssys.errors.AuditLogError`). Grants are always recorded.
Denials are always *counted* (:meth:`AuditLog.denials`, :meth:`AuditLog.counts`);
to keep a flood from drowning everything else, each (component, kind) records its
first ``burst`` denials per ``window`` seconds one by one, and the rest as
**summary** records (``count``: how many denials one stands for). A summary is
written at most ``flush_after`` seconds (0.5) after the first denial it counts, by
a timer thread that runs while denials are held, and at the end of the window, at
:meth:`AuditLog.flush` and at :meth:`AuditLog.close` for what is left: a SIGKILL
a second after a flood loses none of its count. Nothing is dropped silently and
denials cannot be turned off.

Thread-safe: denials are recorded on the worker threads that run components.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal, NamedTuple

from .._logging import Throttle, get_logger, truncate
from ..errors import AuditLogError

if TYPE_CHECKING:
    from ._grants import Grants

__all__ = ("DENY", "GRANT", "AuditCounts", "AuditLog", "AuditRecord", "AuditScope", "Decision")

_log = get_logger("airssys.security.audit")
GRANT: Final = "grant"
DENY: Final = "deny"
Decision = Literal["grant", "deny"]
RESOURCE_KEPT: Final = 1024
REASON_KEPT: Final = 2048
FLUSH_AFTER: Final = 0.5
"""Seconds a held denial waits at most before a summary counts it (the timer)."""
_OPEN_AUDIT: Final = (
    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision. ``time`` is seconds since the epoch; ``count`` above 1 marks a
    summary standing for that many denials not recorded one by one."""

    time: float
    component: str
    version: str
    digest: str
    trust: str
    kind: str
    resource: str
    decision: Decision
    reason: str
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))


class AuditCounts(NamedTuple):
    """Every decision for one (component, kind), recorded one by one or not."""

    grants: int
    denials: int


class _Window:
    __slots__ = ("held", "held_since", "last", "passed", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.passed = 0
        self.held = 0
        self.held_since = started
        """When the first denial held since the last summary came."""
        self.last: AuditRecord | None = None


def open_private(path: Path) -> IO[str]:
    """``path`` opened for appending, the owner's alone (see the module docstring)."""
    try:
        fd = os.open(path, _OPEN_AUDIT, 0o600)
    except OSError as exc:
        if os.path.islink(path):
            raise AuditLogError(f"the audit log {path} is a symbolic link: refusing it") from None
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads
            raise AuditLogError(f"the audit log {path} is not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuditLogError(f"the audit log {path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise AuditLogError(
                f"the audit log {path} belongs to another user (uid {st.st_uid}): refusing it"
            )
        mode = stat.S_IMODE(st.st_mode)
        if mode != 0o600:
            try:
                os.fchmod(fd, 0o600)
            except OSError as exc:
                raise AuditLogError(
                    f"the audit log {path} has mode {mode:o} and cannot be made 0600: {exc}"
                ) from None
            _log.warning("audit log made private", path=str(path), mode=f"{mode:o}")
        return os.fdopen(fd, "a", encoding="utf-8", buffering=1)
    except BaseException:
        os.close(fd)
        raise


class AuditLog:
    """A bounded ring of :class:`AuditRecord`, optionally mirrored to a JSON-lines file."""

    def __init__(
        self,
        capacity: int = 10_000,
        path: str | os.PathLike[str] | None = None,
        *,
        burst: int = 100,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        flush_after: float = FLUSH_AFTER,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if burst < 1 or not window > 0:
            raise ValueError(f"burst must be at least 1 and window positive, got {burst}, {window}")
        if not flush_after > 0:
            raise ValueError(f"flush_after must be positive, got {flush_after}")
        self._ring: deque[AuditRecord] = deque(maxlen=capacity)
        self._burst = burst
        self._window = window
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._swept = clock()
        self._closed = False
        self._flush_after = flush_after
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._write_errors = Throttle(_log, "audit log write failed", burst=3, window=60.0)
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = None
        if self.path is not None:
            self._file = open_private(self.path)

    # --- writing ---------------------------------------------------------------------

    def record(
        self,
        component: str,
        kind: str,
        resource: str,
        decision: Decision,
        reason: str = "",
        *,
        version: str = "",
        digest: str = "",
        trust: str = "",
    ) -> AuditRecord | None:
        """Record one decision; returns the record kept, or None when a denial is only
        counted (it will be part of a summary)."""
        if decision not in (GRANT, DENY):
            raise ValueError(f"decision must be {GRANT!r} or {DENY!r}, got {decision!r:.40}")
        entry = AuditRecord(
            time=self._wall(),
            component=component,
            version=version,
            digest=digest,
            trust=str(trust),
            kind=str(kind),
            resource=truncate(resource, RESOURCE_KEPT),
            decision=decision,
            reason=truncate(reason, REASON_KEPT),
        )
        key = (component, entry.kind)
        with self._lock:
            counts = self._counts.setdefault(key, [0, 0])
            counts[0 if decision == GRANT else 1] += 1
            now = self._clock()
            if now - self._swept >= self._window:
                self._sweep(now, force=False)
            kept = decision == GRANT or self._pass(key, entry, now)
            if kept:
                self._keep(entry)
        return entry if kept else None

    def _pass(self, key: tuple[str, str], entry: AuditRecord, now: float) -> bool:
        window = self._windows.get(key)
        if window is None or now - window.started >= self._window:
            if window is not None:
                self._summarise(window)
            window = self._windows[key] = _Window(now)
        if window.passed < self._burst:
            window.passed += 1
            return True
        if not window.held:
            window.held_since = now
            self._hold()
        window.held += 1
        window.last = entry
        return False

    # --- the timer: summaries of held denials, at most flush_after late ------------------

    def _hold(self) -> None:
        """A window starts holding denials (under the lock): the timer must see it."""
        if self._closed:
            return  # close() summarised everything; a late denial waits for flush()
        if self._flusher is None or not self._flusher.is_alive():  # (none in a forked child)
            self._flusher = threading.Thread(
                target=_flush_held_forever,
                args=(weakref.ref(self), self._wake),
                name="airssys-audit-flush",
                daemon=True,
            )
            weakref.finalize(self, self._wake.set)  # a log dropped unclosed ends its timer
            self._flusher.start()
        self._wake.set()

    def _flush_held(self) -> float | None:
        """Summarise the windows whose held denials are due; the seconds until the next
        one is, None when nothing is held; raises _Stopped once the log is closed."""
        with self._lock:
            if self._closed:
                raise _Stopped
            now = self._clock()
            due: float | None = None
            for window in self._windows.values():
                if not window.held:
                    continue
                left = window.held_since + self._flush_after - now
                if left <= 0:
                    self._summarise(window)
                elif due is None or left < due:
                    due = left
            return due

    def _summarise(self, window: _Window) -> None:
        last = window.last
        if not window.held or last is None:
            return
        self._keep(
            AuditRecord(
                time=self._wall(),
                component=last.component,
                version=last.version,
                digest=last.digest,
                trust=last.trust,
                kind=last.kind,
                resource=last.resource,
                decision=DENY,
                reason=(
                    f"{window.held} more {last.kind} denials in a {self._window:g} s window, "
                    f"summarised (the last: {truncate(last.reason, 200)})"
                ),
                count=window.held,
            )
        )
        window.held = 0
        window.last = None

    def _sweep(self, now: float, *, force: bool) -> None:
        """Summarise windows that are over (every window when ``force``)."""
        self._swept = now
        for key, window in list(self._windows.items()):
            if force or now - window.started >= self._window:
                self._summarise(window)
                del self._windows[key]

    def _keep(self, entry: AuditRecord) -> None:
        self._ring.append(entry)
        if self._file is not None:
            try:
                self._file.write(entry.to_json() + "\n")
            except (OSError, ValueError) as exc:
                self._write_errors(type(exc).__name__, path=str(self.path), error=str(exc))

    def bind(
        self, component: str, *, version: str = "", digest: str = "", trust: str = ""
    ) -> AuditScope:
        """A recorder for one component (its version, digest and trust filled in)."""
        return AuditScope(self, component, version=version, digest=digest, trust=trust)

    def flush(self) -> None:
        """Write summaries of windows that are over, and flush the file."""
        with self._lock:
            self._sweep(self._clock(), force=False)
            if self._file is not None:
                try:
                    self._file.flush()
                except (OSError, ValueError) as exc:
                    self._write_errors(type(exc).__name__, path=str(self.path), error=str(exc))

    def close(self) -> None:
        """Summarise every open window and close the file. Records still arrive in
        memory afterwards (a late denial is never lost), but no longer in the file."""
        with self._lock:
            if self._closed:
                return
            self._sweep(self._clock(), force=True)
            self._closed = True
            file, self._file = self._file, None
            flusher = self._flusher
        self._wake.set()
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()
        if file is not None:
            try:
                file.close()
            except OSError as exc:
                _log.error("audit log close failed", path=str(self.path), error=str(exc))
        self._write_errors.flush()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------

    def query(
        self,
        component: str | None = None,
        decision: Decision | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records in the ring (oldest first) matching every filter given; ``since`` is
        seconds since the epoch; ``limit`` keeps the newest."""
        with self._lock:
            records = list(self._ring)
        found = [
            r
            for r in records
            if (component is None or r.component == component)
            and (decision is None or r.decision == decision)
            and (kind is None or r.kind == kind)
            and (since is None or r.time >= since)
        ]
        return found[-limit:] if limit is not None and limit > 0 else found

    def denials(self, component: str, kind: str | None = None) -> int:
        """How many denials ``component`` met (of ``kind``), summarised or not."""
        with self._lock:
            return sum(
                counts[1]
                for (name, k), counts in self._counts.items()
                if name == component and (kind is None or k == kind)
            )

    def counts(self, component: str | None = None) -> dict[tuple[str, str], AuditCounts]:
        """``{(component, kind): AuditCounts(grants, denials)}`` for every decision seen."""
        with self._lock:
            return {
                key: AuditCounts(grants, denials)
                for key, (grants, denials) in self._counts.items()
                if component is None or key[0] == component
            }

    def __len__(self) -> int:
        return len(self._ring)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"<AuditLog {len(self._ring)}/{self._ring.maxlen} records{where}>"


class _Stopped(Exception):
    """The log was closed: its timer ends."""


def _flush_held_forever(log_ref: weakref.ref[AuditLog], wake: threading.Event) -> None:
    """The timer thread: summarise held denials when they are due, sleep until the next
    one (or until a window starts holding), end when the log is closed or dropped. It
    holds the log only while it looks at it."""
    while True:
        log = log_ref()
        if log is None:
            return
        try:
            wait = log._flush_held()
        except _Stopped:
            return
        except Exception:  # the timer must outlive a bad write; the next look retries
            _log.exception("audit log timer failed")
            wait = FLUSH_AFTER
        del log
        wake.wait(wait)
        wake.clear()


class AuditScope:
    """Records for one component. Usable as the ``on_deny`` hook of
    :meth:`~airssys.security.Grants.compile` (``scope(kind, resource, reason)``)."""

    __slots__ = ("_log", "component", "digest", "trust", "version")

    def __init__(
        self, log: AuditLog, component: str, *, version: str = "", digest: str = "", trust: str = ""
    ) -> None:
        self._log = log
        self.component = component
        self.version = version
        self.digest = digest
        self.trust = str(trust)

    def _record(self, kind: str, resource: str, decision: Decision, reason: str) -> None:
        self._log.record(
            self.component,
            kind,
            resource,
            decision,
            reason,
            version=self.version,
            digest=self.digest,
            trust=self.trust,
        )

    def grant(self, kind: str, resource: str, reason: str = "declared") -> None:
        self._record(kind, resource, GRANT, reason)

    def deny(self, kind: str, resource: str, reason: str) -> None:
        self._record(kind, resource, DENY, reason)

    __call__ = deny

    def grants(self, grants: Grants, reason: str = "declared") -> None:
        """Record every declaration of ``grants`` as granted (at start)."""
        for kind, resource in grants.items():
            self.grant(kind, resource, reason)

    def refusals(self, excesses: Iterable[object]) -> None:
        """Record each excess (``kind``, ``resource``, ``reason`` attributes) as denied."""
        for excess in excesses:
            self.deny(
                str(getattr(excess, "kind", "")),
                str(getattr(excess, "resource", "")),
                str(getattr(excess, "reason", excess)),
            )

    def denials(self) -> int:
        return self._log.denials(self.component)
