"""Outbound HTTP: the network grant decides before any connection, at every hop."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from airssys.errors import CapabilityDenied, ResponseTooLarge
from airssys.host import (
    HttpError,
    HttpService,
    HttpTimeout,
    InvalidHttpRequest,
    TooManyRedirects,
    _http,
)
from tests.host.conftest import Denials, Handler, Server, checks


def service(
    *grants: str,
    denials: Denials | None = None,
    max_redirects: int = 5,
    max_response: int = 1 << 24,
) -> HttpService:
    return HttpService(
        checks({"network": list(grants)}, denials),
        max_redirects=max_redirects,
        max_response=max_response,
    )


def redirect(location: str, status: int = 302) -> Callable[[Handler], None]:
    return lambda h: h.reply(status, headers=(("Location", location),))


def echo(h: Handler) -> None:
    method, path, headers, body = h.server.requests[-1]
    lines = [f"{method} {path}", *(f"{k.lower()}: {v}" for k, v in headers)]
    h.reply(200, "\n".join(lines).encode() + b"\n\n" + body)


def hello(h: Handler) -> None:
    h.reply(201, b"hello", headers=(("X-Test", "a"), ("X-Test", "b"), ("Content-Type", "text/x")))


# --- allowed ----------------------------------------------------------------------------


def test_an_allowed_host_and_port_answers(server: Server) -> None:
    server.routes["/hello"] = hello
    response = service(server.origin).fetch("GET", server.origin + "/hello?q=1")
    assert response.status == 201 and response.body == b"hello"
    assert ("x-test", "a") in response.headers and ("x-test", "b") in response.headers
    assert response.header("Content-Type") == "text/x" and response.header("X-None") is None
    assert response.url == server.origin + "/hello?q=1"
    assert server.requests[-1][:2] == ("GET", "/hello?q=1")
    head = service(server.origin).fetch("HEAD", server.origin + "/hello")
    assert (head.status, head.body, head.header("content-length")) == (201, b"", "5")


def test_a_post_body_and_headers_round_trip(server: Server) -> None:
    server.routes["/echo"] = echo
    http = service(server.origin)
    response = http.fetch("post", server.origin + "/echo", [("X-A", "1"), ("X-A", "2")], b"\x00pay")
    head, _, body = response.body.partition(b"\n\n")
    assert body == b"\x00pay"
    lines = head.decode().splitlines()
    assert lines[0] == "POST /echo"
    assert "x-a: 1" in lines and "x-a: 2" in lines and "content-length: 4" in lines
    assert "connection: close" in lines and "user-agent: airssys" in lines
    assert f"host: 127.0.0.1:{server.port}" in lines


def test_a_granted_name_is_resolved(server: Server) -> None:
    server.routes["/hello"] = hello
    origin = f"http://localhost:{server.port}"
    assert service(origin).fetch("GET", origin + "/hello").body == b"hello"


def test_ipv6_literals_are_reached_as_checked(start_server: Callable[..., Server]) -> None:
    try:
        server = start_server("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server.routes["/hello"] = hello
    assert service(server.origin).fetch("GET", server.origin + "/hello").body == b"hello"


def test_proxies_from_the_environment_are_not_used(
    server: Server, other: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, other.origin)
    server.routes["/hello"] = hello
    assert service(server.origin).fetch("GET", server.origin + "/hello").status == 201
    assert other.settled() == 0


def test_control_characters_in_the_path_are_escaped_not_sent(server: Server) -> None:
    server.routes["/echo"] = echo
    response = service(server.origin).fetch("GET", server.origin + "/a\r\nX-Evil: 1 é#frag")
    assert server.requests[-1][1] == "/a%0D%0AX-Evil:%201%20%C3%A9"
    assert response.status == 404 and all(k != "X-Evil" for k, _ in server.requests[-1][2])


# --- denied before connecting ---------------------------------------------------------


def test_a_denied_port_never_receives_a_connection(server: Server, other: Server) -> None:
    denials = Denials()
    with pytest.raises(CapabilityDenied, match=f"network {other.origin}/x; granted: "):
        service(server.origin, denials=denials).fetch("GET", other.origin + "/x")
    assert other.settled() == 0 and server.settled() == 0
    assert [d[:2] for d in denials.seen] == [("network", other.origin + "/x")]


@pytest.mark.parametrize(
    ("granted", "asked"), [("127.0.0.1", "localhost"), ("localhost", "127.0.0.1")]
)
def test_a_denied_host_never_receives_a_connection(
    server: Server, granted: str, asked: str
) -> None:
    with pytest.raises(CapabilityDenied, match=f"network http://{asked}:"):
        service(f"http://{granted}:{server.port}").fetch("GET", f"http://{asked}:{server.port}/")
    assert server.settled() == 0


def test_the_grant_is_checked_before_the_request_is_read(server: Server) -> None:
    with pytest.raises(CapabilityDenied):  # a malformed request to a denied host: denied
        service(server.origin).fetch("BREW", f"http://localhost:{server.port}/", [("A\n", "")])


def test_only_http_and_https_are_fetched(server: Server) -> None:
    with pytest.raises(InvalidHttpRequest, match="only http and https"):
        service("*://127.0.0.1:*").fetch("GET", f"ftp://127.0.0.1:{server.port}/")
    assert server.settled() == 0


@pytest.mark.parametrize(
    ("method", "headers", "problem"),
    [
        ("GET", [("X-A", "ok\r\nX-Injected: 1")], "holds CR, LF"),
        ("GET", [("X-A", "ok\n")], "holds CR, LF"),
        ("GET", [("X-A\r\nX-B", "v")], "not an HTTP token"),
        ("GET", [("X A", "v")], "not an HTTP token"),
        ("GET", [("Host", "elsewhere.example")], "Host is set by the host"),
        ("POST", [("Transfer-Encoding", "chunked")], "set by the host"),
        ("CONNECT", [], "not one of"),
        ("TRACE", [], "not one of"),
    ],
)
def test_a_malformed_request_is_refused_before_connecting(
    server: Server, method: str, headers: list[tuple[str, str]], problem: str
) -> None:
    with pytest.raises(InvalidHttpRequest, match=problem):
        service(server.origin).fetch(method, server.origin + "/", headers)
    assert server.settled() == 0


# --- redirects --------------------------------------------------------------------------


def test_a_relative_redirect_is_followed(server: Server) -> None:
    server.routes["/start"] = redirect("hello?from=start")
    server.routes["/hello"] = hello
    response = service(server.origin).fetch("GET", server.origin + "/start")
    assert (response.status, response.body) == (201, b"hello")
    assert response.url == server.origin + "/hello?from=start"


@pytest.mark.parametrize(("status", "method"), [(303, "GET"), (302, "GET"), (307, "POST")])
def test_a_redirect_after_a_post_keeps_or_drops_the_body(
    server: Server, status: int, method: str
) -> None:
    server.routes["/go"] = redirect("/echo", status)
    server.routes["/echo"] = echo
    response = service(server.origin).fetch(
        "POST", server.origin + "/go", {"Content-Type": "text/plain"}, b"data"
    )
    head, _, body = response.body.partition(b"\n\n")
    assert head.startswith(f"{method} /echo".encode())
    assert body == (b"data" if method == "POST" else b"")
    assert (b"content-type: text/plain" in head) == (method == "POST")


def test_credentials_do_not_follow_a_redirect_to_another_origin(
    server: Server, other: Server
) -> None:
    server.routes["/go"] = redirect(other.origin + "/echo")
    other.routes["/echo"] = echo
    response = service(server.origin, other.origin).fetch(
        "GET", server.origin + "/go", {"Authorization": "Bearer x", "Cookie": "a=b", "X-K": "k"}
    )
    assert b"x-k: k" in response.body
    assert b"authorization" not in response.body and b"cookie" not in response.body


def test_a_redirect_to_a_denied_port_is_refused_unconnected(server: Server, other: Server) -> None:
    server.routes["/go"] = redirect(other.origin + "/hello")
    denials = Denials()
    with pytest.raises(CapabilityDenied, match=f"network {other.origin}/hello") as caught:
        service(server.origin, denials=denials).fetch("GET", server.origin + "/go")
    assert any("redirected there (302) from" in note for note in caught.value.__notes__)
    assert other.settled() == 0 and server.settled() == 1
    assert [d[:2] for d in denials.seen] == [("network", other.origin + "/hello")]


def test_a_redirect_to_a_denied_host_is_refused_unconnected(server: Server) -> None:
    server.routes["/go"] = redirect(f"http://localhost:{server.port}/hello")
    with pytest.raises(CapabilityDenied, match=f"network http://localhost:{server.port}/hello"):
        service(server.origin).fetch("GET", server.origin + "/go")
    assert server.settled() == 1  # the first request only


def test_too_many_redirects(server: Server) -> None:
    server.routes["/loop"] = redirect("/loop")
    with pytest.raises(TooManyRedirects, match="more than 3 redirects"):
        service(server.origin, max_redirects=3).fetch("GET", server.origin + "/loop")
    assert server.settled() == 4


def test_a_utf8_location_is_read_as_utf8(server: Server) -> None:
    def go(h: Handler) -> None:
        h.wfile.write(b"HTTP/1.0 302 Found\r\nLocation: /caf\xc3\xa9\r\n\r\n")

    server.routes["/go"] = go
    server.routes["/caf%C3%A9"] = hello
    assert service(server.origin).fetch("GET", server.origin + "/go").status == 201


def test_with_no_redirects_allowed_the_redirect_is_the_answer(server: Server) -> None:
    server.routes["/go"] = redirect("/hello")
    response = service(server.origin, max_redirects=0).fetch("GET", server.origin + "/go")
    assert (response.status, response.header("location")) == (302, "/hello")


# --- sizes and time ---------------------------------------------------------------------


def unframed(size: int | None) -> Callable[[Handler], None]:
    """An answer without Content-Length (ends when the connection closes); None: endless."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.end_headers()
        sent = 0
        try:
            while (size is None or sent < size) and not h.server.release.is_set():
                h.wfile.write(b"x" * 4096)
                sent += 4096
        except OSError:
            pass  # the client hung up

    return route


def test_a_response_at_the_cap_is_returned(server: Server) -> None:
    server.routes["/ok"] = lambda h: h.reply(200, b"y" * 1000)
    response = service(server.origin, max_response=1000).fetch("GET", server.origin + "/ok")
    assert response.body == b"y" * 1000


@pytest.mark.parametrize("route", ["/framed", "/unframed", "/endless"])
def test_an_oversized_response_is_cut_with_an_error(server: Server, route: str) -> None:
    server.routes["/framed"] = lambda h: h.reply(200, b"y" * 1001)
    server.routes["/unframed"] = unframed(8192)
    server.routes["/endless"] = unframed(None)
    with pytest.raises(ResponseTooLarge, match="larger than the 1000-byte cap"):
        service(server.origin, max_response=1000).fetch("GET", server.origin + route)


def stall(h: Handler) -> None:
    h.server.release.wait()


def dribble(head: bytes) -> Callable[[Handler], None]:
    """Send ``head``, then one byte at a time, each well inside any socket timeout."""

    def route(h: Handler) -> None:
        try:
            h.wfile.write(head)
            while not h.server.release.wait(0.02):
                h.wfile.write(b"x")
                h.wfile.flush()
        except OSError:
            pass

    return route


@pytest.mark.parametrize("route", ["/stall", "/dribble-headers", "/dribble-body"])
def test_a_slow_server_is_bounded_by_the_timeout(server: Server, route: str) -> None:
    server.routes["/stall"] = stall
    server.routes["/dribble-headers"] = dribble(b"HTTP/1.0 200 OK\r\nX-Slow: ")
    server.routes["/dribble-body"] = dribble(b"HTTP/1.0 200 OK\r\nContent-Length: 99999\r\n\r\n")
    with pytest.raises(HttpTimeout, match="timed out") as caught:
        service(server.origin).fetch("GET", server.origin + route, timeout_s=0.3)
    assert isinstance(caught.value, TimeoutError)


def test_no_time_left_means_no_connection(server: Server) -> None:
    with pytest.raises(HttpTimeout, match="before connecting"):
        service(server.origin).fetch("GET", server.origin + "/", timeout_s=0)
    assert server.settled() == 0


def test_a_refused_connection_is_an_http_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HttpError, match=f"GET http://127.0.0.1:{port}/ failed: ") as caught:
        service(f"http://127.0.0.1:{port}").fetch("GET", f"http://127.0.0.1:{port}/")
    assert not isinstance(caught.value, HttpTimeout)


def test_the_deadline_watchdog_lets_finished_calls_go(server: Server) -> None:
    server.routes["/hello"] = hello
    http = service(server.origin)
    for _ in range(100):  # many short calls with long deadlines: nothing piles up or fires
        assert http.fetch("GET", server.origin + "/hello", timeout_s=30).status == 201
    assert len(_http._WATCHDOG._heap) <= 64 and _http._WATCHDOG._live == 0
