"""Files only this user (or root) could have put there: the checks a cache makes before
it trusts what it finds on disk.

A leaf (it imports nothing of airssys). The compile cache (native code) and the build
cache (components) both hold what airssys will execute, so both read through here:

* :func:`check_tree`: the cache directory, owned by this user or root and writable by
  nobody else; every directory above it (as given and resolved) the same, except that
  one writable by others is accepted when it is sticky (``/tmp``: others can add names
  there but not rename or remove ours);
* :func:`read_entry`: an entry is read only if it is a regular file (never through a
  symlink, never blocking on a FIFO) no larger than a bound, owned by this user or
  root and writable by nobody else; anything else standing there is reported, for the
  caller to replace;
* :func:`make_room`: a directory standing where an entry belongs is moved aside and
  removed (without following symlinks), so that the fresh entry can be renamed there.

Each refusal is built by the caller's ``refuse(path, why, fix)``: the error names the
path and the command that fixes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import shutil
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

__all__ = (
    "Entry",
    "Refuse",
    "check_directory",
    "check_tree",
    "make_room",
    "read_entry",
    "trusted_owner",
)

Refuse = Callable[[str, str, str], Exception]
"""``refuse(path, why, fix)``: the error to raise for an unsafe path."""

_OPEN_ENTRY: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OTHERS_WRITE: Final = stat.S_IWGRP | stat.S_IWOTH


def trusted_owner(uid: int) -> bool:
    """This user, or root."""
    return uid in (os.geteuid(), 0)


def check_directory(path: str, refuse: Refuse, *, private: bool) -> None:
    """Raise ``refuse(...)`` if a user other than this one (or root) could change what
    is in directory ``path``. Writable by others is accepted, when not ``private``,
    for a sticky directory."""
    st = os.stat(path)
    quoted = shlex.quote(path)
    if not trusted_owner(st.st_uid):
        raise refuse(
            path,
            f"it is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})",
            f"`chown {os.geteuid()} {quoted}`" + (f" and `chmod 700 {quoted}`" if private else ""),
        )
    if st.st_mode & _OTHERS_WRITE and (private or not st.st_mode & stat.S_ISVTX):
        raise refuse(
            path,
            f"other users can write it (mode {stat.filemode(st.st_mode)})",
            f"`chmod 700 {quoted}`" if private else f"`chmod go-w {quoted}`",
        )


def check_tree(directory: Path, refuse: Refuse) -> Path:
    """Check ``directory`` (private) and every directory a name on the way to it is
    looked up in, as given and resolved; its real path. OSError when it is missing or
    not a directory."""
    real = Path(os.path.realpath(directory))
    if not real.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(directory))
    check_directory(str(real), refuse, private=True)
    given = Path(os.path.abspath(directory))
    for ancestor in sorted({str(p) for p in (*given.parents, *real.parents)}):
        check_directory(ancestor, refuse, private=False)
    return real


Problem = Literal["", "unreadable", "is not a regular file", "too large"]


@dataclass(frozen=True, slots=True)
class Entry:
    """What :func:`read_entry` found: the bytes, or nothing (``problem`` empty: no entry;
    else what stands there instead, ``detail`` saying more)."""

    data: bytes | None
    problem: Problem = ""
    detail: str = ""
    mtime_ns: int = 0


def read_entry(path: Path, bound: int, refuse: Refuse) -> Entry:
    """The entry at ``path`` if it is a regular file of at most ``bound`` bytes that
    only this user or root could have written (else ``refuse(...)`` is raised)."""
    try:
        fd = os.open(path, _OPEN_ENTRY)
    except FileNotFoundError:
        return Entry(None)
    except OSError as exc:  # ELOOP: a symlink; anything else: unreadable
        return Entry(None, "unreadable", str(exc))
    try:
        st = os.fstat(fd)  # before any read: a directory or a FIFO is never read
        if not stat.S_ISREG(st.st_mode):
            return Entry(None, "is not a regular file", stat.filemode(st.st_mode))
        if not trusted_owner(st.st_uid) or st.st_mode & _OTHERS_WRITE:
            raise refuse(
                str(path),
                f"this entry is owned by uid {st.st_uid} with mode "
                f"{stat.filemode(st.st_mode)}, so another user could have written it",
                f"`rm {shlex.quote(str(path))}` (it is made again on the next use)",
            )
        if st.st_size > bound:  # refused by its size, before reading it
            return Entry(None, "too large", f"{st.st_size} bytes")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(bound + 1)
    finally:
        os.close(fd)
    if len(data) > bound:  # it grew while being read
        return Entry(None, "too large", f"more than {bound} bytes")
    return Entry(data, mtime_ns=st.st_mtime_ns)


def make_room(path: Path) -> None:
    """Clear a directory standing at ``path`` (not a symlink to one: a rename replaces
    that, as it does a file or a FIFO): it is renamed aside, then removed."""
    with contextlib.suppress(OSError):
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return
        aside = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}.old")
        os.rename(path, aside)
        shutil.rmtree(aside, ignore_errors=True)  # never follows a symlink inside
