"""The one rule for names, addresses, senders and topics that come from outside.

Every string that names an actor, an address or a sender passes through here at
the API boundary (``spawn``, ``spawn_component``, manifests, the broker), before it
can reach native code: wasmtime lowers these strings into a component's memory, and
a lone surrogate there once aborted the whole process.

* a **name** (one address segment, a component name): non-empty, at most
  ``MAX_NAME`` characters, not ``.`` or ``..``, no ``/``, no NUL or other control
  characters, no lone surrogates;
* an **address**: ``/`` followed by names joined by ``/`` (``/sup/echo``), at most
  ``MAX_ADDRESS`` characters in all;
* a **sender**: any non-empty text of at most ``MAX_ADDRESS`` characters with no
  control characters or lone surrogates (an address, or a label such as ``cli``);
* a **topic**: dot-separated non-empty segments with the same character rule;
* a **component name** (:data:`COMPONENT_NAME`, a manifest's ``component.name``):
  also a name, and stricter: lowercase letters, digits, ``-`` and ``_``, starting
  with a letter or digit;
* a **node name** (:data:`NODE_NAME`): stricter, since it names a directory and a
  file: 1 to 64 ASCII letters, digits, ``.``, ``-`` or ``_``, starting with a letter
  or digit.

A refusal is an :class:`~airssys.errors.InvalidName` (a ``ValueError``) naming the
rule that was broken and what would be accepted.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import InvalidName

__all__ = (
    "BAD_CHAR",
    "COMPONENT_NAME",
    "COMPONENT_NAME_RULE",
    "MAX_ADDRESS",
    "MAX_NAME",
    "NODE_NAME",
    "NODE_NAME_RULE",
    "check_address",
    "check_name",
    "check_sender",
    "check_topic",
    "is_node_name",
)

MAX_NAME: Final = 255
MAX_ADDRESS: Final = 1024
BAD_CHAR: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 and C1 control characters, DEL, and the surrogate range (only lone ones reach a
str): never in a name, nor in text read from a file (manifests, settings)."""
_NAME_RULE: Final = (
    "a name is 1 to 255 characters, not '.' or '..', with no '/', "
    "no control characters and no lone surrogates"
)
COMPONENT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)
"""A component's name (also a valid name), matched with ``fullmatch``."""
COMPONENT_NAME_RULE: Final = (
    "lowercase letters, digits, '-' or '_', starting with a letter or digit"
)
# a node's name is a directory and a file name: stricter than the actor-name rule
NODE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
"""A node's name, matched with ``fullmatch`` (:func:`is_node_name`)."""
NODE_NAME_RULE: Final = (
    "1 to 64 ASCII letters, digits, '.', '-' or '_', starting with a letter or digit"
)


def _clip(value: str, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} characters)"


def _check_chars(value: str, what: str, rule: str) -> None:
    bad = BAD_CHAR.search(value)
    if bad is not None:
        char = bad.group()
        kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
        raise InvalidName(
            f"{what} {_clip(value)} holds {kind} ({char!r} at index {bad.start()}); {rule}"
        )


def check_name(name: object, what: str = "actor name") -> str:
    """Return ``name`` when it is a valid single name, else raise InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"{what} must be a string, got {type(name).__name__}; {_NAME_RULE}")
    if not name:
        raise InvalidName(f"{what} is empty; {_NAME_RULE}")
    if len(name) > MAX_NAME:
        raise InvalidName(f"{what} {_clip(name)} is longer than {MAX_NAME} characters")
    if name in (".", ".."):
        raise InvalidName(f"{what} {name!r} is reserved; {_NAME_RULE}")
    if "/" in name:
        raise InvalidName(f"{what} {_clip(name)} contains '/'; {_NAME_RULE}")
    _check_chars(name, what, _NAME_RULE)
    return name


def check_address(address: object, what: str = "address") -> str:
    """Return ``address`` when it is ``/name[/name...]``, else raise InvalidName."""
    rule = "an address is '/' followed by names joined by '/' (e.g. '/sup/echo')"
    if not isinstance(address, str):
        raise InvalidName(f"{what} must be a string, got {type(address).__name__}; {rule}")
    if len(address) > MAX_ADDRESS:
        raise InvalidName(f"{what} {_clip(address)} is longer than {MAX_ADDRESS} characters")
    if not address.startswith("/"):
        raise InvalidName(f"{what} {_clip(address)} does not start with '/'; {rule}")
    for segment in address[1:].split("/"):
        check_name(segment, f"segment {_clip(segment)} of {what} {_clip(address)}:")
    return address


def check_sender(sender: object, what: str = "sender") -> str | None:
    """Return ``sender`` (None allowed) when it is printable text of sane length."""
    if sender is None:
        return None
    rule = f"a sender is 1 to {MAX_ADDRESS} characters with no control characters"
    if not isinstance(sender, str):
        raise InvalidName(f"{what} must be a string or None, got {type(sender).__name__}")
    if not sender or len(sender) > MAX_ADDRESS:
        raise InvalidName(f"{what} {_clip(sender)} has {len(sender)} characters; {rule}")
    _check_chars(sender, what, rule)
    return sender


def check_topic(topic: object, what: str = "topic") -> str:
    """Return ``topic`` when it is dot-separated non-empty segments of valid text."""
    rule = "a topic is dot-separated non-empty segments (e.g. 'orders.eu.created')"
    if not isinstance(topic, str):
        raise InvalidName(f"{what} must be a string, got {type(topic).__name__}; {rule}")
    if not topic or len(topic) > MAX_ADDRESS:
        raise InvalidName(f"{what} {_clip(topic)} must be 1 to {MAX_ADDRESS} characters")
    if any(not segment for segment in topic.split(".")):
        raise InvalidName(f"{what} {_clip(topic)} has an empty segment; {rule}")
    _check_chars(topic, what, rule)
    return topic


def is_node_name(value: object) -> bool:
    """Is ``value`` a valid node name (:data:`NODE_NAME_RULE`)?"""
    return isinstance(value, str) and NODE_NAME.fullmatch(value) is not None
