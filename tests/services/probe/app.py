"""A component that drives the host services on request (tests and benches).

Each message is a JSON object ``{"op": ..., ...}``; the reply is JSON. A service
error is answered as ``{"error": message, "type": exception class}`` unless the
message says ``"strict": true``, when it fails the message (the SDK's default).
"""

import importlib
import random
import time
from typing import Any

from airssys.sdk import Message, ServiceError, http, kv, on_message, process

_open: dict[str, kv.Bucket] = {}
_hoard: list[kv.Bucket] = []
Op = dict[str, Any]


def _bucket(m: Op) -> kv.Bucket:
    name = m.get("bucket", "default")
    found = _open.get(name)
    if found is None:
        found = _open[name] = kv.open(name)
    return found


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _bench(m: Op) -> list[int]:
    """Times ``n`` gets or sets of ``size``-byte values on keys drawn from a keyspace
    of ``keyspace`` keys (filled first when ``fill``), each call separately (ns).
    Every set writes a value unlike the one before it."""
    b = _bucket(m)
    n, size, kind = int(m["n"]), int(m.get("size", 256)), m["kind"]
    rng = random.Random(m.get("seed", 42))
    names = [f"key-{i:06d}" for i in range(int(m.get("keyspace", 1)))]
    base = bytearray(b"v" * size)
    if m.get("fill"):
        b.set_many({name: bytes(base) for name in names})
    keys = [names[rng.randrange(len(names))] for _ in range(n)]
    clock = time.perf_counter_ns
    took = []
    if kind == "set":
        for i, key in enumerate(keys):
            base[:8] = (int(m.get("offset", 0)) + i).to_bytes(8, "big")  # every value differs
            value = bytes(base)
            t = clock()
            b.set(key, value)
            took.append(clock() - t)
    else:
        for key in keys:
            t = clock()
            b.get(key)
            took.append(clock() - t)
    return took


def _bench_call(m: Op) -> list[int]:
    """Times ``n`` HTTP fetches of ``url`` or runs of ``command`` (ns); a service
    error (a denial) is caught, as a component would."""
    clock = time.perf_counter_ns
    took = []
    for _ in range(int(m["n"])):
        t = clock()
        try:
            if "url" in m:
                http.get(m["url"], timeout_ms=m.get("timeout_ms", 0))
            else:
                process.run(m["command"], m.get("args", []))
        except ServiceError:
            pass
        took.append(clock() - t)
    return took


def _cas_race(m: Op) -> Op:
    """cas.new, then a write to the key, then swap: cas-failed with a fresh handle."""
    atomics = importlib.import_module("wit_world.imports.atomics")
    err = importlib.import_module("componentize_py_types").Err
    bucket = _bucket(m)
    resource = bucket._handle._resource  # type: ignore[attr-defined]
    cas = atomics.Cas.new(resource, m["key"])
    bucket.set(m["key"], m["meddle"].encode())
    try:
        atomics.swap(cas, m["value"].encode())
    except err as exc:
        fresh = exc.value.value
        with fresh:
            current = fresh.current()
        return {"swapped": False, "fresh": None if current is None else current.decode()}
    return {"swapped": True, "fresh": None}


def _run(m: Op) -> object:
    op = m["op"]
    if op == "open":
        _bucket(m)
        return {"opened": m.get("bucket", "default")}
    if op == "close":
        found = _open.pop(m.get("bucket", "default"), None)
        if found is not None:
            found.close()
        return {"closed": found is not None}
    if op == "set":
        _bucket(m).set(m["key"], m["value"].encode())
        return {"ok": True}
    if op == "get":
        return {"value": _text(_bucket(m).get(m["key"]))}
    if op == "delete":
        _bucket(m).delete(m["key"])
        return {"ok": True}
    if op == "exists":
        return {"exists": _bucket(m).exists(m["key"])}
    if op == "keys":
        return {"keys": list(_bucket(m).keys(prefix=m.get("prefix", "")))}
    if op == "page":
        keys, cursor = _bucket(m).page(m.get("prefix", ""), m.get("cursor"))
        return {"keys": keys, "cursor": cursor}
    if op == "incr":
        return {"value": _bucket(m).increment(m["key"], m.get("delta", 1))}
    if op == "set_many":
        _bucket(m).set_many({k: v.encode() for k, v in m["items"].items()})
        return {"ok": True}
    if op == "get_many":
        return {k: _text(v) for k, v in _bucket(m).get_many(m["keys"]).items()}
    if op == "delete_many":
        _bucket(m).delete_many(m["keys"])
        return {"ok": True}
    if op == "cas":
        expected = m.get("expected")
        swapped = _bucket(m).compare_and_swap(
            m["key"], None if expected is None else expected.encode(), m["value"].encode()
        )
        return {"swapped": swapped}
    if op == "fetch":
        r = http.request(
            m.get("method", "GET"),
            m["url"],
            headers=m.get("headers", {}),
            body=m.get("body", ""),
            timeout_ms=m.get("timeout_ms", 0),
        )
        return {"status": r.status, "headers": r.headers, "body": r.text}
    if op == "run":
        done = process.run(
            m["command"],
            m.get("args", []),
            stdin=m.get("stdin", ""),
            timeout_ms=m.get("timeout_ms", 0),
        )
        return {
            "exit_code": done.exit_code,
            "stdout": done.stdout.decode("utf-8", "replace"),
            "stderr": done.stderr.decode("utf-8", "replace"),
            "truncated": done.truncated,
        }
    if op == "cas_race":
        return _cas_race(m)
    if op == "hoard":  # hold n more buckets open (0: let them all go)
        if not m["n"]:
            for held in _hoard:
                held.close()
            _hoard.clear()
        for _ in range(m["n"]):
            _hoard.append(kv.open(m.get("bucket", "default")))
        return {"held": len(_hoard)}
    if op == "repeat":  # the same op n times (the last answer)
        answer: object = None
        for _ in range(m["n"]):
            try:
                answer = _run(m["what"])
            except ServiceError as exc:
                answer = {"error": str(exc)}
        return answer
    if op == "bench":
        return {"ns": _bench(m)}
    if op == "bench_call":
        return {"ns": _bench_call(m)}
    if op == "crash":
        raise RuntimeError("asked to crash")
    raise ValueError(f"unknown op {op!r}")


@on_message
def handle(message: Message) -> object:
    m = message.value
    if m.get("strict"):
        return _run(m)
    try:
        return _run(m)
    except ServiceError as exc:
        return {"error": str(exc), "type": type(exc).__name__}
