"""Network hosts in Spin's grammar, and URLs read strictly enough to be checked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airssys.security import HostPattern, compile_hosts, host_covers, hosts_covered_by
from airssys.security._hosts import normalize_host, split_url


def allows(patterns: list[str], url: str) -> bool:
    return compile_hosts(patterns)(url)


# --- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("https://api.example.com", "https://api.example.com"),
        ("https://API.Example.COM", "https://api.example.com"),
        ("https://api.example.com/", "https://api.example.com"),  # trailing slash ignored
        ("https://api.example.com:443", "https://api.example.com"),
        ("https://api.example.com:8443", "https://api.example.com:8443"),
        ("http://example.com:443", "http://example.com:443"),
        ("HTTPS://example.com", "https://example.com"),
        ("https://*.example.org", "https://*.example.org"),
        ("https://*", "https://*"),
        ("*://*:*", "*://*:*"),
        ("*://example.com:*", "*://example.com:*"),
        ("redis://cache.internal:6379", "redis://cache.internal:6379"),
        ("http://localhost:5000..5010", "http://localhost:5000..5010"),
        ("http://localhost:7..7", "http://localhost:7"),
        ("http://192.0.2.1:8080", "http://192.0.2.1:8080"),
        ("http://[::1]", "http://[::1]"),
        ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://BÜCHER.example", "https://xn--bcher-kva.example"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("https://example.com.", "https://example.com"),
        ("https://*.bücher.example", "https://*.xn--bcher-kva.example"),
    ],
)
def test_patterns_parse_to_a_canonical_form(text: str, canonical: str) -> None:
    pattern = HostPattern.parse(text)
    assert str(pattern) == canonical
    assert HostPattern.parse(canonical) == pattern


def test_a_bare_star_is_refused_with_the_way_to_say_everything() -> None:
    with pytest.raises(ValueError, match=r"\*://\*:\*"):
        HostPattern.parse("*")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("example.com", "has no scheme: write 'https://example.com'"),
        ("", "empty"),
        ("https://example.com/api", "holds a path"),
        ("https://example.com//", "holds a path"),
        ("https://example.com?x=1", "holds a query"),
        ("https://example.com#top", "fragment"),
        ("https://user@example.com", "user information"),
        ("https://user:pw@example.com", "user information"),
        ("https://a.*.com", "leading '\\*.' label"),
        ("https://*example.com", "leading '\\*.' label"),
        ("https://*.*.example.com", "leading '\\*.' label"),
        ("redis://cache.internal", "needs a port"),
        ("*://example.com", "needs a port"),
        ("https://example.com:", "empty port"),
        ("https://example.com:0", "outside 1..65535"),
        ("https://example.com:65536", "outside 1..65535"),
        ("https://example.com:10..5", "runs backwards"),
        ("https://example.com:80-90", "not a port"),
        ("https://example.com:http", "not a port"),
        ("http://::1", "in brackets"),
        ("http://[::1", "unclosed"),
        ("http://[fe80::1%eth0]", "zone"),
        ("http://[::g]", "not an IPv6"),
        ("https://*.192.0.2.1", "not an IP address"),
        ("https://127.1", "dotted-decimal"),
        ("https://0x7f.0.0.1", "dotted-decimal"),
        ("https://2130706433", "dotted-decimal"),
        ("https://010.0.0.1", "dotted-decimal"),
        ("https://faß.de", "canonical form"),
        ("https://ex ample.com", "holds ' '"),
        ("https://example.com\\", "backslash"),
        ("https://-bad.example.com", "label"),
        ("https://exa%6dple.com", "label"),
        ("1https://example.com", "not a scheme"),
        ("https://" + "a" * 64 + ".com", "label"),
    ],
)
def test_bad_patterns_are_refused_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        HostPattern.parse(text)


def test_a_pattern_must_be_text() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        HostPattern.parse(443)


def test_refusals_say_what_to_write_instead() -> None:
    with pytest.raises(ValueError, match="write 'https://example.com'"):
        HostPattern.parse("https://example.com/v1/items")
    with pytest.raises(ValueError, match="write 'https://example.com'"):
        HostPattern.parse("https://me@example.com")


# --- matching URLs ----------------------------------------------------------------------


def test_a_url_is_checked_by_scheme_host_and_port() -> None:
    assert split_url("https://API.Example.com/v1/x?y") == ("https", "api.example.com", 443)
    assert split_url("http://example.com") == ("http", "example.com", 80)
    assert split_url("redis://cache:6379/0") == ("redis", "cache", 6379)
    assert split_url("redis://cache") == ("redis", "cache", None)
    assert allows(["https://api.example.com"], "https://API.Example.com/v1/x?y")


def test_a_subdomain_wildcard_matches_subdomains_at_any_depth_but_not_the_domain() -> None:
    patterns = ["https://*.example.com"]
    assert allows(patterns, "https://api.example.com")
    assert allows(patterns, "https://a.b.example.com/x")
    assert not allows(patterns, "https://example.com")
    assert not allows(patterns, "https://badexample.com")
    assert not allows(patterns, "https://example.com.evil.net")


def test_a_star_host_matches_every_host_on_its_scheme_and_port() -> None:
    patterns = ["https://*"]
    assert allows(patterns, "https://anything.example")
    assert allows(patterns, "https://192.0.2.1")
    assert allows(patterns, "https://[::1]")
    assert not allows(patterns, "http://anything.example")
    assert not allows(patterns, "https://anything.example:8443")


def test_everything_means_everything() -> None:
    matcher = compile_hosts(["*://*:*"])
    assert matcher.everything
    assert matcher("https://example.com") and matcher("redis://cache") and matcher("ftp://x:21")


def test_ports_and_ranges() -> None:
    patterns = ["http://localhost:5000..5010", "https://api.example.com:8443"]
    assert allows(patterns, "http://localhost:5000")
    assert allows(patterns, "http://localhost:5010/x")
    assert not allows(patterns, "http://localhost:5011")
    assert not allows(patterns, "http://localhost")  # port 80
    assert allows(patterns, "https://api.example.com:8443")
    assert not allows(patterns, "https://api.example.com")  # port 443


def test_default_ports_are_the_schemes() -> None:
    assert allows(["https://example.com"], "https://example.com:443/")
    assert not allows(["https://example.com"], "https://example.com:80/")
    assert allows(["http://example.com:80"], "http://example.com/")
    assert allows(["http://example.com:0080"], "http://example.com/")


def test_a_scheme_without_a_default_port_needs_a_port_in_the_url() -> None:
    assert not allows(["redis://cache:6379"], "redis://cache")
    assert allows(["redis://cache:*"], "redis://cache")
    assert allows(["redis://cache:6379"], "redis://cache:6379")


def test_wildcard_scheme_matches_any_scheme_on_its_port() -> None:
    patterns = ["*://example.com:443"]
    assert allows(patterns, "https://example.com")
    assert allows(patterns, "wss://example.com:443")
    assert not allows(patterns, "http://example.com")


def test_trailing_slash_in_the_grant_does_not_break_matching() -> None:
    assert allows(["https://example.com/"], "https://example.com/path")
    assert allows(["https://example.com/"], "https://example.com")


def test_ipv6_literals() -> None:
    patterns = ["http://[::1]:8000"]
    assert allows(patterns, "http://[::1]:8000/")
    assert allows(patterns, "http://[0:0::1]:8000/")
    assert not allows(patterns, "http://[::2]:8000/")
    assert not allows(patterns, "http://::1:8000/")
    assert not allows(patterns, "http://[fe80::1%25eth0]:8000/")


def test_ipv4_only_in_dotted_decimal() -> None:
    patterns = ["http://127.0.0.1:*"]
    assert allows(patterns, "http://127.0.0.1:8080")
    for url in ("http://127.1:8080", "http://2130706433:8080", "http://0x7f.0.0.1:8080"):
        assert not allows(patterns, url), url
    assert not allows(["https://*"], "https://127.1")


def test_uppercase_hosts_and_schemes_match() -> None:
    assert allows(["https://api.example.com"], "HTTPS://API.EXAMPLE.COM/")
    assert allows(["https://API.EXAMPLE.COM"], "https://api.example.com")


def test_idna_names_match_their_ascii_form_both_ways() -> None:
    assert allows(["https://bücher.example"], "https://xn--bcher-kva.example/")
    assert allows(["https://xn--bcher-kva.example"], "https://bücher.example/")
    assert allows(["https://xn--bcher-kva.example"], "https://BÜCHER.example/")
    assert allows(["https://*.bücher.example"], "https://shop.xn--bcher-kva.example")


def test_non_ascii_characters_that_lowercase_to_ascii_are_refused() -> None:
    kelvin = "\u212a"  # KELVIN SIGN lowercases to 'k'
    with pytest.raises(ValueError, match="Kelvin"):
        HostPattern.parse(f"https://{kelvin}elvin.example")
    assert not allows(["https://kelvin.example"], f"https://{kelvin}elvin.example/")
    assert not allows(["https://*"], f"https://{kelvin}elvin.b\u00fccher.example/")
    assert not allows(["*://*:*"], f"{kelvin}afka://broker:9092")


def test_non_canonical_unicode_hosts_match_nothing() -> None:
    """IDNA 2003 maps 'faß' to 'fass', IDNA 2008 to 'xn--fa-hia': never guess."""
    assert not allows(["https://fass.de"], "https://faß.de/")
    assert not allows(["https://*"], "https://faß.de/")
    assert not allows(["https://example.com"], "https://\uff45xample.com/")  # fullwidth e
    assert not allows(["https://*.example.com"], "https://a\u3002example.com/")  # ideographic stop


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com@evil.com",
        "https://example.com:443@evil.com/",
        "https://user:pw@example.com/",
        "https://evil.com\\@example.com",
        "https://evil.com\\.example.com",
        "https://exa mple.com",
        "https://exa\tmple.com",
        "https://%65xample.com",
        "https://example.com:99999",
        "https://example.com:-1",
        "https://example.com:",
        "https://",
        "https:/example.com",
        "example.com",
        "//example.com",
        "",
    ],
)
def test_userinfo_and_other_tricks_match_nothing(url: str) -> None:
    assert not allows(["https://example.com", "https://*.example.com"], url)


def test_the_host_is_where_the_authority_ends_not_later() -> None:
    assert not allows(["https://good.example"], "https://evil.com#@good.example")
    assert not allows(["https://good.example"], "https://evil.com?@good.example")
    assert allows(["https://good.example"], "https://good.example/a@b")


def test_trailing_dot_is_the_same_host() -> None:
    assert allows(["https://example.com"], "https://example.com./")
    assert normalize_host("Example.COM.") == "example.com"


def test_answers_are_cached_per_authority_and_bounded() -> None:
    matcher = compile_hosts(["https://*.example.com"], cache_size=4)
    for i in range(20):
        assert matcher(f"https://h{i}.example.com/path/{i}")
        assert not matcher(f"https://h{i}.example.net/")
        assert len(matcher._cache) <= 4
    matcher = compile_hosts(["https://*.example.com"])
    matcher("https://a.example.com/one")
    matcher("https://a.example.com/two?x")
    assert list(matcher._cache) == ["https://a.example.com"]


# --- covering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ceiling", "declared", "expected"),
    [
        ("*://*:*", "https://api.example.com", True),
        ("*://*:*", "redis://*:*", True),
        ("https://*", "https://api.example.com", True),
        ("https://*", "http://api.example.com", False),
        ("https://*", "https://api.example.com:8443", False),
        ("https://*.example.com", "https://api.example.com", True),
        ("https://*.example.com", "https://*.api.example.com", True),
        ("https://*.example.com", "https://*.example.com", True),
        ("https://*.example.com", "https://example.com", False),
        ("https://example.com", "https://*.example.com", False),
        ("https://api.example.com", "https://*.example.com", False),
        ("https://*.example.com", "https://*", False),
        ("http://localhost:5000..5010", "http://localhost:5003..5004", True),
        ("http://localhost:5000..5010", "http://localhost:5003..5011", False),
        ("http://localhost:*", "http://localhost:5003..5011", True),
        ("http://localhost:5000", "http://localhost:*", False),
        ("https://example.com", "*://example.com:443", False),
        ("https://*.example.com", "https://192.0.2.1", False),
        ("https://bücher.example", "https://xn--bcher-kva.example", True),
    ],
)
def test_host_covering(ceiling: str, declared: str, expected: bool) -> None:
    assert host_covers(ceiling, declared) is expected
    assert HostPattern.parse(ceiling).covers(HostPattern.parse(declared)) is expected


def test_port_ranges_of_several_ceilings_count_together() -> None:
    ceilings = ["http://localhost:80", "http://localhost:81..90", "http://other:91"]
    assert hosts_covered_by(ceilings, "http://localhost:80..90")
    assert not hosts_covered_by(ceilings, "http://localhost:80..91")
    assert not hosts_covered_by(
        ["http://localhost:80", "http://localhost:82"], "http://localhost:80..82"
    )
    assert not hosts_covered_by([], "http://localhost:80")


_hosts = st.sampled_from(
    ["example.com", "api.example.com", "a.b.example.com", "other.net", "[::1]"]
)
_host_patterns = st.sampled_from(
    ["*", "example.com", "*.example.com", "api.example.com", "*.b.example.com", "other.net"]
)
_schemes = st.sampled_from(["http", "https", "*"])
_ports = st.sampled_from(["", ":*", ":80", ":443", ":80..443", ":8000..8080", ":8080"])


@st.composite
def _pattern_texts(draw: st.DrawFn) -> str:
    scheme, host, port = draw(_schemes), draw(_host_patterns), draw(_ports)
    if scheme == "*" and not port:
        port = ":*"
    return f"{scheme}://{host}{port}"


@settings(max_examples=400, deadline=None)
@given(
    _pattern_texts(),
    _pattern_texts(),
    st.lists(
        st.tuples(st.sampled_from(["http", "https"]), _hosts, st.sampled_from([80, 443, 8080])),
        min_size=1,
        max_size=20,
    ),
)
def test_host_covering_is_sound(
    ceiling: str, declared: str, urls: list[tuple[str, str, int]]
) -> None:
    """covers(c, d) implies every URL d allows is allowed by c."""
    if host_covers(ceiling, declared):
        c, d = compile_hosts([ceiling]), compile_hosts([declared])
        for scheme, host, port in urls:
            url = f"{scheme}://{host}:{port}/x"
            assert not d(url) or c(url), (ceiling, declared, url)
