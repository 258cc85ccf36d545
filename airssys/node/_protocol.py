"""The control protocol: newline-delimited JSON over a Unix socket.

A request is one line holding a JSON object, ``{"op": "...", ...}``, of at most
:data:`MAX_LINE` bytes. The answer is one line: ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "<one line>", "type": "<ErrorClass>"}``. A streaming
request (``"follow": true``) is answered ``{"ok": true, "stream": true}``, then
one ``{"event": {...}}`` line per event, until the client closes the connection
or the node stops (its last line is then ``{"end": "<why>"}``). A request with
``"progress": true`` (update, rollback) gets ``{"progress": {...}}`` lines (a
phase's start and end, :class:`airssys._progress.ProgressEvent`) before its answer.

Every field is checked here, before the node acts on it (see :data:`OPS`): an
unknown op or field, a missing or mistyped one, a bad address (the rule of
:mod:`airssys.names`) is a :class:`ProtocolError` naming it and what is accepted.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .._logging import truncate
from ..codec import CODECS
from ..errors import InvalidName
from ..errors import ProtocolError as ProtocolError
from ..names import check_address, check_sender

__all__ = (
    "MAX_DEPTH",
    "MAX_LINE",
    "OPS",
    "STREAMING",
    "ProtocolError",
    "Request",
    "encode",
    "error_reply",
    "jsonable",
    "message_value",
    "ok_reply",
    "parse_request",
)

MAX_LINE: Final = 1024 * 1024
"""The longest request line, in bytes (the newline included)."""
MAX_TIMEOUT: Final = 300.0
MAX_LIMIT: Final = 100_000
MAX_DEPTH: Final = 200
"""The deepest nesting of lists and objects a JSON ``message`` may hold (the codecs
and the reply path each meet a recursion limit further down; this one is checked
first, so a deep message is a protocol error, never an internal one)."""
_ERROR_MAX: Final = 2000
CODEC_NAMES: Final = (*CODECS, "msgpack")


def _address(name: str, value: object) -> str:
    try:
        return check_address(value, name)
    except InvalidName as exc:
        raise ProtocolError(str(exc)) from None


def _message(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string (the message's text), got {_kind(value)}")
    return value


def _codec(name: str, value: object) -> str:
    if not isinstance(value, str) or value not in CODEC_NAMES:
        raise ProtocolError(
            f"{name} must be one of {', '.join(CODEC_NAMES)}, got {truncate(repr(value), 60)}"
        )
    return "messagepack" if value == "msgpack" else value


def _timeout(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{name} must be a number of seconds, got {_kind(value)}")
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise ProtocolError(f"{name} must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
    return float(value)


def _limit(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ProtocolError(f"{name} must be a whole number from 1 to {MAX_LIMIT}")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{name} must be true or false, got {_kind(value)}")
    return value


def _since(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"{name} must be a number (seconds since the epoch)")
    return float(value)


def _decision(name: str, value: object) -> str:
    if value not in ("grant", "deny"):
        raise ProtocolError(f"{name} must be 'grant' or 'deny', got {truncate(repr(value), 60)}")
    assert isinstance(value, str)
    return value


def _label(name: str, value: object) -> str:
    try:
        checked = check_sender(value, name)
    except InvalidName as exc:
        raise ProtocolError(str(exc)) from None
    if checked is None:
        raise ProtocolError(f"{name} must be a string")
    return checked


def _package(name: str, value: object) -> str:
    """``NAME``, ``NAME@VERSION`` or ``@VERSION`` (the running component's name)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 300 or not value.isprintable():
        raise ProtocolError(
            f"{name} must be NAME, NAME@VERSION or @VERSION of an installed package, "
            f"got {truncate(repr(value), 60)}"
        )
    return value


def _probation(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{name} must be a number of seconds, got {_kind(value)}")
    if not (math.isfinite(value) and 0 <= value <= 86400):
        raise ProtocolError(f"{name} must be from 0 to 86400 seconds")
    return float(value)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


Check = Callable[[str, object], Any]
# op -> {field: (check, required, default)}
OPS: Final[dict[str, dict[str, tuple[Check, bool, Any]]]] = {
    "ping": {},
    "status": {},
    "cluster": {},
    "list": {},
    "info": {"address": (_address, True, None)},
    "logs": {
        "component": (_address, False, None),
        "limit": (_limit, False, None),
        "follow": (_flag, False, False),
    },
    "audit": {
        "component": (_label, False, None),
        "decision": (_decision, False, None),
        "kind": (_label, False, None),
        "since": (_since, False, None),
        "limit": (_limit, False, None),
        "follow": (_flag, False, False),
    },
    "ask": {
        "address": (_address, True, None),
        "message": (_message, True, None),
        "codec": (_codec, False, "json"),
        "timeout": (_timeout, False, 5.0),
    },
    "send": {
        "address": (_address, True, None),
        "message": (_message, True, None),
        "codec": (_codec, False, "json"),
        "timeout": (_timeout, False, 5.0),
    },
    "stop": {"address": (_address, True, None)},
    "start": {"address": (_address, True, None)},
    "restart": {"address": (_address, True, None)},
    "update": {
        "address": (_address, True, None),
        "package": (_package, True, None),
        "probation": (_probation, False, 5.0),
        "progress": (_flag, False, False),
    },
    "rollback": {"address": (_address, True, None), "progress": (_flag, False, False)},
    "versions": {"address": (_address, True, None)},
}
STREAMING: Final = ("logs", "audit")


@dataclass(frozen=True, slots=True)
class Request:
    """A checked request: its op and every field (defaults filled in)."""

    op: str
    args: dict[str, Any]

    @property
    def streaming(self) -> bool:
        return self.op in STREAMING and bool(self.args.get("follow"))


def parse_request(line: bytes | str) -> Request:
    """One request line, checked; ProtocolError naming what is wrong."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"the request is longer than {MAX_LINE} bytes")
    try:
        data = json.loads(line)
    except RecursionError:
        raise ProtocolError("the request is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ProtocolError(f"the request is not valid JSON: {truncate(str(exc), 200)}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f'a request is a JSON object {{"op": ...}}, got {_kind(data)}')
    op = data.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(f"unknown op {truncate(repr(op), 60)}; accepted: {', '.join(OPS)}")
    fields = OPS[op]
    args: dict[str, Any] = {}
    for key in data:
        if key != "op" and key not in fields:
            accepted = ", ".join(fields) or "none"
            raise ProtocolError(
                f"op {op!r} takes no field {truncate(repr(key), 60)}; accepted: {accepted}"
            )
    for key, (check, required, default) in fields.items():
        if key not in data or data[key] is None:
            if required:
                raise ProtocolError(f"op {op!r} needs the field {key!r}")
            args[key] = default
            continue
        args[key] = check(key, data[key])
    if "message" in args and args.get("codec") != "raw":
        message_value(args["message"])  # refused here, before the node acts on it
    return Request(op, args)


_JSON_START: Final = ("{", "[", '"')


def message_value(text: str, name: str = "the message") -> Any:
    """What a message's text stands for: its value as JSON, else the text itself.

    Text that starts as JSON does (``{``, ``[`` or ``"``) but is not valid JSON is
    refused (a ProtocolError naming where it went wrong) rather than sent as a
    string; so is JSON nested more than :data:`MAX_DEPTH` deep.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        value, deep = None, True
    except json.JSONDecodeError as exc:
        if text.lstrip()[:1] not in _JSON_START:
            return text  # not JSON: the text itself
        raise ProtocolError(
            f"{name} is not valid JSON: {exc.msg.lower()} at line {exc.lineno} column "
            f"{exc.colno} (character {exc.pos + 1}) in {truncate(repr(text), 80)}; text "
            'that starts with {, [ or " must be JSON (--codec raw sends the text as bytes)'
        ) from None
    else:
        deep = _depth(value) > MAX_DEPTH
    if deep:
        raise ProtocolError(
            f"{name} is nested more than {MAX_DEPTH} lists or objects deep; send a flatter message"
        )
    return value


def _depth(value: Any) -> int:
    """How deep lists and objects nest in a decoded JSON value (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` (a decoded payload) as JSON can carry it: bytes become
    ``{"$bytes": "<base64>"}``, tuples lists, other keys and objects their repr."""
    if depth > 500:
        return truncate(repr(value), 200)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else repr(k)): jsonable(v, depth + 1) for k, v in value.items()
        }
    return truncate(repr(value), 2000)


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line (compact JSON, ASCII, never a newline inside)."""
    return json.dumps(message, ensure_ascii=True, separators=(",", ":"), default=repr).encode() + (
        b"\n"
    )


def ok_reply(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def one_line(text: str) -> str:
    return truncate(" ".join(text.split()), _ERROR_MAX)


def error_reply(error: BaseException | str, kind: str | None = None) -> dict[str, Any]:
    """``{"ok": false, "error": <one line>, "type": <class>}``."""
    if isinstance(error, BaseException):
        text = str(error) or type(error).__name__
        kind = kind or type(error).__name__
    else:
        text = error
    return {"ok": False, "error": one_line(text), "type": kind or "ProtocolError"}
