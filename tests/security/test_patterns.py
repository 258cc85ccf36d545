"""Address and topic patterns: '*' is one segment, '#' any number; matching and covering."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airssys.broker import topic_matches
from airssys.security import ADDRESS, TOPIC, SegmentPattern, compile_patterns, covered_by, covers


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("/app/*", "/app/echo", True),
        ("/app/*", "/app", False),
        ("/app/*", "/app/a/b", False),
        ("/app/#", "/app", True),
        ("/app/#", "/app/echo", True),
        ("/app/#", "/app/a/b/c", True),
        ("/app/#", "/application", False),
        ("/app/echo", "/app/echo", True),
        ("/app/echo", "/app/echo2", False),
        ("/#", "/anything/at/all", True),
        ("/*/echo", "/sup/echo", True),
        ("/*/echo", "/echo", False),
        ("/#/echo", "/echo", True),
        ("/#/echo", "/a/b/echo", True),
        ("/#/echo", "/a/b/echo/x", False),
    ],
)
def test_address_patterns(pattern: str, resource: str, expected: bool) -> None:
    assert compile_patterns([pattern], ADDRESS)(resource) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("orders.*", "orders.eu", True),
        ("orders.*", "orders", False),
        ("orders.*", "orders.eu.created", False),
        ("orders.#", "orders", True),
        ("orders.#", "orders.eu.created", True),
        ("orders.#", "ordersx", False),
        ("#", "anything.at.all", True),
        ("*.created", "orders.created", True),
        ("#.created", "created", True),
        ("orders.eu", "orders.eu", True),
    ],
)
def test_topic_patterns(pattern: str, resource: str, expected: bool) -> None:
    assert compile_patterns([pattern], TOPIC)(resource) is expected


def test_star_is_one_segment_and_hash_is_any_number() -> None:
    star = compile_patterns(["a.*"], TOPIC)
    hash_ = compile_patterns(["a.#"], TOPIC)
    assert [star(t) for t in ("a", "a.b", "a.b.c")] == [False, True, False]
    assert [hash_(t) for t in ("a", "a.b", "a.b.c")] == [True, True, True]


@pytest.mark.parametrize("resource", ["", "/", "app/x", "/app//x", "/app/x/", "/app/..", "/a\x00b"])
def test_invalid_addresses_match_nothing_even_under_everything(resource: str) -> None:
    assert not compile_patterns(["/#"], ADDRESS)(resource)


@pytest.mark.parametrize("resource", ["", ".", "a..b", ".a", "a.", "a\nb"])
def test_invalid_topics_match_nothing_even_under_everything(resource: str) -> None:
    assert not compile_patterns(["#"], TOPIC)(resource)


def test_literal_wildcard_characters_in_a_resource_are_only_text() -> None:
    """A topic named 'orders.#' is one literal segment '#', not a wildcard."""
    matcher = compile_patterns(["orders.eu"], TOPIC)
    assert not matcher("orders.#")
    assert compile_patterns(["orders.*"], TOPIC)("orders.#")


@pytest.mark.parametrize(
    ("text", "sep", "fragment"),
    [
        ("", ADDRESS, "empty"),
        ("app/*", ADDRESS, "does not start with '/'"),
        ("/", ADDRESS, "empty segment"),
        ("/app//x", ADDRESS, "empty segment"),
        ("/app/", ADDRESS, "empty segment"),
        ("/app/a#", ADDRESS, "mixes a wildcard"),
        ("/app/a*", ADDRESS, "mixes a wildcard"),
        ("/app/..", ADDRESS, "reserved"),
        ("", TOPIC, "empty"),
        ("orders..x", TOPIC, "empty segment"),
        ("orders.", TOPIC, "empty segment"),
        ("orders.#x", TOPIC, "mixes a wildcard"),
        ("orders.e\x00u", TOPIC, "control character"),
    ],
)
def test_invalid_patterns_name_the_accepted_syntax(text: str, sep: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as caught:
        SegmentPattern.parse(text, sep)
    assert "'*' (exactly one segment)" in str(caught.value) or "longer" in str(caught.value)


def test_a_pattern_must_be_text() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        SegmentPattern.parse(42, TOPIC)


def test_an_unknown_separator_is_refused() -> None:
    with pytest.raises(ValueError, match="separator"):
        SegmentPattern.parse("a:b", ":")


def test_many_patterns_compile_into_one_matcher() -> None:
    matcher = compile_patterns(["/app/*", "/svc/echo", "/logs/#", "/svc/echo"], ADDRESS)
    assert len(matcher.patterns) == 3  # duplicates dropped
    assert matcher("/app/x") and matcher("/svc/echo") and matcher("/logs/a/b")
    assert not matcher("/svc/other")
    assert not matcher.everything
    assert compile_patterns(["/x", "/#"], ADDRESS).everything


def test_an_empty_matcher_matches_nothing() -> None:
    matcher = compile_patterns([], ADDRESS)
    assert not matcher("/app")


def test_the_cache_stays_bounded_and_answers_stay_right() -> None:
    matcher = compile_patterns(["/app/*"], ADDRESS, cache_size=8)
    for round_ in range(3):
        for i in range(50):
            assert matcher(f"/app/{i}")
            assert not matcher(f"/other/{i}")
        assert len(matcher._cache) <= 8, round_


def test_long_resources_are_decided_but_not_cached() -> None:
    matcher = compile_patterns(["/app/#"], ADDRESS)
    long_address = "/app" + "/x" * 150
    assert matcher(long_address)
    assert long_address not in matcher._cache


def test_the_matcher_agrees_with_the_broker_on_topics() -> None:
    tokens = ["a", "b", "*", "#"]
    patterns = [".".join(c) for n in range(1, 4) for c in itertools.product(tokens, repeat=n)]
    topics = [".".join(c) for n in range(1, 5) for c in itertools.product("abz", repeat=n)]
    for pattern in patterns:
        matcher = compile_patterns([pattern], TOPIC)
        for topic in topics:
            assert matcher(topic) == topic_matches(pattern, topic), (pattern, topic)


# --- covering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ceiling", "declared", "expected"),
    [
        ("orders.#", "orders.*", True),
        ("orders.#", "orders.eu.#", True),
        ("orders.#", "orders", True),
        ("orders.*", "orders.#", False),  # '#' also matches 'orders' and deeper topics
        ("orders.*", "orders.eu", True),
        ("orders.*", "orders.*", True),
        ("orders.eu", "orders.*", False),
        ("#", "anything.#", True),
        ("*.#", "#", True),  # the empty topic does not exist
        ("#.*", "*.#", True),
        ("*.*", "#", False),
        ("a.#.b", "a.*.b", True),
        ("a.*.b", "a.#.b", False),
    ],
)
def test_topic_covering(ceiling: str, declared: str, expected: bool) -> None:
    assert covers(ceiling, declared, TOPIC) is expected


@pytest.mark.parametrize(
    ("ceiling", "declared", "expected"),
    [
        ("/#", "/app/#", True),
        ("/app/#", "/app/*", True),
        ("/app/#", "/app/*/x", True),
        ("/app/*", "/app/#", False),
        ("/app/*", "/app/echo", True),
        ("/app/echo", "/app/*", False),
        ("/app/#", "/other", False),
    ],
)
def test_address_covering(ceiling: str, declared: str, expected: bool) -> None:
    assert covers(ceiling, declared, ADDRESS) is expected


def test_ceilings_cover_together() -> None:
    assert covered_by(["orders", "orders.*"], "orders.#", TOPIC) is False
    assert covered_by(["orders", "orders.*", "orders.*.#"], "orders.#", TOPIC)
    assert covered_by(["a.*", "a"], "a", TOPIC)
    assert not covered_by([], "a", TOPIC)


def test_segment_pattern_methods() -> None:
    pattern = SegmentPattern.parse("orders.#", TOPIC)
    assert pattern.matches("orders.eu") and not pattern.matches("other")
    assert pattern.covers("orders.*") and not pattern.covers("other.*")
    assert str(pattern) == "orders.#"
    assert not pattern.is_literal and not pattern.is_everything


def test_tangled_patterns_are_refused_not_granted_and_quickly() -> None:
    """Past a fixed budget the answer is 'not covered' (it refuses, never grants)."""
    ceiling = "#.a" + ".*" * 30
    declared = "#.b.#.a" + ".*" * 30  # covered in truth, but too costly to prove
    assert covers(ceiling, declared, TOPIC) is False
    assert covers(ceiling, ceiling, TOPIC)


# --- properties -------------------------------------------------------------------------

_segments = st.sampled_from(["a", "b", "*", "#"])
_patterns = st.lists(_segments, min_size=1, max_size=4).map(".".join)
_topics = st.lists(st.sampled_from(["a", "b", "z"]), min_size=1, max_size=7).map(".".join)


@settings(max_examples=300, deadline=None)
@given(_patterns, _patterns, st.lists(_topics, min_size=1, max_size=30))
def test_covering_is_sound(ceiling: str, declared: str, topics: list[str]) -> None:
    """covers(c, d) implies every topic d matches is matched by c."""
    if covers(ceiling, declared, TOPIC):
        c = compile_patterns([ceiling], TOPIC)
        d = compile_patterns([declared], TOPIC)
        for topic in topics:
            assert not d(topic) or c(topic), (ceiling, declared, topic)


@settings(max_examples=200, deadline=None)
@given(_patterns, _patterns)
def test_covering_is_complete(ceiling: str, declared: str) -> None:
    """When covers(c, d) is False, some short topic matched by d is not matched by c."""
    if not covers(ceiling, declared, TOPIC):
        c = compile_patterns([ceiling], TOPIC)
        d = compile_patterns([declared], TOPIC)
        topics = (".".join(t) for n in range(1, 7) for t in itertools.product("abz", repeat=n))
        assert any(d(t) and not c(t) for t in topics), (ceiling, declared)


@settings(max_examples=200, deadline=None)
@given(st.lists(_segments, min_size=1, max_size=4), _topics)
def test_addresses_and_topics_match_alike(segments: list[str], topic: str) -> None:
    address = "/" + topic.replace(".", "/")
    assert compile_patterns(["/" + "/".join(segments)], ADDRESS)(address) == compile_patterns(
        [".".join(segments)], TOPIC
    )(topic)
