"""Outbound network hosts in Spin's grammar: ``scheme://host[:port]``.

* **scheme**: required; a scheme name (``https``, ``http``, ``redis``...) or ``*``
  for any scheme. A pattern without one (``example.com``) is refused, telling you
  to write ``https://example.com``.
* **host**: a name (``api.example.com``; lowercased, a non-ASCII name encoded to
  ASCII with IDNA, so ``bücher.example`` and ``xn--bcher-kva.example`` are the same
  host), ``*`` for any host, ``*.example.com`` for the subdomains of example.com at
  any depth (``a.example.com``, ``a.b.example.com``) but **not example.com itself**
  (grant both when you need both), an IPv4 address (``192.0.2.1``) or an IPv6
  address in brackets (``[::1]``).
* **port**: a number, ``*`` for any port, or a range ``5000..5010`` (inclusive).
  Omitted, it is the scheme's default: 80 for http, 443 for https; other schemes
  (and the scheme ``*``) must give one.

``*://*:*`` allows everything. A bare ``*`` is refused with a message saying so. A
trailing ``/`` is accepted and ignored; any other path, a query, a fragment or user
information (``user@host``) is refused, naming it: a grant names hosts, not URLs.

A URL is checked by its scheme, host and port only (``https://API.Example.com/v1?x``
is https, api.example.com, 443). URLs are read strictly: user information
(``https://example.com@evil.com``), backslashes, percent-escapes or spaces in the
host, IPv4 in shorthand (``127.1``, ``0x7f.0.0.1``, ``2130706433``) and non-ASCII
names that are not in canonical form (``faß.de``, which IDNA 2003 and 2008 send to
different hosts) match nothing, so a URL never reaches a host other than the one it
was checked as. Host names are compared as written: nothing is looked up in DNS.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..units import show

__all__ = (
    "DEFAULT_PORTS",
    "HostMatcher",
    "HostPattern",
    "compile_hosts",
    "covered_by",
    "covers",
    "normalize_host",
    "split_url",
)

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
CACHE_SIZE: Final = 4096
CACHED_LENGTH: Final = 256
RULE: Final = (
    "a network host is scheme://host[:port]: the scheme ('https', 'http', ... or '*' for "
    "any) is required; the host is a name, '*' (any host), '*.example.com' (its "
    "subdomains, not example.com itself), an IPv4 address or an IPv6 address in brackets "
    "('[::1]'); the port is a number, '*' or a range '5000..5010' (omitted: 80 for http, "
    "443 for https); '*://*:*' allows every host"
)
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*", re.ASCII)
_PORT: Final = re.compile(r"[0-9]{1,5}", re.ASCII)
_RANGE: Final = re.compile(r"([0-9]{1,5})\.\.([0-9]{1,5})", re.ASCII)
_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)
_AUTHORITY_END: Final = re.compile(r"[/?#]")
_BAD_TEXT: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\\ud800-\udfff]")


def _clip(value: str) -> str:
    return show(value, 80)


def normalize_host(host: str) -> str:
    """The canonical form of a host name or IP address; ValueError (saying why) if none.

    Lowercase ASCII (IDNA for non-ASCII names, which must already be in canonical
    form), one trailing dot dropped, IPv4 in dotted-decimal, IPv6 compressed inside
    brackets.
    """
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{_clip(host)}: an IPv6 address is written in brackets, '[::1]'")
        inner = host[1:-1]
        if "%" in inner:
            raise ValueError(f"{_clip(host)}: IPv6 zone identifiers are not accepted")
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise ValueError(f"{_clip(host)} is not an IPv6 address") from None
    if ":" in host:
        raise ValueError(f"{_clip(host)}: an IPv6 address is written in brackets, '[::1]'")
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise ValueError("the host is empty")
    if len(host) > 253:
        raise ValueError(f"host {_clip(host)} is longer than 253 characters")
    lowered = host.lower()
    if not host.isascii():
        if any(not char.isascii() and char.lower().isascii() for char in host):
            raise ValueError(
                f"host {_clip(host)} holds a non-ASCII character that lowercases to ASCII "
                "(such as the Kelvin sign); write the host in plain letters"
            )
        lowered = _idna(lowered, host)
    labels = lowered.split(".")
    last = labels[-1]
    if last.isdigit() or last.startswith("0x"):
        try:
            return str(ipaddress.IPv4Address(lowered))
        except ValueError:
            raise ValueError(
                f"{_clip(host)} looks like an IPv4 address but is not one in dotted-decimal "
                "form (e.g. 192.0.2.1)"
            ) from None
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"host {_clip(host)}: label {_clip(label)} is not a host name label "
                "(1 to 63 letters, digits, '-' or '_', not starting or ending with '-')"
            )
        if label.startswith("xn--"):
            _idna(label, host)  # must be valid, canonical punycode
    if len(lowered) > 253:
        raise ValueError(f"host {_clip(host)} is longer than 253 characters")
    return lowered


def _is_ip(host: str) -> bool:
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _idna(lowered: str, original: str) -> str:
    """``lowered`` (lowercase text) as IDNA ASCII, refusing anything not canonical."""
    try:
        if lowered.isascii():  # an xn-- label: decode, then encode again
            text = lowered.encode("ascii").decode("idna")
            ascii_host = text.encode("idna").decode("ascii")
            if ascii_host != lowered:
                raise UnicodeError("not canonical")
            return lowered
        ascii_host = lowered.encode("idna").decode("ascii")
        back = ascii_host.encode("ascii").decode("idna")
    except UnicodeError:
        raise ValueError(f"host {_clip(original)} is not a valid internationalized name") from None
    if back != lowered:
        raise ValueError(
            f"host {_clip(original)} is not in canonical form (IDNA maps it to "
            f"{_clip(ascii_host)}, which reads back as {_clip(back)}); write the host as "
            "it is registered"
        )
    return ascii_host


def _parse_port(text: str, raw: str) -> tuple[int, int] | None:
    if text == "*":
        return None
    match = _RANGE.fullmatch(text)
    if match is not None:
        low, high = int(match.group(1)), int(match.group(2))
    elif _PORT.fullmatch(text):
        low = high = int(text)
    else:
        raise ValueError(
            f"network host {_clip(raw)}: port {_clip(text)} is not a port; write a number "
            "(443), '*' or a range ('5000..5010')"
        )
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise ValueError(f"network host {_clip(raw)}: port {port} is outside 1..65535")
    if low > high:
        raise ValueError(
            f"network host {_clip(raw)}: port range {text} runs backwards; write {high}..{low}"
        )
    return (low, high)


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One parsed network grant. Build with :meth:`parse`.

    ``scheme`` None: any scheme. ``host`` None: any host; with ``subdomains`` the
    pattern is ``*.<host>``. ``ports`` None: any port, else an inclusive range.
    """

    scheme: str | None
    host: str | None
    subdomains: bool
    ports: tuple[int, int] | None

    @classmethod
    def parse(cls, text: object) -> HostPattern:
        """Parse ``scheme://host[:port]``; ValueError naming the problem and the syntax."""
        if not isinstance(text, str):
            raise ValueError(f"a network host must be a string, got {type(text).__name__}; {RULE}")
        if text == "*":
            raise ValueError(
                "'*' alone is not a network host: write '*://*:*' to allow every scheme, "
                "host and port, or narrow it, e.g. 'https://*' (any host over HTTPS)"
            )
        if not text:
            raise ValueError(f"empty network host; {RULE}")
        bad = _BAD_TEXT.search(text)
        if bad is not None:
            raise ValueError(
                f"network host {_clip(text)} holds {bad.group()!r}; write it without spaces, "
                "control characters or backslashes"
            )
        scheme_text, sep, rest = text.partition("://")
        if not sep:
            raise ValueError(
                f"network host {_clip(text)} has no scheme: write 'https://{text}' (the "
                "scheme is required; '*://' allows any); " + RULE
            )
        scheme_text = scheme_text.lower() if scheme_text.isascii() else scheme_text
        if scheme_text != "*" and not _SCHEME.fullmatch(scheme_text):
            raise ValueError(f"network host {_clip(text)}: {scheme_text!r} is not a scheme; {RULE}")
        scheme = None if scheme_text == "*" else scheme_text
        if rest.endswith("/"):
            rest = rest[:-1]  # a trailing slash names no path: accepted, ignored
        for char, what in (("@", "user information"), ("/", "a path"), ("?", "a query")):
            at = rest.find(char)
            if at >= 0:
                shown = rest[:at] if char == "@" else rest[at:]
                fix = rest[at + 1 :] if char == "@" else rest[:at]
                raise ValueError(
                    f"network host {_clip(text)} holds {what} ({_clip(shown)}); a grant names "
                    f"a host, not a URL: write '{scheme_text}://{fix}'"
                )
        if "#" in rest:
            raise ValueError(f"network host {_clip(text)} holds a fragment ('#'); {RULE}")
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                raise ValueError(f"network host {_clip(text)}: unclosed '[' in an IPv6 address")
            host_text, after = rest[: close + 1], rest[close + 1 :]
            if after and not after.startswith(":"):
                raise ValueError(f"network host {_clip(text)}: {after!r} after the IPv6 address")
            port_text: str | None = after[1:] if after else None
        else:
            if rest.count(":") > 1:
                raise ValueError(
                    f"network host {_clip(text)}: an IPv6 address is written in brackets, "
                    "e.g. 'http://[::1]:8080'"
                )
            host_text, colon, tail = rest.partition(":")
            port_text = tail if colon else None
        if port_text == "":
            raise ValueError(f"network host {_clip(text)} has an empty port after ':'; {RULE}")

        subdomains = False
        host: str | None
        if host_text == "*":
            host = None
        else:
            if host_text.startswith("*."):
                subdomains = True
                host_text = host_text[2:]
            if "*" in host_text:
                raise ValueError(
                    f"network host {_clip(text)}: '*' in a host is either the whole host or a "
                    "leading '*.' label (e.g. '*.example.com')"
                )
            try:
                host = normalize_host(host_text)
            except ValueError as exc:
                raise ValueError(f"network host {_clip(text)}: {exc}; {RULE}") from None
            if subdomains and _is_ip(host):
                raise ValueError(
                    f"network host {_clip(text)}: '*.' takes a domain name, not an IP address"
                )

        if port_text is None:
            default = DEFAULT_PORTS.get(scheme) if scheme is not None else None
            if default is None:
                example = "*://example.com:443" if scheme is None else f"{scheme}://host:1234"
                raise ValueError(
                    f"network host {_clip(text)} needs a port: only http (80) and https (443) "
                    f"have a default; write e.g. '{example}' or ':*' for any port"
                )
            ports: tuple[int, int] | None = (default, default)
        else:
            ports = _parse_port(port_text, text)
        return cls(scheme, host, subdomains, ports)

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        """Does this pattern allow a connection to ``scheme://host:port`` (canonical)?"""
        if self.scheme is not None and self.scheme != scheme:
            return False
        if self.ports is not None and (port is None or not self.ports[0] <= port <= self.ports[1]):
            return False
        if self.host is None:
            return True
        if self.subdomains:
            return host.endswith("." + self.host)
        return host == self.host

    def covers(self, declared: HostPattern) -> bool:
        """Does this pattern allow everything ``declared`` allows?"""
        return _covers_host(self, declared) and _ports_within(declared.ports, [self.ports])

    def __str__(self) -> str:
        scheme = self.scheme or "*"
        host = "*" if self.host is None else ("*." if self.subdomains else "") + self.host
        if self.ports is None:
            port = ":*"
        elif self.ports[0] != self.ports[1]:
            port = f":{self.ports[0]}..{self.ports[1]}"
        elif self.scheme is not None and DEFAULT_PORTS.get(self.scheme) == self.ports[0]:
            port = ""
        else:
            port = f":{self.ports[0]}"
        return f"{scheme}://{host}{port}"


def _covers_host(ceiling: HostPattern, declared: HostPattern) -> bool:
    if ceiling.scheme is not None and ceiling.scheme != declared.scheme:
        return False
    if ceiling.host is None:
        return True
    if declared.host is None:
        return False
    if ceiling.subdomains:
        if declared.host == ceiling.host:
            return declared.subdomains
        return declared.host.endswith("." + ceiling.host)
    return not declared.subdomains and declared.host == ceiling.host


def _ports_within(ports: tuple[int, int] | None, ceilings: list[tuple[int, int] | None]) -> bool:
    """Do the ceilings' port ranges, together, hold every port in ``ports``?"""
    if any(c is None for c in ceilings):
        return True
    if ports is None:
        return False
    low, high = ports
    for c_low, c_high in sorted(c for c in ceilings if c is not None):
        if c_low > low:
            return False
        if c_high >= low:
            low = c_high + 1
            if low > high:
                return True
    return low > high


def covers(ceiling: HostPattern | str, declared: HostPattern | str) -> bool:
    """Does ``ceiling`` allow everything ``declared`` allows? (text is parsed)"""
    return covered_by((ceiling,), declared)


def covered_by(ceilings: Iterable[HostPattern | str], declared: HostPattern | str) -> bool:
    """Do ``ceilings`` together allow everything ``declared`` allows?

    Scheme and host must be covered by one ceiling pattern; the ports of every such
    pattern count together (``:80`` and ``:81..90`` cover ``:80..90``).
    """
    d = declared if isinstance(declared, HostPattern) else HostPattern.parse(declared)
    cs = [c if isinstance(c, HostPattern) else HostPattern.parse(c) for c in ceilings]
    return _ports_within(d.ports, [c.ports for c in cs if _covers_host(c, d)])


def split_url(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of a URL, canonical; None when it cannot be read strictly.

    The port is the URL's, else the scheme's default, else None.
    """
    start = url.find("://")
    if start <= 0:
        return None
    scheme = url[:start]
    if not scheme.isascii() or not _SCHEME.fullmatch(scheme := scheme.lower()):
        return None
    end_match = _AUTHORITY_END.search(url, start + 3)
    authority = url[start + 3 : end_match.start() if end_match else len(url)]
    if not authority or "@" in authority or _BAD_TEXT.search(authority):
        return None
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            return None
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            return None
        port_text: str | None = after[1:] if after else None
    else:
        host, colon, tail = authority.partition(":")
        port_text = tail if colon else None
    port: int | None
    if port_text is None:
        port = DEFAULT_PORTS.get(scheme)
    else:
        if not _PORT.fullmatch(port_text):
            return None
        port = int(port_text)
        if not 1 <= port <= 65535:
            return None
    try:
        host = normalize_host(host)
    except ValueError:
        return None
    return scheme, host, port


class HostMatcher:
    """``matcher(url) -> bool``: does any of the patterns allow this URL's host?

    Built by :func:`compile_hosts`. Hosts are looked up by exact name and by each
    parent domain (for ``*.`` patterns); answers are cached per ``scheme://authority``
    (bounded, cleared when full). Thread-safe.
    """

    __slots__ = ("_any", "_cache", "_cache_size", "_exact", "_suffix", "patterns")

    def __init__(self, patterns: Iterable[HostPattern], *, cache_size: int = CACHE_SIZE) -> None:
        self.patterns: tuple[HostPattern, ...] = tuple(dict.fromkeys(patterns))
        self._exact: dict[str, list[HostPattern]] = {}
        self._suffix: dict[str, list[HostPattern]] = {}
        self._any: list[HostPattern] = []
        for p in self.patterns:
            if p.host is None:
                self._any.append(p)
            else:
                table = self._suffix if p.subdomains else self._exact
                table.setdefault(p.host, []).append(p)
        self._cache: dict[str, bool] = {}
        self._cache_size = cache_size

    def __call__(self, url: str) -> bool:
        start = url.find("://")
        end = _AUTHORITY_END.search(url, start + 3) if start > 0 else None
        key = url if end is None else url[: end.start()]
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        return self._decide(key)

    def _decide(self, key: str) -> bool:
        parts = split_url(key) if isinstance(key, str) else None
        result = parts is not None and self.allows(*parts)
        if self._cache_size and len(key) <= CACHED_LENGTH:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = result
        return result

    def allows(self, scheme: str, host: str, port: int | None) -> bool:
        """Does any pattern allow ``scheme://host:port`` (already canonical)?"""
        for p in self._exact.get(host, ()):
            if p.matches(scheme, host, port):
                return True
        if self._suffix and not host.startswith("["):
            dot = host.find(".")
            while dot >= 0:
                for p in self._suffix.get(host[dot + 1 :], ()):
                    if p.matches(scheme, host, port):
                        return True
                dot = host.find(".", dot + 1)
        return any(p.matches(scheme, host, port) for p in self._any)

    @property
    def everything(self) -> bool:
        """True when one pattern allows every URL (``*://*:*``)."""
        return any(p.scheme is None and p.host is None and p.ports is None for p in self.patterns)

    def __repr__(self) -> str:
        return f"HostMatcher({[str(p) for p in self.patterns]!r})"


def compile_hosts(
    patterns: Iterable[HostPattern | str], *, cache_size: int = CACHE_SIZE
) -> HostMatcher:
    """Parse (when given text) and compile network host patterns into a HostMatcher."""
    return HostMatcher(
        (p if isinstance(p, HostPattern) else HostPattern.parse(p) for p in patterns),
        cache_size=cache_size,
    )
