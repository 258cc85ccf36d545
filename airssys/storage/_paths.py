"""Where storage lives, and opening a backend by kind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal

from .._dirs import airssys_dir, make_private_dir
from ..errors import StorageError
from ..names import check_name
from ._backend import Backend
from ._lmdb import DEFAULT_MAP_SIZE, LmdbBackend
from ._memory import MemoryBackend
from ._sqlite import SqliteBackend

__all__ = ("KINDS", "BackendKind", "default_data_dir", "open_backend")

BackendKind = Literal["sqlite", "lmdb", "memory"]
KINDS: Final = ("sqlite", "lmdb", "memory")


def default_data_dir(*, create: bool = True) -> Path:
    """``$AIRSSYS_DATA_DIR``, else ``$XDG_DATA_HOME/airssys``, else
    ``~/.local/share/airssys``; created (mode 0700) unless ``create`` is false."""
    path = airssys_dir("data")
    return _make_data_dir(path) if create else path


def _make_data_dir(path: Path) -> Path:
    return make_private_dir(
        path, lambda exc: StorageError(f"cannot create the data directory {str(path)!r}: {exc}")
    )


def open_backend(
    kind: BackendKind | str = "sqlite",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    system: str = "airssys",
    durability: Literal["normal", "full", "none"] = "normal",
    map_size: int = DEFAULT_MAP_SIZE,
) -> Backend:
    """The storage of the system named ``system`` under ``data_dir`` (None:
    :func:`default_data_dir`): ``sqlite`` -> ``<data_dir>/<system>.sqlite3``,
    ``lmdb`` -> the directory ``<data_dir>/<system>.lmdb``, ``memory`` -> nothing on
    disk. ``durability`` as each backend documents (``"none"``: LMDB only);
    ``map_size``: LMDB only."""
    check_name(system, "system name")
    if kind == "memory":
        return MemoryBackend()
    if kind not in ("sqlite", "lmdb"):
        raise ValueError(f"storage backend is one of {', '.join(KINDS)}, got {kind!r}")
    root = default_data_dir() if data_dir is None else _make_data_dir(Path(data_dir))
    if kind == "sqlite":
        if durability == "none":
            raise ValueError("the sqlite backend's durability is 'normal' or 'full'")
        return SqliteBackend(root / f"{system}.sqlite3", durability=durability)
    return LmdbBackend(root / f"{system}.lmdb", durability=durability, map_size=map_size)
