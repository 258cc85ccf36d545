"""The SDK's backend inside a component: the WIT imports (used by the build glue).

``airssys build`` bundles this module with the SDK; the generated glue installs
``WitHost()`` with :func:`airssys.sdk.use_backend`. It needs the bindings
componentize-py generates (``wit_world``, ``componentize_py_types``), so it is only
importable inside a component build; the modules are looked up by name so that
this file type-checks without them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from . import MessagingError
from . import http as _http
from . import kv as _kv
from . import process as _process

__all__ = ("WitHost",)


def _imports(name: str) -> Any:
    return importlib.import_module(f"wit_world.imports.{name}")


_ERROR_KINDS = {
    "Error_NoSuchStore": "no-such-store",
    "Error_AccessDenied": "access-denied",
    "Error_Other": "other",
}


def _kv_error(error: Any, bucket: str) -> _kv.StorageError:
    kind = _ERROR_KINDS.get(type(error).__name__, "other")
    return _kv._error(kind, str(getattr(error, "value", error)), bucket)


def _messaging_error(error: Any) -> Exception:
    return MessagingError(str(error))


def _http_error(error: Any) -> Exception:
    return _http._error(str(error))


def _process_error(error: Any) -> Exception:
    return _process._error(str(error))


class _WitBucket:
    """A ``wasi:keyvalue/store`` bucket handle as a :class:`airssys.sdk.kv.Handle`."""

    __slots__ = ("_err", "_error", "_host", "_resource", "name")

    def __init__(self, host: WitHost, name: str, resource: Any) -> None:
        self._host = host
        self._err = host.err
        self._error = functools.partial(_kv_error, bucket=name)
        self._resource = resource
        self.name = name

    def _call(self, fn: Any, *args: Any) -> Any:
        return self._host._call(self._error, fn, *args)

    def get(self, key: str) -> bytes | None:
        return self._call(self._resource.get, key)  # type: ignore[no-any-return]

    def set(self, key: str, value: bytes) -> None:
        self._call(self._resource.set, key, value)

    def delete(self, key: str) -> None:
        self._call(self._resource.delete, key)

    def exists(self, key: str) -> bool:
        return bool(self._call(self._resource.exists, key))

    def list_keys(self, cursor: str | None) -> tuple[list[str], str | None]:
        page = self._call(self._resource.list_keys, cursor)
        return list(page.keys), page.cursor

    def scan(self, prefix: str, cursor: str | None) -> tuple[list[str], str | None]:
        page = self._call(self._host.storage.scan, self._resource, prefix, cursor)
        return list(page.keys), page.cursor

    def increment(self, key: str, delta: int) -> int:
        return int(self._call(self._host.atomics.increment, self._resource, key, delta))

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        found = self._call(self._host.batch.get_many, self._resource, keys)
        return [value for _, value in found]

    def set_many(self, pairs: list[tuple[str, bytes]]) -> None:
        self._call(self._host.batch.set_many, self._resource, pairs)

    def delete_many(self, keys: list[str]) -> None:
        self._call(self._host.batch.delete_many, self._resource, keys)

    def compare_and_swap(self, key: str, expected: bytes | None, value: bytes) -> bool:
        atomics = self._host.atomics
        cas = self._call(atomics.Cas.new, self._resource, key)
        if self._call(cas.current) != expected:
            cas.__exit__(None, None, None)  # dropped unused
            return False
        try:
            atomics.swap(cas, value)  # consumes the handle
        except self._err as exc:
            failure = exc.value
            if type(failure).__name__ == "CasError_CasFailed":
                failure.value.__exit__(None, None, None)  # the fresh handle: not retried here
                return False
            raise _kv_error(failure.value, self.name) from None
        return True

    def close(self) -> None:
        self._resource.__exit__(None, None, None)


class WitHost:
    """Messaging, logging and the services through the component's WIT imports."""

    def __init__(self) -> None:
        self.err: Any = importlib.import_module("componentize_py_types").Err
        self.messaging = _imports("messaging")
        self.logging = _imports("logging")
        self.store = _imports("store")
        self.atomics = _imports("atomics")
        self.batch = _imports("batch")
        self.storage = _imports("storage")
        self.http = _imports("http")
        self.process = _imports("process")

    def _call(self, error: Callable[[Any], Exception], fn: Any, *args: Any) -> Any:
        """``fn(*args)``; an ``err`` the host answered raises ``error(its value)``."""
        try:
            return fn(*args)
        except self.err as exc:
            raise error(exc.value) from None

    # --- messaging and logging ----------------------------------------------------------

    def send(self, to: str, payload: bytes) -> None:
        self._call(_messaging_error, self.messaging.send, to, payload)

    def publish(self, topic: str, payload: bytes) -> None:
        self._call(_messaging_error, self.messaging.publish, topic, payload)

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        return str(self._call(_messaging_error, self.messaging.request, to, payload, timeout_ms))

    def log(self, level: str, message: str) -> None:
        self.logging.log(getattr(self.logging.Level, level.upper()), message)

    def self_address(self) -> str:
        return str(self.messaging.self_address())

    # --- services ---------------------------------------------------------------------

    def kv_open(self, name: str) -> _WitBucket:
        resource = self._call(functools.partial(_kv_error, bucket=name), self.store.open, name)
        return _WitBucket(self, name, resource)

    def http_fetch(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_ms: int,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        response = self._call(_http_error, self.http.fetch, method, url, headers, body, timeout_ms)
        return response.status, list(response.headers), response.body

    def process_run(
        self, command: str, args: list[str], stdin: bytes, timeout_ms: int
    ) -> tuple[int, bytes, bytes, bool]:
        done = self._call(_process_error, self.process.run, command, args, stdin, timeout_ms)
        return done.exit_code, done.stdout, done.stderr, done.truncated
