"""Record and replay what a component's host calls answered (durable components).

A durable instance has a :class:`Recorder`. Every host import it calls goes
through :meth:`Recorder.call`, with a name and its arguments:

* live: the call runs; its result (what the guest receives, an ``err`` included)
  is appended to the message's inputs, and the call (name and arguments) is folded
  into the message's effects digest;
* replay: the call does not run (no message is sent, nothing is written, no HTTP
  request or process is made); the result recorded for it is returned instead, and
  the call is folded into the digest all the same. A call other than the one
  recorded at that point, or one more than were recorded, is a divergence.

Calls that only make a host-side handle (opening a bucket) run in replay too, so
that the handles the guest holds afterwards exist (``always`` below).

Recorded values are the guest-visible results: bytes, str, int, bool, None,
lists, tuples and ``wasmtime.component.Variant`` nested in any way; they are kept
as CBOR (tuples and variants with tags of their own).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any, Final

import cbor2
from wasmtime import component as wc

from ..errors import ReplayDivergence as ReplayDivergence

__all__ = ("Recorder", "ReplayDivergence", "decode_inputs", "encode_inputs")

_TUPLE: Final = 4000
_VARIANT: Final = 4001
_LIST: Final = 4002  # tagged too: cbor2 decodes an array inside a tag as a tuple


def _tagged(value: Any) -> Any:
    if isinstance(value, tuple):
        return cbor2.CBORTag(_TUPLE, [_tagged(v) for v in value])
    if isinstance(value, list):
        return cbor2.CBORTag(_LIST, [_tagged(v) for v in value])
    if isinstance(value, wc.Variant):
        return cbor2.CBORTag(_VARIANT, [value.tag, _tagged(value.payload)])
    return value


def _untag(*args: Any) -> Any:
    # cbor2 5 calls tag_hook(decoder, tag), cbor2 6 tag_hook(tag, immutable)
    tag = next(arg for arg in args if isinstance(arg, cbor2.CBORTag))
    if tag.tag == _TUPLE:
        return tuple(tag.value)
    if tag.tag == _LIST:
        return list(tag.value)
    if tag.tag == _VARIANT:
        name, payload = tag.value
        return wc.Variant(name, payload)
    return tag


NO_CALLS: Final = hashlib.sha256().digest()
"""The effects digest of a message that made no host call."""


def encode_inputs(inputs: list[tuple[str, Any]]) -> bytes:
    if not inputs:
        return b""
    return cbor2.dumps([(name, _tagged(value)) for name, value in inputs])


def decode_inputs(data: bytes) -> list[tuple[str, Any]]:
    if not data:
        return []
    return [(name, value) for name, value in cbor2.loads(data, tag_hook=_untag)]


_LENGTH: Final = struct.Struct(">Q")


def _fold(digest: Any, name: str, args: tuple[Any, ...]) -> None:
    """Add one call to the effects digest: its name and arguments, each length-
    prefixed; a payload's bytes as they are (a repr of them would cost four times
    their size), anything else as its repr."""
    for part in (name, *args):
        data = (
            bytes(part)
            if isinstance(part, bytes | bytearray | memoryview)
            else repr(part).encode("utf-8", "backslashreplace")
        )
        digest.update(_LENGTH.pack(len(data)))
        digest.update(data)


class Recorder:
    """One durable instance's recorder (one message at a time, like the instance)."""

    __slots__ = ("_digest", "_inputs", "_position", "_recorded", "replaying", "strict")

    def __init__(self) -> None:
        self.replaying = False
        self.strict = True
        self._inputs: list[tuple[str, Any]] = []
        self._recorded: list[tuple[str, Any]] = []
        self._position = 0
        self._digest: Any = None

    def begin(self, recorded: list[tuple[str, Any]] | None = None, *, strict: bool = True) -> None:
        """Start a message: live (``recorded`` None) or replaying what was recorded
        (not ``strict``: fewer calls than were recorded is no divergence: a repaired
        journal's messages may take another path)."""
        self.replaying = recorded is not None
        self.strict = strict
        self._recorded = recorded or []
        self._position = 0
        self._inputs = []
        self._digest = None  # made at the first call: most messages make none

    def finish(self) -> tuple[list[tuple[str, Any]], bytes]:
        """The message's inputs and effects digest; in replay, every recorded input
        must have been asked for."""
        if self.replaying and self.strict and self._position != len(self._recorded):
            left = self._recorded[self._position][0]
            raise ReplayDivergence(
                f"replay diverged: the component made fewer host calls than were "
                f"recorded (next recorded: {left})"
            )
        digest = self._digest
        return self._inputs, NO_CALLS if digest is None else digest.digest()

    def call(
        self, name: str, args: tuple[Any, ...], run: Callable[[], Any], *, always: bool = False
    ) -> Any:
        """``run()``'s result live; the recorded one in replay (``always``: run it in
        replay too, and check it gives the recorded result)."""
        digest = self._digest
        if digest is None:
            digest = self._digest = hashlib.sha256()
        _fold(digest, name, args)
        if not self.replaying:
            value = run()
            self._inputs.append((name, value))
            return value
        if self._position >= len(self._recorded):
            raise ReplayDivergence(
                f"replay diverged: the component called {name} where nothing more was recorded"
            )
        recorded_name, value = self._recorded[self._position]
        self._position += 1
        if recorded_name != name:
            raise ReplayDivergence(
                f"replay diverged: the component called {name} where {recorded_name} was recorded"
            )
        if always:
            fresh = run()
            if fresh != value:
                raise ReplayDivergence(
                    f"replay diverged: {name} gave {fresh!r:.80} where {value!r:.80} was recorded"
                )
        return value
