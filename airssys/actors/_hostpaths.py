"""What admitted components hold on the host, held against each other at every admission.

Two rules, checked whenever any component is admitted, against every component
admitted before (and still held) and within the new one:

* **Mounts never nest inside a writable mount.** Whoever can write a directory can
  rename what is in it away and put a symlink or another directory in its place; a
  mount inside it would then be whatever they chose. So no mount lies strictly inside
  a mount some component can write (its own included), and a writable mount never
  contains another mount. The same directory mounted twice is not nesting.
* **A granted command cannot be rewritten by a component, nor by another user.** No
  process grant's command, as named or as resolved, lies under a writable mount; the
  command and every directory above it belong to root or to this process's user and
  nobody else can write them (a sticky directory, like ``/tmp``, is accepted above
  it: others cannot rename or remove what is not theirs there).

Holdings are process-wide (every system in a process shares one file system). An
admission's holding lives as long as its :class:`~airssys.actors._loading.Admission`:
when the last reference to that goes, so does the holding (before a refusal that
involves another component, unreachable admissions are collected and the check runs
once more).
"""

from __future__ import annotations

import gc
import os
import stat
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from .._private_files import check_directory, trusted_owner
from ..errors import PolicyViolation

__all__ = ("HOLDINGS", "Held", "Holding", "Holdings")

_OTHERS_WRITE: Final = stat.S_IWGRP | stat.S_IWOTH


@dataclass(frozen=True, slots=True)
class Held:
    """One mount: its real host path (absolute, normal), its guest path, writable or not."""

    host: str
    guest: str
    writable: bool


@final
class Holding:
    """One admission's mounts and granted commands (a weakly held entry)."""

    __slots__ = ("__weakref__", "commands", "label", "mounts")

    def __init__(self, label: str, mounts: Iterable[Held], commands: Iterable[str]) -> None:
        self.label = label
        self.mounts = tuple(mounts)
        self.commands = tuple(commands)

    def __repr__(self) -> str:
        return f"<Holding {self.label}: {len(self.mounts)} mounts, {len(self.commands)} commands>"


def _within(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it (both absolute and normal)."""
    return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)


def _inside(path: str, root: str) -> bool:
    return path != root and _within(path, root)


def _refuse(path: str, why: str, fix: str) -> PolicyViolation:
    return PolicyViolation(f"{path}: {why} (fix: {fix})")


def command_problem(command: str) -> str | None:
    """Why ``command`` could be rewritten by someone but root or this user (None: it
    cannot). Checks every directory above it as named and as resolved, and the file."""
    real = os.path.realpath(command)
    try:
        for directory in Path(command).parents:  # as named: symlinks are links, not dirs
            st = os.lstat(directory)
            if stat.S_ISLNK(st.st_mode):
                if not trusted_owner(st.st_uid):
                    return f"the symlink {directory} on its way belongs to uid {st.st_uid}"
                continue
            check_directory(str(directory), _refuse, private=False)
        for directory in Path(real).parents:
            check_directory(str(directory), _refuse, private=False)
    except PolicyViolation as exc:
        return f"a directory above it is not only root's or this user's: {exc}"
    except FileNotFoundError:
        return None  # a missing directory: nothing to run, nothing to plant in ours
    except OSError as exc:
        return f"a directory above it cannot be checked: {exc}"
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"it cannot be checked: {exc}"
    if not trusted_owner(st.st_uid) or st.st_mode & _OTHERS_WRITE:
        return (
            f"{real} is owned by uid {st.st_uid} with mode {stat.filemode(st.st_mode)}: "
            "another user could rewrite it"
        )
    return None


def _under_writable(command: str, mounts: Iterable[tuple[Held, str]]) -> str | None:
    named, real = os.path.abspath(command), os.path.realpath(command)
    for held, label in mounts:
        if held.writable and (_within(named, held.host) or _within(real, held.host)):
            return (
                f"it lies under the writable mount {held.guest} ({held.host}) of "
                f"{label}: a component could rewrite it"
            )
    return None


class Holdings:
    """Every live admission's holding; :meth:`admit` holds a new one to them."""

    def __init__(self) -> None:
        self._live: weakref.WeakSet[Holding] = weakref.WeakSet()
        self._lock = threading.Lock()

    def admit(self, new: Holding) -> list[tuple[str, str, str]]:
        """Every way ``new`` breaks a rule, as ``(kind, resource, reason)``; when none,
        ``new`` is held from now on (checked and added at once)."""
        for attempt in range(2):
            with self._lock:
                others = list(self._live)
                problems = self._problems(new, others)
                if not problems:
                    self._live.add(new)
                    return problems
            if attempt or not others:
                break
            del others
            # a stopped component's admission may wait in a reference cycle: collect it
            # (only on this rare path) and look again, so it does not refuse the new one
            gc.collect()
        return problems

    @staticmethod
    def _problems(new: Holding, others: list[Holding]) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        held = [(m, h.label) for h in others for m in h.mounts]
        own = [(m, new.label) for m in new.mounts]
        for mount in new.mounts:
            for other, label in (*held, *own):
                if other is not mount and other.writable and _inside(mount.host, other.host):
                    reason = (
                        f"{mount.host} lies inside the writable mount {other.guest} "
                        f"({other.host}) of {label}: a component that can write there can "
                        "put anything in its place"
                    )
                    out.append(("files", mount.guest, reason))
            for other, label in held:  # (within ``new``, the inner mount's check says it)
                if mount.writable and _inside(other.host, mount.host):
                    reason = (
                        f"the writable {mount.host} holds the mount {other.guest} "
                        f"({other.host}) of {label}: this component could put anything in "
                        "its place"
                    )
                    out.append(("files", mount.guest, reason))
        for command in new.commands:
            problem = _under_writable(command, (*held, *own)) or command_problem(command)
            if problem is not None:
                out.append(("process", command, problem))
        for holding in others:
            for command in holding.commands:
                for mount, _ in own:
                    problem = _under_writable(command, [(mount, new.label)])
                    if problem is not None:
                        reason = f"{command}, granted to {holding.label}: {problem}"
                        out.append(("files", mount.guest, reason))
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)


HOLDINGS: Final = Holdings()
"""The process's holdings."""
