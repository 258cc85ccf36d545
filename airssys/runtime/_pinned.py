"""A mounted directory pinned to the one admitted.

Admission resolves a ``files`` grant's host directory once and holds its real path
to the policy. :class:`PinnedDir` then opens that path walking it one component at a
time from ``/`` with ``O_DIRECTORY | O_NOFOLLOW`` (a symlink anywhere on the way
fails the open) and keeps the descriptor for as long as the admission lives. At
every instantiation (a start, a restart):

1. :meth:`PinnedDir.verify` walks the path again the same way and compares device
   and inode with the kept descriptor's, and asks the policy whether the path is
   still under one of its roots. A difference (the directory was moved away, or
   another directory or a symlink now stands at its path) refuses the start with
   :class:`~airssys.errors.MountChanged`, reported to the audit hook first;
2. wasmtime is handed ``/proc/self/fd/N``: it opens the kept directory itself,
   whatever stands at the path by then, so nothing is checked on one object and
   opened on another.

A writable mount is the component's to change, and WASI lets it make symlinks there
(refusing only to follow one out of the mount). Such a link stays on the host, where
host tools follow it, so :meth:`PinnedDir.sweep` removes every symlink under the
mount that resolves outside it, each reported to the audit hook; the instance calls
it when it closes (a stop, and the old instance at a restart). The sweep is bounded
(:data:`SWEEP_ENTRIES` entries, :data:`SWEEP_DEPTH` levels per mount); past a bound
it stops and reports that it did.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Final, final

from .._logging import get_logger
from ..errors import MountChanged

__all__ = ("SWEEP_DEPTH", "SWEEP_ENTRIES", "PinnedDir", "Report")

Report = Callable[[str, str, str], None]
"""``report(component, resource, reason)``: an audit record (a denial, kind files)."""

SWEEP_ENTRIES: Final = 100_000
"""Directory entries one sweep of one mount looks at, at most."""
SWEEP_DEPTH: Final = 64
"""Directory levels below the mount one sweep descends, at most."""

_PATH_FLAG: Final = getattr(os, "O_PATH", os.O_RDONLY)  # no read permission needed to pin
_WALK: Final = _PATH_FLAG | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LIST: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PROC_FD: Final = "/proc/self/fd"
_HAS_PROC_FD: Final = os.path.isdir(_PROC_FD)
_log = get_logger("airssys.security")


def _walk(path: str) -> int:
    """A descriptor of directory ``path`` (absolute, normal), opened one component at a
    time without following any symlink: OSError when one stands on the way."""
    parts = Path(path).parts
    if not parts or parts[0] != os.sep or any(p in (".", "..") for p in parts[1:]):
        raise NotADirectoryError(f"{path!r} is not an absolute, normal path")
    fd = os.open(os.sep, _WALK)
    try:
        for part in parts[1:]:
            inner = os.open(part, _WALK, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


@final
class PinnedDir:
    """A host directory opened once, without following symlinks, and kept open."""

    __slots__ = (
        "__weakref__",
        "_allowed",
        "_closer",
        "_fd",
        "_lock",
        "_report",
        "dev",
        "guest",
        "ino",
        "path",
        "writable",
    )

    def __init__(
        self,
        path: str,
        guest: str,
        writable: bool = False,
        *,
        allowed: Callable[[str], bool] | None = None,
        report: Report | None = None,
    ) -> None:
        """Pin directory ``path`` (its real path: OSError when a symlink is on the way).
        ``allowed(path)``: is the path still under a root of the policy (checked again
        at each :meth:`verify`). ``report``: called for each refusal and removal."""
        fd = _walk(path)
        st = os.fstat(fd)
        self.path = path
        self.guest = guest
        self.writable = writable
        self.dev, self.ino = st.st_dev, st.st_ino
        self._fd = fd
        self._allowed = allowed
        self._report = report
        self._lock = threading.Lock()  # one sweep of a mount at a time
        self._closer = weakref.finalize(self, os.close, fd)

    # --- every instantiation -----------------------------------------------------------

    def verify(self, component: str) -> str:
        """The path wasmtime opens (``/proc/self/fd/N``: the kept directory), once the
        admitted path is checked to still name it; MountChanged (reported) when not."""
        reason = self._changed()
        if reason is not None:
            self._tell(component, self.guest, reason)
            excess = f"files {self.guest}: {reason}"
            raise MountChanged(
                f"component {component!r} does not start: its mount {self.guest} is not "
                f"the directory admitted: {reason}",
                component=component,
                excesses=(excess,),
            )
        return f"{_PROC_FD}/{self._fd}" if _HAS_PROC_FD else self.path

    def _changed(self) -> str | None:
        if not self._closer.alive:
            return "its descriptor was closed"
        try:
            fd = _walk(self.path)
        except OSError as exc:
            return (
                f"{self.path} cannot be opened without following a symlink any more "
                f"({exc.strerror or exc})"
            )
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return (
                f"another directory now stands at {self.path} (device {st.st_dev} inode "
                f"{st.st_ino}, admitted: device {self.dev} inode {self.ino})"
            )
        if self._allowed is not None and not self._allowed(self.path):
            return f"{self.path} is under no root of the policy"
        return None

    # --- when an instance closes -------------------------------------------------------

    def sweep(self, component: str) -> int:
        """Remove the symlinks under this (writable) mount that resolve outside it, each
        reported; how many. Every link is judged first, then the escaping ones go (a
        link through another is judged by where the chain led). Bounded by
        SWEEP_ENTRIES and SWEEP_DEPTH (reported when hit)."""
        if not self.writable or not self._closer.alive:
            return 0
        with self._lock:
            base = self._where()
            if base is None:  # removed from the host: nothing left to trap anyone
                return 0
            escaping = self._escaping(component, base)
            return sum(self._remove(component, rel, name, link) for rel, name, link in escaping)

    def _where(self) -> str | None:
        """The kept directory's real path now (it may have been moved since)."""
        if not _HAS_PROC_FD:
            return self.path
        try:
            where = os.readlink(f"{_PROC_FD}/{self._fd}")
        except OSError:
            return None
        return where if os.path.isabs(where) and os.path.isdir(where) else None

    def _escaping(self, component: str, base: str) -> list[tuple[tuple[str, ...], str, str]]:
        """Every symlink under the mount resolving outside it: (directory, name, link)."""
        out: list[tuple[tuple[str, ...], str, str]] = []
        prefix = base.rstrip(os.sep) + os.sep
        looked = 0
        try:
            top = os.open(".", _LIST, dir_fd=self._fd)
        except OSError:
            return out
        stack: list[tuple[int, tuple[str, ...]]] = [(top, ())]
        try:
            while stack:
                fd, rel = stack.pop()
                try:
                    with os.scandir(fd) as entries:
                        found = [
                            (e.name, e.is_symlink(), e.is_dir(follow_symlinks=False))
                            for e in entries
                        ]
                except OSError:
                    found = []
                for name, is_link, is_dir in found:
                    looked += 1
                    if looked > SWEEP_ENTRIES:
                        self._tell(
                            component,
                            self.guest,
                            f"the symlink sweep stopped after {SWEEP_ENTRIES} entries: "
                            "links further in were not looked at",
                        )
                        return out
                    if is_link:
                        target = os.path.realpath(os.path.join(base, *rel, name))
                        if target != base and not target.startswith(prefix):
                            with contextlib.suppress(OSError):
                                out.append((rel, name, os.readlink(name, dir_fd=fd)))
                    elif is_dir and len(rel) < SWEEP_DEPTH:
                        with contextlib.suppress(OSError):
                            stack.append((os.open(name, _LIST, dir_fd=fd), (*rel, name)))
                    elif is_dir:
                        self._tell(
                            component,
                            self._guest_path(rel, name),
                            f"the symlink sweep does not descend past {SWEEP_DEPTH} levels",
                        )
                os.close(fd)
        finally:
            for fd, _ in stack:
                os.close(fd)
        return out

    def _remove(self, component: str, rel: tuple[str, ...], name: str, link: str) -> int:
        """Unlink symlink ``name`` in ``rel`` if it is still the link judged (its
        directory reached from the kept one without following any symlink)."""
        fd = os.dup(self._fd)
        try:
            for part in rel:
                inner = os.open(part, _WALK, dir_fd=fd)
                os.close(fd)
                fd = inner
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode) or os.readlink(name, dir_fd=fd) != link:
                return 0  # changed meanwhile: judged again at the next sweep
            os.unlink(name, dir_fd=fd)
        except OSError:
            return 0
        finally:
            os.close(fd)
        self._tell(
            component,
            self._guest_path(rel, name),
            f"a symlink to {link!r} left in a writable mount resolves outside it; removed",
        )
        return 1

    def _guest_path(self, rel: tuple[str, ...], name: str) -> str:
        return "/".join((self.guest.rstrip("/"), *rel, name))

    def _tell(self, component: str, resource: str, reason: str) -> None:
        _log.warning("mount check", component=component, resource=resource, reason=reason)
        if self._report is not None:
            try:
                self._report(component, resource, reason)
            except Exception as exc:  # a closed audit log must not fail a stop
                _log.warning("audit of a mount check failed", error=str(exc))

    # --- ownership ---------------------------------------------------------------------

    def close(self) -> None:
        """Release the descriptor (later verifications refuse). Idempotent."""
        self._closer()

    @property
    def closed(self) -> bool:
        return not self._closer.alive

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd {self._fd}"
        return f"<PinnedDir {self.path} at {self.guest} ({state})>"
