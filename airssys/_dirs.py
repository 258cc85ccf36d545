"""Where airssys keeps its files (the one place for the XDG directory rules), and
how it replaces one safely.

A leaf (it imports nothing of airssys). Each kind of directory is, the first that is
set wins:

* ``config`` (settings, trusted keys, the signing key): ``$AIRSSYS_CONFIG_DIR``, else
  ``$XDG_CONFIG_HOME/airssys``, else ``~/.config/airssys``;
* ``data`` (key-value storage, the component store): ``$AIRSSYS_DATA_DIR``, else
  ``$XDG_DATA_HOME/airssys``, else ``~/.local/share/airssys``;
* ``cache`` (compiled components, Python builds): ``$AIRSSYS_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/airssys``, else ``~/.cache/airssys``;
* the nodes' run directories: ``$XDG_RUNTIME_DIR/airssys``, else
  ``/tmp/airssys-<uid>`` (:func:`run_base`).

An empty variable counts as unset. The XDG base directory spec: a relative
``$XDG_*`` path is invalid and is ignored (the default is used); an ``$AIRSSYS_*``
override is taken as given. Nothing here creates a directory unless asked
(:func:`make_private_dir`).

:func:`write_atomic` replaces a file whole or not at all: a temporary file beside
it, synced, given its mode, renamed over it, and the rename synced.
:func:`hold_lock` takes an exclusive lock file holding the holder's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Literal

__all__ = (
    "Kind",
    "airssys_dir",
    "fsync_dir",
    "hold_lock",
    "make_private_dir",
    "override_var",
    "run_base",
    "write_atomic",
    "xdg_dir",
)

Kind = Literal["config", "data", "cache"]

_XDG: Final[Mapping[str, tuple[str, str]]] = {
    "config": ("XDG_CONFIG_HOME", ".config"),
    "data": ("XDG_DATA_HOME", ".local/share"),
    "cache": ("XDG_CACHE_HOME", ".cache"),
}


def override_var(kind: Kind) -> str:
    """The variable that names the directory outright: ``AIRSSYS_<KIND>_DIR``."""
    return f"AIRSSYS_{kind.upper()}_DIR"


def xdg_dir(kind: Kind, environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_<KIND>_HOME/airssys`` when that is an absolute path, else the XDG default
    under the home directory (``~/.config``, ``~/.local/share``, ``~/.cache``)."""
    env = os.environ if environ is None else environ
    var, fallback = _XDG[kind]
    value = env.get(var)
    base = Path(value) if value and os.path.isabs(value) else Path.home() / fallback
    return base / "airssys"


def airssys_dir(kind: Kind, environ: Mapping[str, str] | None = None) -> Path:
    """``$AIRSSYS_<KIND>_DIR`` when set, else :func:`xdg_dir`; not created."""
    env = os.environ if environ is None else environ
    value = env.get(override_var(kind))
    return Path(value) if value else xdg_dir(kind, env)


def run_base(environ: Mapping[str, str] | None = None) -> Path:
    """The directory nodes' run dirs live under by default: ``$XDG_RUNTIME_DIR/airssys``
    when that is an absolute path, else ``/tmp/airssys-<uid>``."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "airssys"
    return Path("/tmp") / f"airssys-{os.getuid()}"


def make_private_dir(path: Path, error: Callable[[OSError], Exception]) -> Path:
    """Create ``path`` (mode 0700) and any missing parents; ``error(exc)`` is raised
    (from the OSError) when that fails. Returns ``path``."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise error(exc) from exc
    return path


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` (file mode ``mode``) via a synced temporary file
    beside it and a rename; the temporary file is removed on any failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename made durable where the OS allows it
        fsync_dir(path.parent)


def hold_lock(path: Path) -> int | str:
    """Take ``path`` as an exclusive lock (``flock``) and write our pid into it: the
    descriptor, to close to release it; or, when someone holds it, the holder's pid
    (as written in the file, or ``"unknown"``). OSError when it cannot be opened.

    ``flock`` locks belong to an open file, so a second holder in the same process is
    refused like another process; the kernel releases a killed process's lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        return holder
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
