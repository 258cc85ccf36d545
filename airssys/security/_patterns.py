"""Segment patterns for addresses and topics: ``*`` is one segment, ``#`` any number.

An **address pattern** is ``/`` followed by segments joined by ``/``; a **topic
pattern** is segments joined by ``.``. Each segment is

* ``*``: exactly one segment (``/app/*`` matches ``/app/echo``, not ``/app`` or
  ``/app/a/b``);
* ``#``: any number of segments, zero or more (``/app/#`` matches ``/app``,
  ``/app/echo`` and ``/app/a/b``; ``/#`` and ``#`` match everything);
* anything else: that segment literally (following :mod:`airssys.names`).

A wildcard is always a whole segment: ``a*`` and ``a#`` are refused, not read as
literals, so a pattern never means something other than it looks like.

:func:`compile_patterns` turns a list of patterns into a :class:`Matcher` (exact
literals in a frozenset, every wildcard pattern in one regex alternation, a
bounded decision cache). :func:`covers` and :func:`covered_by` decide pattern
subsumption exactly (every resource the declared pattern matches is matched by the
ceiling), which the policy uses to bound declarations and the broker to check a
subscription pattern against subscribe grants.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..errors import InvalidName
from ..names import MAX_ADDRESS, check_address, check_name, check_topic
from ..units import show as _clip

__all__ = (
    "ADDRESS",
    "ANY",
    "ONE",
    "TOPIC",
    "Matcher",
    "SegmentPattern",
    "compile_patterns",
    "covered_by",
    "covers",
)

ADDRESS: Final = "/"
TOPIC: Final = "."
ONE: Final = "*"
ANY: Final = "#"
CACHE_SIZE: Final = 4096
# resources longer than this are matched every time, never cached (bounds the cache's memory)
CACHED_LENGTH: Final = 256
MAX_SEGMENTS: Final = 128
# product states explored by covered_by before it gives up and answers False (not covered)
_COVER_BUDGET: Final = 2_000

_RULES: Final = {
    ADDRESS: (
        "an address pattern is '/' followed by segments joined by '/', each a name, "
        "'*' (exactly one segment) or '#' (any number of segments, zero or more), "
        "e.g. '/app/echo', '/app/*', '/app/#'"
    ),
    TOPIC: (
        "a topic pattern is segments joined by '.', each a word, '*' (exactly one "
        "segment) or '#' (any number of segments, zero or more), "
        "e.g. 'orders.eu.created', 'orders.*', 'orders.#'"
    ),
}
_WHAT: Final = {ADDRESS: "address pattern", TOPIC: "topic pattern"}


def _rule(sep: str) -> str:
    try:
        return _RULES[sep]
    except KeyError:
        raise ValueError(
            f"separator must be {ADDRESS!r} (addresses) or {TOPIC!r} (topics), got {sep!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class SegmentPattern:
    """A parsed address or topic pattern. Build with :meth:`parse`."""

    text: str
    sep: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: object, sep: str) -> SegmentPattern:
        """Validate ``text`` as a pattern over ``sep`` ('/' or '.'); ValueError if not."""
        rule = _rule(sep)
        what = _WHAT[sep]
        if not isinstance(text, str):
            raise ValueError(f"{what} must be a string, got {type(text).__name__}; {rule}")
        if not text:
            raise ValueError(f"empty {what}; {rule}")
        if len(text) > MAX_ADDRESS:
            raise ValueError(f"{what} {_clip(text)} is longer than {MAX_ADDRESS} characters")
        if sep == ADDRESS:
            if not text.startswith(ADDRESS):
                raise ValueError(f"{what} {_clip(text)} does not start with '/'; {rule}")
            body = text[1:]
        else:
            body = text
        segments = tuple(body.split(sep))
        if len(segments) > MAX_SEGMENTS:
            raise ValueError(f"{what} {_clip(text)} has more than {MAX_SEGMENTS} segments")
        for segment in segments:
            if not segment:
                raise ValueError(f"{what} {_clip(text)} has an empty segment; {rule}")
            if segment in (ONE, ANY):
                continue
            if ONE in segment or ANY in segment:
                raise ValueError(
                    f"{what} {_clip(text)}: segment {_clip(segment)} mixes a wildcard with "
                    f"other characters; '*' and '#' stand alone as whole segments; {rule}"
                )
            try:
                if sep == ADDRESS:
                    check_name(segment, f"segment {_clip(segment)}")
                else:
                    check_topic(segment, f"segment {_clip(segment)}")
            except InvalidName as exc:
                raise ValueError(f"{what} {_clip(text)}: {exc}; {rule}") from None
        return cls(text, sep, segments)

    @property
    def is_literal(self) -> bool:
        """True when the pattern has no wildcard (it matches exactly one resource)."""
        return ONE not in self.segments and ANY not in self.segments

    @property
    def is_everything(self) -> bool:
        """True for ``/#`` and ``#`` (and anything made of ``#`` only)."""
        return all(segment == ANY for segment in self.segments)

    def regex(self) -> str:
        """A regex source matching the resource *with a leading separator* (for topics,
        the caller prefixes '.'; addresses already start with '/')."""
        sep = re.escape(self.sep)
        one = f"{sep}[^{sep}]+"
        parts = []
        for segment in self.segments:
            if segment == ONE:
                parts.append(one)
            elif segment == ANY:
                parts.append(f"(?:{one})*")
            else:
                parts.append(re.escape(self.sep + segment))
        return "".join(parts)

    def matches(self, resource: str) -> bool:
        """Does this pattern match ``resource``? (Compiles on every call: use a Matcher.)"""
        return compile_patterns((self,), self.sep, cache_size=0)(resource)

    def covers(self, declared: SegmentPattern | str) -> bool:
        """Does this pattern match every resource ``declared`` matches?"""
        return covered_by((self,), declared, self.sep)

    def __str__(self) -> str:
        return self.text


class Matcher:
    """``matcher(resource) -> bool``: does any of the patterns match ``resource``?

    Built by :func:`compile_patterns`. Exact literals are one frozenset lookup; the
    rest is one regex, its answers kept in a bounded cache (cleared when full).
    A resource that is not a valid address (or topic) under :mod:`airssys.names`
    matches nothing. Thread-safe.
    """

    __slots__ = ("_cache", "_cache_size", "_exact", "_prefix", "_regex", "patterns", "sep")

    def __init__(
        self, patterns: Iterable[SegmentPattern], sep: str, *, cache_size: int = CACHE_SIZE
    ) -> None:
        _rule(sep)
        self.sep = sep
        self.patterns: tuple[SegmentPattern, ...] = tuple(dict.fromkeys(patterns))
        for pattern in self.patterns:
            if pattern.sep != sep:
                raise ValueError(f"pattern {pattern.text!r} is not over separator {sep!r}")
        self._exact = frozenset(p.text for p in self.patterns if p.is_literal)
        wild = [p.regex() for p in self.patterns if not p.is_literal]
        self._regex = re.compile("|".join(f"(?:{r})" for r in wild), re.DOTALL) if wild else None
        self._prefix = "" if sep == ADDRESS else sep
        self._cache: dict[str, bool] = {}
        self._cache_size = cache_size

    def __call__(self, resource: str) -> bool:
        if resource in self._exact:
            return True
        hit = self._cache.get(resource)
        if hit is not None:
            return hit
        return self._decide(resource)

    def _decide(self, resource: str) -> bool:
        if not isinstance(resource, str):
            return False
        regex = self._regex
        if regex is None:
            result = False
        else:
            try:
                if self.sep == ADDRESS:
                    check_address(resource)
                else:
                    check_topic(resource)
            except InvalidName:
                result = False
            else:
                result = regex.fullmatch(self._prefix + resource) is not None
        if self._cache_size and len(resource) <= CACHED_LENGTH:
            cache = self._cache
            if len(cache) >= self._cache_size:
                cache.clear()
            cache[resource] = result
        return result

    @property
    def everything(self) -> bool:
        """True when one of the patterns matches every valid resource."""
        return any(p.is_everything for p in self.patterns)

    def __repr__(self) -> str:
        return f"Matcher({[p.text for p in self.patterns]!r}, {self.sep!r})"


def compile_patterns(
    patterns: Iterable[SegmentPattern | str], sep: str, *, cache_size: int = CACHE_SIZE
) -> Matcher:
    """Parse (when given text) and compile ``patterns`` over ``sep`` into a Matcher."""
    return Matcher(
        (p if isinstance(p, SegmentPattern) else SegmentPattern.parse(p, sep) for p in patterns),
        sep,
        cache_size=cache_size,
    )


# --- subsumption ----------------------------------------------------------------------
#
# A pattern is a small automaton over segments: position i means "tokens[:i] consumed";
# a literal or '*' moves on by one segment, '#' loops and may be skipped. The declared
# pattern is covered when no word it accepts leads the ceiling patterns (together) to
# reject. Segments that no pattern names behave alike, so one stand-in (_OTHER) is
# enough for all of them, which keeps the alphabet finite.

_OTHER: Final = object()
_States = frozenset[tuple[int, int]]


def _closure(pats: tuple[tuple[str, ...], ...], states: Iterable[tuple[int, int]]) -> _States:
    seen: set[tuple[int, int]] = set()
    stack = list(states)
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        k, i = state
        tokens = pats[k]
        if i < len(tokens) and tokens[i] == ANY:
            stack.append((k, i + 1))
    return frozenset(seen)


def _step(pats: tuple[tuple[str, ...], ...], states: _States, symbol: object) -> _States:
    moved = []
    for k, i in states:
        tokens = pats[k]
        if i < len(tokens):
            token = tokens[i]
            if token == ANY:
                moved.append((k, i))
            elif token in (ONE, symbol):
                moved.append((k, i + 1))
    return _closure(pats, moved)


def _accepts(pats: tuple[tuple[str, ...], ...], states: _States) -> bool:
    return any(i == len(pats[k]) for k, i in states)


def covered_by(
    ceilings: Iterable[SegmentPattern | str], declared: SegmentPattern | str, sep: str
) -> bool:
    """Is every resource ``declared`` matches matched by at least one of ``ceilings``?

    Exact (the ceilings count together: ``a.*`` and ``a`` cover ``a`` and ``a.x``).
    Patterns are parsed when given as text (ValueError when invalid). In the rare case
    of patterns too tangled to decide within a fixed budget, the answer is False: not
    covered, which refuses rather than grants.
    """
    d = declared if isinstance(declared, SegmentPattern) else SegmentPattern.parse(declared, sep)
    cs = [c if isinstance(c, SegmentPattern) else SegmentPattern.parse(c, sep) for c in ceilings]
    if d.sep != sep or any(c.sep != sep for c in cs):
        raise ValueError(f"every pattern must be over separator {sep!r}")
    if not cs:
        return False
    if any(c.is_everything or c.segments == d.segments for c in cs):
        return True
    if d.is_literal:
        return compile_patterns(cs, sep, cache_size=0)(d.text)
    dp = (d.segments,)
    cp = tuple(c.segments for c in cs)
    literals = {s for p in (d, *cs) for s in p.segments if s not in (ONE, ANY)}
    alphabet: list[object] = [*sorted(literals), _OTHER]
    start = (_closure(dp, [(0, 0)]), _closure(cp, [(k, 0) for k in range(len(cp))]))
    seen: set[tuple[_States, _States]] = set()
    todo = [start]  # the empty resource is no address or topic: check after each segment
    while todo:
        d_states, c_states = todo.pop()
        for symbol in alphabet:
            d_next = _step(dp, d_states, symbol)
            if not d_next:
                continue
            c_next = _step(cp, c_states, symbol)
            if not c_next:  # every position of a pattern can still reach its end
                return False
            if _accepts(dp, d_next) and not _accepts(cp, c_next):
                return False
            pair = (d_next, c_next)
            if pair not in seen:
                if len(seen) >= _COVER_BUDGET:
                    return False
                seen.add(pair)
                todo.append(pair)
    return True


def covers(ceiling: SegmentPattern | str, declared: SegmentPattern | str, sep: str) -> bool:
    """Does ``ceiling`` match every resource ``declared`` matches?"""
    return covered_by((ceiling,), declared, sep)
