"""Outbound HTTP for components: ``http.get("https://api.example.com/items")``.

    from airssys.sdk import http

    response = http.get("http://127.0.0.1:8080/status", timeout_ms=500)
    if response.ok:
        data = response.json()

Only hosts the component's ``[capabilities] network`` grant names are reached (each
redirect is checked too); anything else raises :class:`HttpDenied` naming the URL
and the grant, and no connection is made. The call is bounded by ``timeout_ms``
(0: none) and by the deadline of the message being handled, whichever comes first.
Failures (no connection, a timeout, a response too large) raise :class:`HttpError`.
Header names in a response are lowercase.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import Denied, ServiceError, _service_error, _services

__all__ = ("HttpDenied", "HttpError", "Response", "delete", "get", "post", "put", "request")


class HttpError(ServiceError):
    """The request failed: no connection, a timeout, a response too large..."""


class HttpDenied(HttpError, Denied):
    """The component's ``network`` grant does not name the host (or a redirect's)."""


def _error(message: str) -> Exception:
    return _service_error(message, HttpError, HttpDenied)


@dataclass(frozen=True, slots=True)
class Response:
    """The final response (after redirects)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body as UTF-8 text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k == lowered), None)


Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def request(
    method: str,
    url: str,
    *,
    headers: Headers | None = None,
    body: bytes | str = b"",
    timeout_ms: int = 0,
) -> Response:
    """Send one request; :class:`HttpDenied` or :class:`HttpError` when it fails."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    status, got, content = _services().http_fetch(
        method, url, [(str(k), str(v)) for k, v in pairs], data, int(timeout_ms)
    )
    return Response(status, got, content)


def get(url: str, *, headers: Headers | None = None, timeout_ms: int = 0) -> Response:
    return request("GET", url, headers=headers, timeout_ms=timeout_ms)


def post(
    url: str, body: bytes | str = b"", *, headers: Headers | None = None, timeout_ms: int = 0
) -> Response:
    return request("POST", url, headers=headers, body=body, timeout_ms=timeout_ms)


def put(
    url: str, body: bytes | str = b"", *, headers: Headers | None = None, timeout_ms: int = 0
) -> Response:
    return request("PUT", url, headers=headers, body=body, timeout_ms=timeout_ms)


def delete(url: str, *, headers: Headers | None = None, timeout_ms: int = 0) -> Response:
    return request("DELETE", url, headers=headers, timeout_ms=timeout_ms)
