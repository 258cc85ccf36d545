"""``airssys storage ls|export|import``: back up, migrate and inspect a system's storage.

Thin wrappers over :func:`airssys.storage.ls`, :func:`~airssys.storage.export` and
:func:`~airssys.storage.import_`. The storage is found as ``open_system`` finds it:
``--data-dir`` (default ``$AIRSSYS_DATA_DIR``, else the XDG data home), ``--system``
(the system's name, default ``airssys``) and ``--backend`` (sqlite or lmdb). ``ls``
and ``export`` refuse a storage that does not exist rather than create an empty one.
Files are JSON lines or msgpack (``--format``; by default from the file's suffix,
``.msgpack``/``.mpk`` for msgpack, else JSON lines); ``-`` is stdout or stdin. What
was done is said on stderr; ``ls`` writes its table to stdout
(tab-separated: namespace, keys, bytes).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ..errors import AirssysError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..storage import Backend

__all__ = ("storage_app",)

storage_app = typer.Typer(
    help="Back up, migrate and list a system's key-value storage.", no_args_is_help=True
)
_err = Console(stderr=True, soft_wrap=True)
_MSGPACK_SUFFIXES = (".msgpack", ".mpk")


class BackendName(StrEnum):
    SQLITE = "sqlite"
    LMDB = "lmdb"


class FormatName(StrEnum):
    JSONL = "jsonl"
    MSGPACK = "msgpack"


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where the storage lives (default: $AIRSSYS_DATA_DIR or XDG data)."
    ),
]
System = Annotated[str, typer.Option("--system", help="The system's name.")]
BackendOption = Annotated[
    BackendName, typer.Option("--backend", case_sensitive=False, help="The storage backend.")
]
FormatOption = Annotated[
    FormatName | None,
    typer.Option(
        "--format", case_sensitive=False, help="jsonl or msgpack (default: by the file's suffix)."
    ),
]


def _where(data_dir: Path | None, system: str, backend: BackendName) -> Path:
    from ..storage import default_data_dir

    root = data_dir if data_dir is not None else default_data_dir(create=False)
    suffix = ".sqlite3" if backend is BackendName.SQLITE else ".lmdb"
    return root / f"{system}{suffix}"


@contextmanager
def _opened(
    data_dir: Path | None, system: str, backend: BackendName, *, create: bool
) -> Iterator[Backend]:
    from ..storage import open_backend

    path = _where(data_dir, system, backend)
    if not create and not path.exists():
        raise AirssysError(
            f"no {backend.value} storage for system {system!r} at {path} (check --data-dir, "
            "--system and --backend)"
        )
    opened = open_backend(backend.value, data_dir, system=system)
    try:
        yield opened
    finally:
        opened.close()


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _format(given: FormatName | None, file: str) -> FormatName:
    if given is not None:
        return given
    return FormatName.MSGPACK if file.endswith(_MSGPACK_SUFFIXES) else FormatName.JSONL


@storage_app.command("ls")
def ls(
    data_dir: DataDir = None,
    system: System = "airssys",
    backend: BackendOption = BackendName.SQLITE,
) -> None:
    """List the namespaces (<component>/<bucket>) with their keys and bytes."""
    from .. import storage

    with _opened(data_dir, system, backend, create=False) as opened:
        rows = storage.ls(opened)
    sys.stdout.writelines(f"{row.namespace}\t{row.keys}\t{row.bytes}\n" for row in rows)
    sys.stdout.flush()
    keys, size = sum(r.keys for r in rows), sum(r.bytes for r in rows)
    _err.print(
        f"{_n(len(rows), 'namespace')}, {_n(keys, 'key')}, {_n(size, 'byte')}", highlight=False
    )


@storage_app.command("export")
def export(
    file: Annotated[str, typer.Argument(help="The file to write ('-': stdout).")],
    data_dir: DataDir = None,
    system: System = "airssys",
    backend: BackendOption = BackendName.SQLITE,
    format: FormatOption = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Only this namespace (repeatable)."),
    ] = None,
) -> None:
    """Write every key (or those of --namespace) to a file."""
    from .. import storage

    fmt = _format(format, file)
    with _opened(data_dir, system, backend, create=False) as opened:
        target = sys.stdout.buffer if file == "-" else file
        counts = storage.export(opened, target, format=fmt.value, namespaces=namespace or None)
        if file == "-":
            sys.stdout.flush()
    _err.print(
        f"exported {_n(counts.keys, 'key')} in {_n(counts.namespaces, 'namespace')} "
        f"({_n(counts.bytes, 'byte')}) "
        f"as {fmt.value} to {'stdout' if file == '-' else file}",
        highlight=False,
    )


@storage_app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="The file to read ('-': stdin).")],
    data_dir: DataDir = None,
    system: System = "airssys",
    backend: BackendOption = BackendName.SQLITE,
    format: FormatOption = None,
) -> None:
    """Merge a file's keys into the storage (keys in the file replace the same keys)."""
    from .. import storage

    fmt = _format(format, file)
    with _opened(data_dir, system, backend, create=True) as opened:
        source = sys.stdin.buffer if file == "-" else file
        counts = storage.import_(opened, source, format=fmt.value)
    _err.print(
        f"imported {_n(counts.keys, 'key')} in {_n(counts.namespaces, 'namespace')} "
        f"({_n(counts.bytes, 'byte')}) "
        f"from {'stdin' if file == '-' else file}",
        highlight=False,
    )
