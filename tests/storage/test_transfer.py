"""Export, import and ls: round trips between backends, and malformed files refused."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import msgpack
import pytest

from airssys.errors import StorageError
from airssys.storage import (
    FORMATS,
    Backend,
    MemoryBackend,
    NamespaceUsage,
    SqliteBackend,
    TransferCounts,
    Usage,
    export,
    import_,
    ls,
)

from .conftest import opener


def fill(backend: Backend) -> None:
    backend.set_many("/app/a/default", [(b"k%04d" % i, os.urandom(i % 50)) for i in range(2500)])
    backend.set("/app/a/cache", b"\x00\xffbinary key", b"\x00binary\xffvalue")
    backend.set("/app/b/default", "ünï".encode(), b"")
    backend.increment("shared/counters", b"hits", 41)


def snapshot(backend: Backend) -> dict[str, dict[bytes, bytes | None]]:
    out = {}
    for ns in backend.namespaces():
        keys = backend.list_keys(ns, limit=10_000).keys
        out[ns] = dict(zip(keys, backend.get_many(ns, keys), strict=True))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("target", ["memory", "sqlite", "lmdb"])
def test_export_then_import_into_a_fresh_backend(
    backend: Backend, tmp_path: Path, fmt: str, target: str
) -> None:
    fill(backend)
    path = tmp_path / f"backup.{fmt}"
    counts = export(backend, path, format=fmt)  # type: ignore[arg-type]
    total = sum(u.bytes for u in (backend.usage(ns) for ns in backend.namespaces()))
    assert counts == TransferCounts(4, 2503, total)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    fresh = opener(target, tmp_path / "fresh")()
    try:
        assert import_(fresh, path, format=fmt) == counts  # type: ignore[arg-type]
        assert snapshot(fresh) == snapshot(backend)
        assert ls(fresh) == ls(backend)
        for ns in backend.namespaces():
            assert fresh.usage(ns) == backend.usage(ns)
        assert fresh.group_usage("/app/a") == backend.group_usage("/app/a")
        assert fresh.increment("shared/counters", b"hits", 1) == 42
    finally:
        fresh.close()


def test_ls(backend: Backend) -> None:
    assert ls(backend) == []
    backend.set("/b/x", b"k", b"vv")
    backend.set_many("/a/x", [(b"k1", b"v"), (b"k2", b"v")])
    assert ls(backend) == [NamespaceUsage("/a/x", 2, 6), NamespaceUsage("/b/x", 1, 3)]


def test_export_chosen_namespaces_to_a_stream(backend: Backend) -> None:
    fill(backend)
    out = io.BytesIO()
    counts = export(backend, out, namespaces=["/app/a/cache", "/app/b/default", "nothing/here"])
    assert counts.namespaces == 2 and counts.keys == 2
    lines = out.getvalue().decode().splitlines()
    assert json.loads(lines[0]) == {"format": "airssys-storage", "version": 1}
    record = json.loads(lines[1])
    assert record["ns"] == "/app/a/cache"
    assert base64.b64decode(record["key"]) == b"\x00\xffbinary key"
    assert json.loads(lines[-1]) == {"end": True, "namespaces": 2, "keys": 2, "bytes": counts.bytes}
    into = MemoryBackend()
    assert import_(into, io.BytesIO(out.getvalue())) == counts
    assert into.namespaces() == ["/app/a/cache", "/app/b/default"]


def test_msgpack_records_are_raw_bytes(backend: Backend) -> None:
    backend.set("/a/x", b"\xffkey", b"\x00value")
    out = io.BytesIO()
    export(backend, out, format="msgpack")
    objects = list(msgpack.Unpacker(io.BytesIO(out.getvalue()), raw=False))
    assert objects[1] == ["/a/x", b"\xffkey", b"\x00value"]
    assert objects[-1]["end"] is True


def test_import_merges_over_existing_keys(backend: Backend) -> None:
    source = MemoryBackend()
    source.set_many("/a/x", [(b"k", b"new"), (b"j", b"1")])
    out = io.BytesIO()
    export(source, out)
    backend.set_many("/a/x", [(b"k", b"old"), (b"other", b"stays")])
    import_(backend, io.BytesIO(out.getvalue()))
    assert backend.get_many("/a/x", [b"k", b"j", b"other"]) == [b"new", b"1", b"stays"]
    assert backend.usage("/a/x") == Usage(4 + 2 + 10, 3)


def test_an_empty_backend_exports_an_importable_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    assert export(MemoryBackend(), path) == TransferCounts(0, 0, 0)
    assert import_(MemoryBackend(), path) == TransferCounts(0, 0, 0)


def _jsonl(*objects: object) -> io.BytesIO:
    return io.BytesIO(b"".join(json.dumps(o).encode() + b"\n" for o in objects))


HEADER = {"format": "airssys-storage", "version": 1}
GOOD = {"ns": "/a/x", "key": "aw==", "value": "dg=="}


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (io.BytesIO(b""), "empty"),
        (io.BytesIO(b"not json\n"), "not JSON"),
        (_jsonl({"format": "other"}), "header"),
        (_jsonl({"format": "airssys-storage", "version": 99}), "version 99"),
        (_jsonl(HEADER, {"ns": 1, "key": "", "value": ""}), "line 2"),
        (_jsonl(HEADER, {"ns": "/a/x", "key": "!!", "value": ""}), "not base64"),
        (_jsonl(HEADER, {"ns": "/a/x", "value": ""}), "not base64"),
        (_jsonl(HEADER, GOOD), "cut short"),
        (_jsonl(HEADER, GOOD, {"end": True, "namespaces": 1, "keys": 2, "bytes": 2}), "end record"),
    ],
)
def test_malformed_jsonl_is_refused(stream: io.BytesIO, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        import_(MemoryBackend(), stream)


def test_a_truncated_msgpack_export_is_refused() -> None:
    source = MemoryBackend()
    source.set_many("/a/x", [(b"%d" % i, b"v" * 100) for i in range(20)])
    out = io.BytesIO()
    export(source, out, format="msgpack")
    data = out.getvalue()
    for cut in (len(data) - 1, len(data) // 2):
        with pytest.raises(StorageError, match="cut short"):
            import_(MemoryBackend(), io.BytesIO(data[:cut]), format="msgpack")
    with pytest.raises(StorageError, match="header"):
        import_(MemoryBackend(), io.BytesIO(msgpack.packb([1, 2])), format="msgpack")
    bad = msgpack.packb(HEADER) + msgpack.packb(["/a/x", "text, not bin", b""])
    with pytest.raises(StorageError, match="not \\[namespace, key, value\\]"):
        import_(MemoryBackend(), io.BytesIO(bad), format="msgpack")


def test_bad_formats_and_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'jsonl' or 'msgpack'"):
        export(MemoryBackend(), io.BytesIO(), format="csv")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="cannot read"):
        import_(MemoryBackend(), tmp_path / "missing.jsonl")
    with pytest.raises(StorageError, match="cannot write"):
        export(MemoryBackend(), tmp_path / "no" / "such" / "dir.jsonl")


def test_a_failed_export_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    path.write_bytes(b"previous backup")
    store = SqliteBackend(tmp_path / "s.sqlite3")
    store.set("/a/x", b"k", b"v")
    store.close()  # the header is written, then reading the first page fails
    with pytest.raises(StorageError, match="closed"):
        export(store, path, namespaces=["/a/x"])
    assert path.read_bytes() == b"previous backup"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
