"""Outbound HTTP for components, checked against the ``network`` grant at every hop.

:meth:`HttpService.fetch` runs one request for a component:

* **The grant first.** ``checks.check_url(url)`` runs before anything else, so a
  host or port the grant does not name never receives a connection (a denial is
  :class:`~airssys.errors.CapabilityDenied`, audited by the checks' ``on_deny``).
  The connection then goes to exactly the scheme, host and port that check read
  (:func:`~airssys.security._hosts.split_url`, strict), never to a host another URL
  parser would find in the same text.
* **Redirects** (301, 302, 303, 307, 308 with a ``Location``) are followed by hand,
  at most ``max_redirects`` of them (:class:`TooManyRedirects` past that; with
  ``max_redirects=0`` they are not followed and the 3xx is returned). Each Location
  is resolved against the current URL and checked before connecting; a denied one
  raises CapabilityDenied naming it (with a note saying where it came from). 303,
  and 301/302 after a POST, continue as GET without the body; a hop to another
  origin drops ``Authorization``, ``Cookie`` and ``Proxy-Authorization``.
* **Bounded.** ``timeout_s`` bounds the whole call, every hop included: sockets time
  out at the time left, and a deadline watchdog shuts down the socket of a call still
  running at its deadline (a server dribbling bytes cannot stretch it), raising
  :class:`HttpTimeout`. Name resolution (``getaddrinfo``) is the one step nothing
  can interrupt: it is bounded by the system resolver's own timeouts. A body larger
  than ``max_response`` bytes raises :class:`~airssys.errors.ResponseTooLarge`,
  read incrementally and never buffered past the cap. Bodies are returned as
  sent (no content decoding; ``Accept-Encoding: identity`` unless the caller asks).
* **Strict requests.** Only http and https URLs; methods from :data:`METHODS`;
  header names must be tokens and values free of CR, LF and NUL; the headers the
  host owns (``Host``, framing, hop-by-hop: :data:`HOST_HEADERS`) are refused.
  Refusals are :class:`InvalidHttpRequest` (also a ValueError); nothing is sent.
* **No ambient reach.** Proxies from the environment are never used (urllib3
  connections are made directly; nothing reads ``HTTP_PROXY``); each hop is a fresh
  connection, closed afterwards (no pool shared between components). TLS verifies
  certificates against the system store unless an ``ssl_context`` is given.

DNS: the grant is checked on the URL's host as written. A granted *name* is reached
at whatever address it resolves to, private or loopback included; DNS rebinding is
out of scope. Grant IP literals when the address is what matters.
"""

from __future__ import annotations

import functools
import heapq
import http.client
import itertools
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import quote, urljoin

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from ..errors import CapabilityDenied, ResponseTooLarge
from ..errors import HttpError as HttpError
from ..errors import HttpTimeout as HttpTimeout
from ..errors import InvalidHttpRequest as InvalidHttpRequest
from ..errors import TooManyRedirects as TooManyRedirects
from ..security import split_url

__all__ = (
    "HOST_HEADERS",
    "METHODS",
    "HttpError",
    "HttpResponse",
    "HttpService",
    "HttpTimeout",
    "InvalidHttpRequest",
    "TooManyRedirects",
    "UrlChecks",
)

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HOST_HEADERS: Final = frozenset(  # the host sets these: Host (the granted one), framing, hop-by-hop
    {
        "host",
        "content-length",
        "transfer-encoding",
        "expect",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    }
)
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
MIB: Final = 1 << 20
_CREDENTIALS: Final = ("authorization", "cookie", "proxy-authorization")
_CHUNK: Final = 64 * 1024
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE: Final = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_UNSAFE: Final = re.compile(r"[^\x21-\x7e]+")  # percent-encoded in the request target
_AUTHORITY_END: Final = re.compile(r"[/?#]")
_SHOWN: Final = 200


class UrlChecks(Protocol):
    """What the service needs of the component's checks (a CompiledGrants)."""

    def check_url(self, url: str) -> None: ...


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """The final response: header names lowercased, repeated headers kept, in order;
    ``url`` is where it came from (after redirects)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k == lowered), None)


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


class HttpService:
    """One component's outbound HTTP; thread-safe (keeps no state between calls)."""

    def __init__(
        self,
        checks: UrlChecks,
        *,
        max_response: int = 16 * MIB,
        max_redirects: int = 5,
        default_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_response < 0 or max_redirects < 0 or not default_timeout > 0:
            raise ValueError("max_response and max_redirects must be >= 0, default_timeout > 0")
        self.checks = checks
        self.max_response = max_response
        self.max_redirects = max_redirects
        self.default_timeout = default_timeout
        self.ssl_context = ssl_context

    def fetch(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        timeout_s: float | None = None,
    ) -> HttpResponse:
        """Run one request (following redirects); see the module's documentation."""
        self.checks.check_url(url)  # before anything else, even a malformed request
        timeout = self.default_timeout if timeout_s is None else float(timeout_s)
        if not math.isfinite(timeout):
            raise InvalidHttpRequest(f"timeout_s must be a finite number, not {timeout}")
        deadline = time.monotonic() + timeout
        method = _method(method)
        fields = _headers(headers.items() if isinstance(headers, Mapping) else headers)
        current, hop = url, 0
        while True:
            status, got, data, location = self._exchange(method, current, fields, body, deadline)
            if location is None:
                return HttpResponse(status, got, data, current)
            with suppress(UnicodeError):  # http.client reads headers as Latin-1
                location = location.encode("latin-1").decode("utf-8")
            try:
                target = urljoin(current, location)
            except ValueError:
                raise HttpError(
                    f"{method} {_clip(current)}: status {status} redirects to an unreadable "
                    f"Location {_clip(location)!r}"
                ) from None
            if hop >= self.max_redirects:
                raise TooManyRedirects(
                    f"{method} {_clip(url)}: more than {self.max_redirects} redirects (the "
                    f"last, from {_clip(current)}, to {_clip(target)})"
                )
            try:
                self.checks.check_url(target)
            except CapabilityDenied as exc:
                exc.add_note(f"redirected there ({status}) from {_clip(current)}")
                raise
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", b""
                fields = [(k, v) for k, v in fields if not k.lower().startswith("content-")]
            if _origin(target)[0] != _origin(current)[0]:
                fields = [(k, v) for k, v in fields if k.lower() not in _CREDENTIALS]
            current, hop = target, hop + 1

    def _exchange(
        self,
        method: str,
        url: str,
        fields: list[tuple[str, str]],
        body: bytes,
        deadline: float,
    ) -> tuple[int, tuple[tuple[str, str], ...], bytes, str | None]:
        """One request on a fresh connection: (status, headers, body, redirect or None)."""
        scheme, host, port, target = _split(url)
        left = deadline - time.monotonic()
        if left <= 0:
            raise HttpTimeout(f"{method} {_clip(url)}: the time ran out before connecting")
        conn: HTTPConnection
        if scheme == "https":
            conn = HTTPSConnection(host, port, timeout=left, ssl_context=self.ssl_context)
        else:
            conn = HTTPConnection(host, port, timeout=left)
        send = urllib3.HTTPHeaderDict()
        for name, value in fields:
            send.add(name, value)
        if "user-agent" not in send:
            send["User-Agent"] = "airssys"
        send["Connection"] = "close"
        response = None
        try:
            with _WATCHDOG.watch(deadline, conn) as watch:
                try:
                    conn.request(
                        method,
                        target,
                        body or None,
                        send,
                        preload_content=False,
                        decode_content=False,
                    )
                    watch.sock = conn.sock  # the response keeps it; the connection lets go
                    response = conn.getresponse()
                    got = tuple((k.lower(), v) for k, v in response.headers.items())
                    location = response.headers.get("location")
                    if self.max_redirects and response.status in REDIRECTS and location:
                        data = b""
                    else:
                        location = None
                        data = self._read(response, method, url)
                except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
                    if watch.fired or _is_timeout(exc) or time.monotonic() >= deadline:
                        raise HttpTimeout(f"{method} {_clip(url)}: timed out") from None
                    raise HttpError(f"{method} {_clip(url)} failed: {_reason(exc)}") from exc
                if watch.fired:  # the shutdown may read as a short but clean end
                    raise HttpTimeout(f"{method} {_clip(url)}: timed out")
                return response.status, got, data, location
        finally:
            if response is not None:
                response.close()
            conn.close()

    def _read(self, response: urllib3.BaseHTTPResponse, method: str, url: str) -> bytes:
        cap = self.max_response
        length = response.headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > cap:
            raise ResponseTooLarge(
                f"{method} {_clip(url)}: the response body ({_clip(length)} bytes) is larger than "
                f"the {cap}-byte cap"
            )
        data = bytearray()
        while chunk := response.read1(min(_CHUNK, cap + 1 - len(data)), decode_content=False):
            data += chunk
            if len(data) > cap:
                raise ResponseTooLarge(
                    f"{method} {_clip(url)}: the response body is larger than the "
                    f"{cap}-byte cap; cut off there"
                )
        return bytes(data)


def _method(method: str) -> str:
    upper = method.upper() if isinstance(method, str) else ""
    if upper not in METHODS:
        raise InvalidHttpRequest(
            f"HTTP method {_clip(repr(method))} is not one of {', '.join(sorted(METHODS))}"
        )
    return upper


def _headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for name, value in items:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise InvalidHttpRequest(f"header name {_clip(repr(name))} is not an HTTP token")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise InvalidHttpRequest(
                f"header {name}: value {_clip(repr(value))} holds CR, LF, NUL or another "
                "control character (or a character beyond Latin-1)"
            )
        if name.lower() in HOST_HEADERS:
            raise InvalidHttpRequest(f"header {name} is set by the host, not the component")
        out.append((name, value))
    return out


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host to connect to, port, request target) as check_url read them."""
    (scheme, host, port), rest = _origin(url)
    if port is None:  # check_url refuses these: defence in depth
        raise InvalidHttpRequest(f"URL {_clip(url)!r} cannot be read strictly")
    if scheme not in ("http", "https"):
        raise InvalidHttpRequest(f"URL {_clip(url)!r}: only http and https are fetched")
    rest = rest.partition("#")[0]
    if not rest.startswith("/"):
        rest = "/" + rest
    try:
        target = _UNSAFE.sub(lambda m: quote(m.group(), safe=""), rest)
    except UnicodeEncodeError:
        raise InvalidHttpRequest(f"URL {_clip(url)!r} holds a lone surrogate") from None
    return scheme, host[1:-1] if host.startswith("[") else host, port, target


def _origin(url: str) -> tuple[tuple[str, str, int | None], str]:
    """split_url's reading of ``url`` (("", "", None) if none) and the text after its
    authority; cached by ``scheme://authority``, as the checks' matcher is."""
    start = url.find("://")
    end = _AUTHORITY_END.search(url, start + 3) if start > 0 else None
    cut = end.start() if end else len(url)
    prefix = url[:cut]
    parts = _split_prefix(prefix) if len(prefix) <= 256 else split_url(prefix)
    return parts or ("", "", None), url[cut:]


@functools.lru_cache(maxsize=1024)
def _split_prefix(prefix: str) -> tuple[str, str, int | None] | None:
    return split_url(prefix)


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        return False
    return isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return _clip(text.replace("\r", " ").replace("\n", " "))


# --- the deadline watchdog ------------------------------------------------------------


class _Watch:
    __slots__ = ("conn", "deadline", "done", "fired", "sock")

    def __init__(self, deadline: float, conn: HTTPConnection) -> None:
        self.deadline = deadline
        self.conn = conn
        self.sock: Any = None  # once connected (http.client drops conn.sock on a last answer)
        self.done = False
        self.fired = False


class _Watchdog:
    """One daemon thread that shuts down the socket of a call still running at its
    deadline, so a blocked read returns at once. Started on demand; it exits after
    ``idle`` seconds with nothing to watch. A watch ends (under the lock) before its
    socket is closed, so a shutdown never reaches a closed or reused descriptor."""

    def __init__(self, idle: float = 2.0) -> None:
        self._idle = idle
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._live = 0
        self._running = False
        self._wake_at = 0.0  # when the thread wakes next on its own (0: it is not waiting)

    @contextmanager
    def watch(self, deadline: float, conn: HTTPConnection) -> Iterator[_Watch]:
        entry = _Watch(deadline, conn)
        with self._cond:
            if not self._running:
                thread = threading.Thread(target=self._run, name="airssys-http-deadline")
                thread.daemon = True
                thread.start()  # it waits for the lock; a failure changes nothing
                self._running = True
            heapq.heappush(self._heap, (deadline, next(self._seq), entry))
            self._live += 1
            if deadline < self._wake_at:  # else the thread wakes in time anyway
                self._cond.notify()
        try:
            yield entry
        finally:
            with self._cond:
                entry.done = True
                self._live -= 1
                if len(self._heap) > 64 + 2 * self._live:  # drop finished watches
                    self._heap = [item for item in self._heap if not item[2].done]
                    heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                if not self._heap:
                    self._wake_at = now + self._idle
                    self._cond.wait(self._idle)
                    self._wake_at = 0.0
                    if not self._heap:
                        self._running = False
                        return
                    continue
                deadline, _, entry = self._heap[0]
                if now < deadline:
                    self._wake_at = deadline
                    self._cond.wait(deadline - now)
                    self._wake_at = 0.0
                    continue
                heapq.heappop(self._heap)
                entry.fired = True
                _shutdown(entry.sock or entry.conn.sock)


def _shutdown(sock: Any) -> None:
    if isinstance(sock, socket.socket):
        with suppress(OSError):  # the plain socket's (an SSLSocket's drops its TLS state)
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


_WATCHDOG: Final = _Watchdog()
