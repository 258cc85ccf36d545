"""Key-value storage: get and set of 256 B values, p50 and p99, per backend.

Sections (one row per backend each; more sections can be appended to SECTIONS):

* ``direct``: the backend's own ``get``/``set`` from Python, no quota (memory,
  sqlite, lmdb at their default durability; sqlite_full and lmdb_none for the
  other durability settings, on fewer operations);
* ``bucket``: the same through ``KeyValue.open(...)``'s Bucket, with a component's
  grants and a quota, as a host call reaches it (minus the wasm boundary).

Each operation is timed alone (perf_counter_ns), over a keyspace of 1,000 keys
filled beforehand, keys drawn at random; sets overwrite. GC is off while timing.

  python benches/bench_storage.py [--quick] [--json]

JSON: ``{"direct": {"sqlite": {"get_p50_us", "get_p99_us", "set_p50_us",
"set_p99_us", "ops"}, ...}, "bucket": {...}}``.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys.errors import StorageError
from airssys.security import Grants
from airssys.storage import Backend, KeyValue, LmdbBackend, MemoryBackend, SqliteBackend
from benches._common import emit_json, machine, parse_args, table

VALUE_SIZE = 256
KEYSPACE = 1000
# aims for the sqlite default, from the host-services issue (us)
AIMS = {"get_p50_us": 50.0, "get_p99_us": 1000.0, "set_p50_us": 100.0, "set_p99_us": 5000.0}


@dataclass(frozen=True, slots=True)
class Settings:
    ops: int  # timed operations of each kind, per backend
    durable_ops: int  # the same, for the settings that fsync per write
    workdir: Path


@dataclass(frozen=True, slots=True)
class Row:
    """One backend in one section: the latency of each operation, in ns per sample."""

    section: str
    backend: str
    get_ns: list[int]
    set_ns: list[int]

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for op, samples in (("get", self.get_ns), ("set", self.set_ns)):
            out[f"{op}_p50_us"] = percentile(samples, 0.50) / 1e3
            out[f"{op}_p99_us"] = percentile(samples, 0.99) / 1e3
        out["ops"] = len(self.get_ns)
        return out


Section = Callable[[Settings], list[Row]]


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * q))])


def time_ops(
    get: Callable[[Any], object],
    put: Callable[[Any, bytes], object],
    n: int,
    *,
    text_keys: bool = False,
) -> tuple[list[int], list[int]]:
    """Time ``n`` sets then ``n`` gets on random keys of the (filled) keyspace
    (``text_keys``: as str, for a Bucket)."""
    rng = random.Random(42)
    raw = [b"key-%06d" % rng.randrange(KEYSPACE) for _ in range(n)]
    keys: list[Any] = [k.decode() for k in raw] if text_keys else raw
    # every set writes a value unlike the one it replaces: SQLite skips writing a row
    # rewritten unchanged (no page dirtied, nothing to commit or sync)
    base = os.urandom(VALUE_SIZE)
    values = [i.to_bytes(8, "big") + base[8:] for i in range(n)]
    for i, key in enumerate(keys[:200]):  # warm up: statement caches, pages
        put(key, values[-1 - i])
        get(key)
    clock = time.perf_counter_ns
    set_ns: list[int] = []
    get_ns: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for key, value in zip(keys, values, strict=True):
            t0 = clock()
            put(key, value)
            set_ns.append(clock() - t0)
        for key in keys:
            t0 = clock()
            get(key)
            get_ns.append(clock() - t0)
    finally:
        gc.enable()
    return get_ns, set_ns


def fill(backend: Backend, namespace: str) -> None:
    value = os.urandom(VALUE_SIZE)
    backend.set_many(namespace, [(b"key-%06d" % i, value) for i in range(KEYSPACE)])


# --- the backends ---------------------------------------------------------------------


def _lmdb_available() -> bool:
    try:
        import lmdb  # noqa: F401
    except ImportError:
        return False
    return True


def backends(settings: Settings) -> list[tuple[str, Callable[[Path], Backend], int]]:
    """``(name, open(directory), operations)`` for every backend this machine has."""
    out: list[tuple[str, Callable[[Path], Backend], int]] = [
        ("memory", lambda d: MemoryBackend(), settings.ops),
        ("sqlite", lambda d: SqliteBackend(d / "s.sqlite3"), settings.ops),
        (
            "sqlite_full",
            lambda d: SqliteBackend(d / "s.sqlite3", durability="full"),
            settings.durable_ops,
        ),
    ]
    if _lmdb_available():
        out += [
            ("lmdb", lambda d: LmdbBackend(d / "s.lmdb", map_size=256 << 20), settings.ops),
            (
                "lmdb_none",
                lambda d: LmdbBackend(d / "s.lmdb", map_size=256 << 20, durability="none"),
                settings.ops,
            ),
        ]
    return out


@contextmanager
def opened(settings: Settings, name: str, open_: Callable[[Path], Backend]) -> Iterator[Backend]:
    directory = settings.workdir / name
    directory.mkdir()
    backend = open_(directory)
    try:
        yield backend
    finally:
        backend.close()


# --- sections -----------------------------------------------------------------------------


def direct_section(settings: Settings) -> list[Row]:
    """The backends' own get/set, no quota."""
    rows = []
    ns = "/bench/direct/default"
    for name, open_, n in backends(settings):
        with opened(settings, f"direct-{name}", open_) as backend:
            fill(backend, ns)
            get_ns, set_ns = time_ops(partial(backend.get, ns), partial(backend.set, ns), n)
        rows.append(Row("direct", name, get_ns, set_ns))
    return rows


def bucket_section(settings: Settings) -> list[Row]:
    """Through the service: grants checked at open, a 10 MiB / 10,000-key quota."""
    rows = []
    checks = Grants(buckets=("default",)).compile("/bench/bucket")
    for name, open_, n in backends(settings):
        if name.endswith(("_full", "_none")):
            continue
        with opened(settings, f"bucket-{name}", open_) as backend:
            kv = KeyValue(backend, checks=checks, quota=10 << 20, max_keys=10_000)
            bucket = kv.open("default")
            fill(backend, bucket.namespace)
            get_ns, set_ns = time_ops(bucket.get, bucket.set, n, text_keys=True)
        rows.append(Row("bucket", name, get_ns, set_ns))
    return rows


SECTIONS: list[Section] = [direct_section, bucket_section]


# --- main -------------------------------------------------------------------------------------


def run(settings: Settings, sections: list[Section] | None = None) -> list[Row]:
    rows: list[Row] = []
    for section in SECTIONS if sections is None else sections:
        rows += section(settings)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    with tempfile.TemporaryDirectory(prefix="airssys-bench-storage-") as tmp:
        settings = Settings(
            ops=2_000 if args.quick else 20_000,
            durable_ops=200 if args.quick else 1_000,
            workdir=Path(tmp),
        )
        try:
            rows = run(settings)
        except StorageError as exc:
            sys.exit(f"bench_storage: {exc}")
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": f"{VALUE_SIZE} B values, {KEYSPACE} keys filled, random keys, one op "
        "timed at a time, GC off; durable variants on fewer ops",
        "lmdb": "installed"
        if _lmdb_available()
        else "not installed: pip install 'airssys[storage]'",
    }
    for row in rows:
        results.setdefault(row.section, {})[row.backend] = row.summary()
    default = results.get("direct", {}).get("sqlite")
    if default is not None:
        results["aims_met"] = {key: default[key] <= aim for key, aim in AIMS.items()}
    if args.json:
        emit_json(results)
        return
    lines = []
    for row in rows:
        s = row.summary()
        lines.append(
            [
                row.section,
                row.backend,
                f"{s['get_p50_us']:.1f}",
                f"{s['get_p99_us']:.1f}",
                f"{s['set_p50_us']:.1f}",
                f"{s['set_p99_us']:.1f}",
                f"{int(s['ops']):,}",
            ]
        )
    print(f"Key-value get/set of {VALUE_SIZE} B values (us)")
    print(table(["section", "backend", "get p50", "get p99", "set p50", "set p99", "ops"], lines))
    if default is not None:
        met = ", ".join(
            f"{key} {default[key]:.1f} <= {aim:g}: {'yes' if default[key] <= aim else 'NO'}"
            for key, aim in AIMS.items()
        )
        print(f"aims (direct sqlite): {met}")
    if not _lmdb_available():
        print("lmdb not installed: pip install 'airssys[storage]'")


if __name__ == "__main__":
    main()
