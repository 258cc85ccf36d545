"""wasi:keyvalue 0.2.0-draft2 for components, over their host's key-value service.

The host imports ``wasi:keyvalue/store``, ``atomics`` and ``batch`` (wit/deps/keyvalue)
and ``airssys:component/storage`` (a prefix scan) are defined here. Each call finds
its instance by the calling Store, and the storage service through the instance's
host: ``host.services.keyvalue`` (an :class:`airssys.storage.KeyValue` bound to the
component's grants and quota; the actor system gives every component one). A host
without ``services`` (a :class:`~._caller.DetachedHost`: an instance used outside an
actor system) answers every call with ``other(...)`` saying why.

**Resources.** ``bucket`` and ``cas`` are host resources: the guest holds a handle
whose ``rep`` indexes a table of this instance (rep -> :class:`airssys.storage.Bucket`,
or an open CAS). An entry goes when the guest drops its handle (the resource's
destructor), and all of them when the instance closes, so a
handle never outlives its instance nor reaches another one. At most
:data:`MAX_HANDLES` are open at once per instance.

**Errors** (wasi:keyvalue's ``error``): a bucket the grants do not name is
``access-denied`` (the denial is audited with the granted list; the airssys SDK
turns it into an exception naming the bucket and the grant to add). Everything else
is ``other(message)``: a write past the quota names the quota, its usage and the
write's size (nothing of the write is stored); an invalid bucket name or key names
the rule; a message whose deadline has passed is refused before the backend is
touched; an instance outside an actor system is told so.

**CAS.** ``cas.new`` remembers the key's value; ``swap`` stores the new value only
if the key still holds that one (the backend's compare-and-swap, one transaction),
else answers ``cas-failed`` with a fresh handle holding the current value.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import wasmtime
from wasmtime import component as wc

from .._logging import get_logger
from . import _hostvalues as hv
from . import _world
from ._caller import Caller, Find
from ._hosttypes import NOTES, HostTypes, signature
from ._outcome import Refused, host_function, keyvalue_error, services_of

if TYPE_CHECKING:
    from ..storage import Bucket

__all__ = ("ATOMICS", "BATCH", "MAX_HANDLES", "STORAGE", "STORE", "define_keyvalue")

KV_VERSION: Final = _world.KV_VERSION
STORE: Final = f"wasi:keyvalue/store@{KV_VERSION}"
ATOMICS: Final = f"wasi:keyvalue/atomics@{KV_VERSION}"
BATCH: Final = f"wasi:keyvalue/batch@{KV_VERSION}"
STORAGE: Final = _world.STORAGE
"""airssys's own storage interface: the prefix scan (wit/airssys.wit)."""
MAX_HANDLES: Final = 1024
"""Open buckets and CAS handles one instance may hold at once."""
BUCKET_TYPE: Final = 0x6B76_0001  # host resource type ids ("kv" 1, 2)
CAS_TYPE: Final = 0x6B76_0002

_log = get_logger("airssys.runtime.keyvalue")

# the WIT types (wit/deps/keyvalue/store.wit, atomic.wit)
ERROR: Final = hv.Variant(
    "error", {"no-such-store": None, "access-denied": None, "other": hv.STRING}
)
KEY_RESPONSE: Final = hv.Record(
    "key-response", ("keys", hv.List(hv.STRING)), ("cursor", hv.Option(hv.STRING))
)
BUCKET: Final = hv.Borrow("bucket", BUCKET_TYPE)
OWN_BUCKET: Final = hv.Own("bucket", BUCKET_TYPE)
CAS: Final = hv.Borrow("cas", CAS_TYPE)
OWN_CAS: Final = hv.Own("cas", CAS_TYPE)
CAS_ERROR: Final = hv.Variant("cas-error", {"store-error": ERROR, "cas-failed": OWN_CAS})
VALUE: Final = hv.Option(hv.BYTES)


class _Cas(NamedTuple):
    bucket: Bucket
    key: str
    value: bytes | None


class Handles:
    """One instance's open resources: rep -> bucket or CAS."""

    __slots__ = ("__weakref__", "buckets", "cas", "reps")

    def __init__(self) -> None:
        self.buckets: dict[int, Bucket] = {}
        self.cas: dict[int, _Cas] = {}
        self.reps = itertools.count(1)

    def add(self, table: dict[int, Any], value: Any) -> int:
        if len(self.buckets) + len(self.cas) >= MAX_HANDLES:
            raise Refused(
                f"too many open key-value handles ({MAX_HANDLES}): drop buckets "
                "and CAS handles no longer needed"
            )
        rep = next(self.reps) & 0xFFFF_FFFF
        table[rep] = value
        return rep

    def clear(self) -> None:
        self.buckets.clear()
        self.cas.clear()


_TABLES: weakref.WeakKeyDictionary[Caller, Handles] = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def handles_of(instance: Caller, create: bool = True) -> Handles | None:
    """The instance's table (made on first use; emptied when the instance closes)."""
    handles = _TABLES.get(instance)
    if handles is None and create:
        with _TABLES_LOCK:
            handles = _TABLES.get(instance)
            if handles is None:
                handles = _TABLES[instance] = Handles()
                instance.on_close(handles.clear)  # every open bucket goes with the instance
    return handles


def _keyvalue_of(instance: Caller) -> Any:
    services = services_of(instance, "key-value storage", "use storage")
    if instance.time_left() <= 0:
        raise Refused("the message's deadline has passed: the storage call was not made")
    return services.keyvalue


_REVISION: Final = (
    f"the host speaks wasi:keyvalue {KV_VERSION} as Spin vendors it (wit/deps/keyvalue: "
    "batch.get-many returns list<tuple<string, option<list<u8>>>>), not the earlier "
    "revisions of the same version that wasmCloud and wasmtime's crate use"
)
NOTES.update({STORE: _REVISION, ATOMICS: _REVISION, BATCH: _REVISION})


def define_keyvalue(root: wc.LinkerInstance, instance_of: Find) -> HostTypes:
    """Define wasi:keyvalue store/atomics/batch and airssys:component/storage in ``root``;
    returns their signatures (checked against a component's imports at load).

    ``instance_of(store)`` finds the calling instance (or raises WasmtimeError).
    """

    def call(op: Callable[..., Any], what: str) -> Callable[..., Any]:
        """``op(instance, *args)`` answering ok(value), or err(error) when it raises."""
        # a handle-making call runs in replay too: the guest keeps using the handle
        always = what in ("open", "cas.new")
        return host_function(
            instance_of, f"keyvalue.{what}", op, error=keyvalue_error, always=always
        )

    def bucket(instance: Caller, rep: int) -> Bucket:
        handles = handles_of(instance, create=False)
        found = handles.buckets.get(rep) if handles is not None else None
        if found is None:  # only a guest forging handles gets here
            raise wasmtime.WasmtimeError(f"bucket handle {rep} is not open in this instance")
        _keyvalue_of(instance)  # the deadline, and services still there
        return found

    def open_(instance: Caller, name: str) -> int:
        opened = _keyvalue_of(instance).open(name)
        handles = handles_of(instance)
        assert handles is not None
        return handles.add(handles.buckets, opened)

    def cas_new(instance: Caller, rep: int, key: str) -> int:
        b = bucket(instance, rep)
        handles = handles_of(instance)
        assert handles is not None
        return handles.add(handles.cas, _Cas(b, key, b.get(key)))

    def cas_of(instance: Caller, rep: int) -> _Cas:
        handles = handles_of(instance, create=False)
        found = handles.cas.get(rep) if handles is not None else None
        if found is None:
            raise wasmtime.WasmtimeError(f"cas handle {rep} is not open in this instance")
        return found

    def swap_op(instance: Caller, rep: int, value: bytes) -> int | None:
        """None when swapped, else a fresh CAS handle (rep) holding the current value."""
        op = cas_of(instance, rep)
        handles = handles_of(instance)
        assert handles is not None
        del handles.cas[rep]  # the guest gave the handle up: ours to release
        _keyvalue_of(instance)
        if op.bucket.cas(op.key, op.value, value):
            return None
        return handles.add(handles.cas, op._replace(value=op.bucket.get(op.key)))

    def swap_result(result: wc.Variant) -> wc.Variant:
        # a lost race is an answer (counted ok), not a failure
        if result.tag == "err":
            return wc.Variant("err", wc.Variant("store-error", result.payload))
        if result.payload is None:
            return wc.Variant("ok")
        return wc.Variant("err", wc.Variant("cas-failed", result.payload))

    swap = host_function(
        instance_of, "keyvalue.swap", swap_op, error=keyvalue_error, then=swap_result
    )

    def dropper(kind: str) -> Callable[[wasmtime.StoreContext, int], None]:
        def drop(store: wasmtime.StoreContext, rep: int) -> None:
            # runs through wasmtime-py's own destructor thunk: must never raise
            try:
                instance = _resolve_quietly(store)
                handles = _TABLES.get(instance) if instance is not None else None
                if handles is not None:
                    (handles.buckets if kind == "bucket" else handles.cas).pop(rep, None)
            except BaseException:
                _log.exception("dropping a key-value handle failed", kind=kind)

        return drop

    def _resolve_quietly(store: wasmtime.StoreContext) -> Caller | None:
        try:
            return instance_of(store)
        except wasmtime.WasmtimeError:
            return None

    def get(i: Caller, rep: int, key: str) -> bytes | None:
        return bucket(i, rep).get(key)

    def set_(i: Caller, rep: int, key: str, value: bytes) -> None:
        bucket(i, rep).set(key, value)

    def delete(i: Caller, rep: int, key: str) -> None:
        bucket(i, rep).delete(key)

    def exists(i: Caller, rep: int, key: str) -> bool:
        return bucket(i, rep).exists(key)

    def list_keys(i: Caller, rep: int, cursor: str | None) -> tuple[Any, ...]:
        return tuple(bucket(i, rep).list_keys(cursor))

    def scan(i: Caller, rep: int, prefix: str, cursor: str | None) -> tuple[Any, ...]:
        return tuple(bucket(i, rep).scan(prefix, cursor))

    def increment(i: Caller, rep: int, key: str, delta: int) -> int:
        return bucket(i, rep).increment(key, delta)

    def current(i: Caller, rep: int) -> bytes | None:
        return cas_of(i, rep).value

    def get_many(i: Caller, rep: int, keys: list[str]) -> list[tuple[str, Any]]:
        return list(zip(keys, bucket(i, rep).get_many(keys), strict=True))

    def set_many(i: Caller, rep: int, pairs: list[tuple[str, bytes]]) -> None:
        bucket(i, rep).set_many(pairs)

    def delete_many(i: Caller, rep: int, keys: list[str]) -> None:
        bucket(i, rep).delete_many(keys)

    def result(ok: hv.Shape | None) -> hv.Shape:
        return hv.Result(ok, ERROR)

    s, b = hv.STRING, BUCKET
    interfaces: dict[str, list[tuple[str, Callable[..., Any], tuple[hv.Shape, ...], hv.Shape]]]
    interfaces = {
        STORE: [
            ("open", call(open_, "open"), (s,), result(OWN_BUCKET)),
            ("[method]bucket.get", call(get, "get"), (b, s), result(VALUE)),
            ("[method]bucket.set", call(set_, "set"), (b, s, hv.BYTES), result(None)),
            ("[method]bucket.delete", call(delete, "delete"), (b, s), result(None)),
            ("[method]bucket.exists", call(exists, "exists"), (b, s), result(hv.BOOL)),
            (
                "[method]bucket.list-keys",
                call(list_keys, "list-keys"),
                (b, hv.Option(s)),
                result(KEY_RESPONSE),
            ),
        ],
        ATOMICS: [
            ("[static]cas.new", call(cas_new, "cas.new"), (b, s), result(OWN_CAS)),
            ("[method]cas.current", call(current, "cas.current"), (CAS,), result(VALUE)),
            ("increment", call(increment, "increment"), (b, s, hv.S64), result(hv.S64)),
            ("swap", swap, (OWN_CAS, hv.BYTES), hv.Result(None, CAS_ERROR)),
        ],
        BATCH: [
            (
                "get-many",
                call(get_many, "get-many"),
                (b, hv.List(s)),
                result(hv.List(hv.Tuple(s, VALUE))),
            ),
            (
                "set-many",
                call(set_many, "set-many"),
                (b, hv.List(hv.Tuple(s, hv.BYTES))),
                result(None),
            ),
            ("delete-many", call(delete_many, "delete-many"), (b, hv.List(s)), result(None)),
        ],
        STORAGE: [
            ("scan", call(scan, "scan"), (b, s, hv.Option(s)), result(KEY_RESPONSE)),
        ],
    }
    resources = {
        STORE: [("bucket", BUCKET_TYPE)],
        ATOMICS: [("cas", CAS_TYPE)],
        BATCH: [],
        STORAGE: [],
    }
    for name, funcs in interfaces.items():
        with root.add_instance(name) as instance:
            for resource, type_id in resources[name]:
                instance.add_resource(resource, wc.ResourceType.host(type_id), dropper(resource))
            for func_name, fn, params, returns in funcs:
                hv.add_typed_func(instance, func_name, fn, params, returns)
    return {
        name: {func_name: signature(params, returns) for func_name, _, params, returns in funcs}
        for name, funcs in interfaces.items()
    }
