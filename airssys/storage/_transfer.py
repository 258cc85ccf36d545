"""Backup and migration: export a backend to a file, import one into a backend, list.

Two formats, both a header then one record per key, namespaces and keys ascending:

* ``jsonl``: JSON lines. ``{"format": "airssys-storage", "version": 1}``, then
  ``{"ns": "<namespace>", "key": "<base64>", "value": "<base64>"}`` per key, then
  ``{"end": true, "namespaces": N, "keys": N, "bytes": N}``.
* ``msgpack``: a stream of msgpack objects. The same header map, then
  ``[namespace, key, value]`` per key (key and value raw ``bin``), then the same
  end map.

The end record makes a truncated file an error instead of a smaller backup (an
import finds out at the end: the batches before are written; re-run it with the
whole file).

An export is not a snapshot: it pages through each namespace, so writes made while
it runs may or may not be in it (stop the system for an exact copy). An import merges:
keys in the file replace the same keys in the backend, others stay; it writes in
batches of one transaction each, without quotas (it is the operator's tool), so a
failed import can be re-run. The CLI (``airssys storage export|import|ls``) wraps
these functions.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Final, Literal, NamedTuple

import msgpack

from ..errors import StorageError
from ._backend import Backend

__all__ = ("FORMATS", "Format", "NamespaceUsage", "TransferCounts", "export", "import_", "ls")

Format = Literal["jsonl", "msgpack"]
FORMATS: Final = ("jsonl", "msgpack")
MAGIC: Final = "airssys-storage"
VERSION: Final = 1
BATCH: Final = 1000  # keys read, or written, per transaction


class TransferCounts(NamedTuple):
    """What an export wrote or an import read: namespaces, keys, and bytes (keys
    plus values)."""

    namespaces: int
    keys: int
    bytes: int


class NamespaceUsage(NamedTuple):
    """One line of :func:`ls`."""

    namespace: str
    keys: int
    bytes: int


Target = str | os.PathLike[str] | IO[bytes]


def ls(backend: Backend) -> list[NamespaceUsage]:
    """Every namespace holding a key, with its key count and size, sorted."""
    out = []
    for namespace in backend.namespaces():
        usage = backend.usage(namespace)
        out.append(NamespaceUsage(namespace, usage.keys, usage.bytes))
    return out


def _check_format(format: str) -> Format:
    if format == "jsonl":
        return "jsonl"
    if format == "msgpack":
        return "msgpack"
    raise ValueError(f"storage format is 'jsonl' or 'msgpack', got {format!r}")


def _records(backend: Backend, namespaces: Iterable[str]) -> Iterator[tuple[str, bytes, bytes]]:
    for namespace in namespaces:
        cursor: bytes | None = None
        while True:
            page = backend.list_keys(namespace, cursor=cursor, limit=BATCH)
            values = backend.get_many(namespace, page.keys)
            for key, value in zip(page.keys, values, strict=True):
                if value is not None:  # deleted since the page was read
                    yield namespace, key, value
            if page.cursor is None:
                break
            cursor = page.cursor


def export(
    backend: Backend,
    out: Target,
    *,
    format: Format = "jsonl",
    namespaces: Iterable[str] | None = None,
) -> TransferCounts:
    """Write every key of ``namespaces`` (None: all) to ``out``: a path (written to a
    new private temporary file beside it, made with ``O_EXCL``, then renamed into
    place, mode 0600) or a binary file."""
    fmt = _check_format(format)
    chosen = sorted(set(backend.namespaces() if namespaces is None else namespaces))
    if isinstance(out, str | os.PathLike):
        path = Path(out)
        try:
            # a private name made here (O_EXCL, mode 0600): nothing planted is followed
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise StorageError(f"cannot write the export {str(path)!r}: {exc}") from exc
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                counts = _write(backend, f, fmt, chosen)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(f"cannot write the export {str(path)!r}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return counts
    return _write(backend, out, fmt, chosen)


def _write(backend: Backend, f: IO[bytes], fmt: Format, chosen: list[str]) -> TransferCounts:
    header = {"format": MAGIC, "version": VERSION}
    seen: set[str] = set()
    keys = size = 0
    if fmt == "jsonl":
        f.write(json.dumps(header).encode() + b"\n")
        for namespace, key, value in _records(backend, chosen):
            record = {
                "ns": namespace,
                "key": base64.b64encode(key).decode("ascii"),
                "value": base64.b64encode(value).decode("ascii"),
            }
            f.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            seen.add(namespace)
            keys += 1
            size += len(key) + len(value)
    else:
        packer = msgpack.Packer(use_bin_type=True)
        f.write(packer.pack(header))
        for namespace, key, value in _records(backend, chosen):
            f.write(packer.pack([namespace, key, value]))
            seen.add(namespace)
            keys += 1
            size += len(key) + len(value)
    counts = TransferCounts(len(seen), keys, size)
    end = {"end": True, **counts._asdict()}
    f.write(json.dumps(end).encode() + b"\n" if fmt == "jsonl" else packer.pack(end))
    return counts


def import_(backend: Backend, source: Target, *, format: Format = "jsonl") -> TransferCounts:
    """Read an export (a path or a binary file) into ``backend``, replacing the keys it
    holds; StorageError naming the record if the file is malformed (the batches before
    it are written)."""
    fmt = _check_format(format)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            f = path.open("rb")
        except OSError as exc:
            raise StorageError(f"cannot read the import {str(path)!r}: {exc}") from exc
        with f:
            return _read(backend, f, fmt, str(path))
    return _read(backend, source, fmt, getattr(source, "name", "<stream>"))


def _read(backend: Backend, f: IO[bytes], fmt: Format, where: str) -> TransferCounts:
    records = _jsonl_records(f, where) if fmt == "jsonl" else _msgpack_records(f, where)
    seen: set[str] = set()
    keys = size = 0
    batch: list[tuple[bytes, bytes]] = []
    batch_ns = ""
    for record in records:
        if isinstance(record, dict):  # the end record: it must count what came
            counts = TransferCounts(len(seen), keys, size)
            if any(record.get(name) != value for name, value in counts._asdict().items()):
                raise StorageError(
                    f"{where}: the end record counts {record}, the file holds {counts}: "
                    "not what was exported"
                )
            if batch:
                backend.set_many(batch_ns, batch)
            return counts
        namespace, key, value = record
        if batch and (namespace != batch_ns or len(batch) >= BATCH):
            backend.set_many(batch_ns, batch)
            batch = []
        batch_ns = namespace
        batch.append((key, value))
        seen.add(namespace)
        keys += 1
        size += len(key) + len(value)
    if batch:
        backend.set_many(batch_ns, batch)
    raise StorageError(
        f"{where}: the file ends without its end record, after {keys} keys: it was cut "
        "short (what it held was imported; import the whole file again)"
    )


_Record = tuple[str, bytes, bytes] | dict[str, Any]


def _bad(where: str, record: int, problem: str) -> StorageError:
    return StorageError(f"{where}: record {record}: {problem}; not an airssys storage export?")


def _header(value: object, where: str) -> None:
    if not isinstance(value, dict) or value.get("format") != MAGIC:
        raise _bad(where, 0, f"the header is not {{'format': {MAGIC!r}, ...}}")
    if value.get("version") != VERSION:
        raise StorageError(
            f"{where}: export version {value.get('version')!r}; this airssys reads {VERSION}"
        )


class _Undecodable(Exception):
    """An object its encoding cannot read (the message says why)."""


def _framed(
    objects: Iterator[tuple[str, Any]],
    where: str,
    record: Callable[[Any, int, str], tuple[str, bytes, bytes]],
) -> Iterator[_Record]:
    """The records of an export, whatever its encoding: ``objects`` yields each decoded
    object with what names it in an error (``line 3``), or raises _Undecodable; the
    first is the header, a ``{"end": true}`` object ends the export (and is yielded),
    ``record`` reads each other one."""
    number = 0
    try:
        for place, obj in objects:
            if number == 0:
                _header(obj, where)
            elif isinstance(obj, dict) and obj.get("end") is True:
                yield obj
                return
            else:
                yield record(obj, number, place)
            number += 1
    except _Undecodable as exc:
        raise _bad(where, number, str(exc)) from exc.__cause__
    if number == 0:
        raise _bad(where, 0, "the file is empty")


def _jsonl_records(f: IO[bytes], where: str) -> Iterator[_Record]:
    def objects() -> Iterator[tuple[str, Any]]:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise _Undecodable(f"line {lineno} is not JSON ({exc})") from exc
            yield f"line {lineno}", obj

    def record(obj: Any, number: int, place: str) -> tuple[str, bytes, bytes]:
        if not isinstance(obj, dict) or not isinstance(obj.get("ns"), str):
            raise _bad(where, number, f'{place} is not {{"ns", "key", "value"}}')
        try:
            key = base64.b64decode(obj["key"], validate=True)
            value = base64.b64decode(obj["value"], validate=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise _bad(where, number, f"{place}: key or value is not base64") from exc
        return obj["ns"], key, value

    return _framed(objects(), where, record)


def _msgpack_records(f: IO[bytes], where: str) -> Iterator[_Record]:
    def objects() -> Iterator[tuple[str, Any]]:
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=2**31 - 1)
        while True:
            try:
                obj = unpacker.unpack()
            except msgpack.OutOfData:
                return
            except (ValueError, msgpack.UnpackException) as exc:
                raise _Undecodable(f"not msgpack ({exc})") from exc
            yield "", obj

    def record(obj: Any, number: int, _place: str) -> tuple[str, bytes, bytes]:
        if (
            not isinstance(obj, list)
            or len(obj) != 3
            or not isinstance(obj[0], str)
            or not isinstance(obj[1], bytes)
            or not isinstance(obj[2], bytes)
        ):
            raise _bad(where, number, "not [namespace, key, value]")
        return obj[0], obj[1], obj[2]

    return _framed(objects(), where, record)
