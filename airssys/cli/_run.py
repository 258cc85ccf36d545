"""``airssys run``: send messages to one component, one at a time, as they arrive.

Messages come from the command line or, when none is given, from stdin, one per
line, streamed: each line is sent as soon as it is read and its reply printed
before the next line is read, so ``airssys run`` works as a filter in a pipe or
interactively. Only replies go to stdout (one line each); a line that fails is
named on stderr (``line 3: HandlerError: ...``) and the rest still run; the exit
code is 1 when any line failed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .. import codec
from .._logging import get_logger, truncate
from .._progress import about, phase
from ..errors import AirssysError, CodecError
from ..node import message_value

if TYPE_CHECKING:
    from ..build import BuildResult

__all__ = ("build_reported", "prepare", "run_component")

_log = get_logger("airssys.cli")
_CHUNK: Final = 65536
_AHEAD: Final = 256  # stdin lines read ahead of the one being answered
_REASON_LIMIT: Final = 500


def build_reported(path: Path, *, force: bool = False) -> BuildResult:
    """``build_component``, shown as a progress phase with the build cache's word."""
    from ..build import build_component
    from ..manifest import load_manifest

    with phase("build", load_manifest(path).name) as step:
        result = build_component(path, force=force)
        step.detail = (
            "cached: these sources were built before with this toolchain"
            if result.cached
            else "rebuilt (--force)"
            if force
            else "not in the build cache: built with componentize-py"
        )
    return result


def prepare(component: Path) -> None:
    """Refuse what cannot be run, and build a Python component first (cached).

    Runs before the event loop starts so that Ctrl-C stops a build at once.
    """
    from ..build import BuilderMissing, python_source_hint
    from ..manifest import load_manifest

    if component.suffix == ".py":
        raise AirssysError(python_source_hint(component, "run"))
    if not component.exists():
        raise AirssysError(f"{component}: no such file or directory")
    if not (component.is_dir() or component.suffix == ".toml"):
        return
    manifest = load_manifest(component)
    if manifest.source is None:
        return
    try:
        build_reported(manifest.path)
    except BuilderMissing as exc:
        if not manifest.wasm.is_file():
            raise
        _log.warning(
            "the builder is not installed: running the existing wasm, which may be older "
            "than its sources",
            wasm=str(manifest.wasm),
            builder=truncate(str(exc), 200),
        )


def _show(reply: bytes) -> str:
    """A reply as one line: decoded and shown as JSON, else the bytes' repr."""
    try:
        value = codec.decode(reply)
    except CodecError:
        return repr(reply)
    if isinstance(value, bytes):
        return repr(value)
    return json.dumps(value, default=repr)


def _value(line: bytes, codec_name: str) -> object:
    if codec_name == "raw":
        return line
    text = line.decode("utf-8")  # UnicodeDecodeError is a ValueError: the line fails
    return message_value(text)  # JSON, else the text; broken JSON is refused


async def _argv_lines(messages: Sequence[str]) -> AsyncIterator[tuple[str, bytes]]:
    for n, message in enumerate(messages, 1):
        yield f"message {n}", message.encode("utf-8", "surrogateescape")


async def _stdin_lines() -> AsyncIterator[tuple[str, bytes]]:
    """stdin's lines as they arrive, read by a daemon thread.

    A daemon thread reading the file descriptor directly: it holds no Python lock
    while it waits, so an interrupted run exits at once even though stdin stays
    open (an executor thread would be waited for at shutdown).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, bytes] | BaseException | None] = asyncio.Queue(_AHEAD)

    def put(item: tuple[int, bytes] | BaseException | None) -> bool:
        try:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
        except (RuntimeError, concurrent.futures.CancelledError):
            return False  # the loop has stopped: nobody is reading any more
        return True

    def reader() -> None:
        number, pending = 0, b""
        try:
            while chunk := os.read(0, _CHUNK):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    number += 1
                    if not put((number, line)):
                        return
            if pending:
                put((number + 1, pending))
        except OSError as exc:
            put(exc)
            return
        put(None)

    threading.Thread(target=reader, name="airssys-run-stdin", daemon=True).start()
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise AirssysError(f"reading stdin failed: {item}")
        number, line = item
        yield f"line {number}", line.removesuffix(b"\r")


def _name_of(component: Path) -> str:
    """The manifest's component name (what errors and the address show), else "main"."""
    from ..manifest import load_manifest

    if component.is_dir() or component.suffix == ".toml":
        return load_manifest(component).name
    return "main"


async def run_component(
    component: Path,
    messages: Sequence[str],
    *,
    codec_name: str,
    timeout: float,
    quiet: bool,
    trust: str = "unknown",
    policy: Path | None = None,
    data_dir: Path | None = None,
) -> int:
    """Send every message (argv, else stdin's lines); returns how many failed."""
    from ..actors import open_system

    def note(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    failed = sent = 0
    async with open_system(policy=policy, data_dir=data_dir) as system:
        name = _name_of(component)
        with about(f"/run/{name}"):  # a compile here is shown as this component's
            spec = system.component_spec(name, component, trust=trust)
        await system.spawn_supervisor([spec], name="run")
        address = f"/run/{name}"
        if messages:
            source = _argv_lines(messages)
        else:
            if sys.stdin is not None and sys.stdin.isatty() and not quiet:
                note("reading messages from stdin, one per line (Ctrl-D ends)")
            source = _stdin_lines()
        async for label, line in source:
            if not line.strip():
                continue
            sent += 1
            try:
                payload = codec.encode(_value(line, codec_name), codec_name)
                reply: Any = await system.ask(address, payload, timeout=timeout)
            except (AirssysError, TimeoutError, ValueError) as exc:
                failed += 1
                reason = truncate(str(exc) or "(no message)", _REASON_LIMIT)
                note(f"{label}: {type(exc).__name__}: {' '.join(reason.splitlines())}")
                continue
            if reply is None:
                if not quiet:
                    note(f"{label}: (no reply)")
                continue
            sys.stdout.write(_show(reply) + "\n")
            sys.stdout.flush()
    if failed:
        note(f"{failed} of {sent} message(s) failed")
    return failed
