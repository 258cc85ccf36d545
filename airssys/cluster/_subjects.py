"""NATS subjects for airssys addresses, topics and nodes.

A NATS subject is ``.``-separated tokens; a token cannot hold ``.``, ``*``, ``>``
or whitespace. airssys names can hold almost anything, so every address segment,
topic segment and node name is *encoded* into a token with a fixed safe alphabet:

* the bytes ``A-Z a-z 0-9 - _`` stand for themselves;
* every other byte of the UTF-8 text becomes ``%XX`` (two upper-case hex digits).

So ``/app/echo`` is ``airssys.addr.app.echo``, ``/app/my.echo`` is
``airssys.addr.app.my%2Eecho`` and the topic ``orders.eu created`` is
``airssys.topic.orders.eu%20created``. The encoding depends only on the text,
never on the node, so every node derives the same subject. A subject whose
encoding would be longer than :data:`MAX_SUBJECT` characters is replaced by
``airssys.addr.~h.<sha256 of the address>`` (topics: ``airssys.topic.~long``, the
topic then travels in the ``airssys-topic`` header); ``~`` never appears in an
encoded token, so these cannot collide with a real name.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

__all__ = (
    "ADDRESS_PREFIX",
    "LONG_TOPIC",
    "MAX_SUBJECT",
    "NODE_PREFIX",
    "TOPIC_PREFIX",
    "address_subject",
    "decode_token",
    "encode_token",
    "header_text",
    "header_value",
    "node_subject",
    "topic_of_subject",
    "topic_subject",
)

ADDRESS_PREFIX: Final = "airssys.addr"
TOPIC_PREFIX: Final = "airssys.topic"
NODE_PREFIX: Final = "airssys.node"
LONG_TOPIC: Final = f"{TOPIC_PREFIX}.~long"
MAX_SUBJECT: Final = 2000
_SAFE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def encode_token(text: str) -> str:
    """``text`` as one NATS subject token (see the module docstring)."""
    return "".join(
        chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass")
    )


def decode_token(token: str) -> str:
    """The inverse of :func:`encode_token`."""
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "%":
            raw.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(token[i]))
            i += 1
    return raw.decode("utf-8", "surrogatepass")


@functools.lru_cache(maxsize=4096)
def address_subject(address: str) -> str:
    """``/app/echo`` -> ``airssys.addr.app.echo`` (remembered: every message to an
    address on another node needs it)."""
    segments = address[1:].split("/") if address.startswith("/") else [address]
    subject = ".".join([ADDRESS_PREFIX, *(encode_token(s) for s in segments)])
    if len(subject) > MAX_SUBJECT:
        digest = hashlib.sha256(address.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{ADDRESS_PREFIX}.~h.{digest}"
    return subject


@functools.lru_cache(maxsize=4096)
def topic_subject(topic: str) -> str:
    """``orders.eu.created`` -> ``airssys.topic.orders.eu.created`` (or LONG_TOPIC)."""
    subject = ".".join([TOPIC_PREFIX, *(encode_token(s) for s in topic.split("."))])
    return subject if len(subject) <= MAX_SUBJECT else LONG_TOPIC


def topic_of_subject(subject: str) -> str:
    """The airssys topic a ``airssys.topic.*`` subject carries (not LONG_TOPIC)."""
    tokens = subject.split(".")[2:]
    return ".".join(decode_token(t) for t in tokens)


def node_subject(node: str) -> str:
    """A node's heartbeat subject: ``airssys.node.<node>``."""
    return f"{NODE_PREFIX}.{encode_token(node)}"


def header_value(text: str) -> str:
    """Text as a NATS header value (ASCII, no surrounding spaces): percent-encoded."""
    return "".join(
        chr(b) if 0x21 <= b <= 0x7E and b != 0x25 else f"%{b:02X}"
        for b in text.encode("utf-8", "surrogatepass")
    )


def header_text(value: str) -> str:
    """The inverse of :func:`header_value`."""
    return value if "%" not in value else decode_token(value)
