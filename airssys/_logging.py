"""Where airssys's own log lines go: quiet by default, never on stdout, never floods.

airssys logs with structlog. When the embedding application has configured
structlog (``structlog.configure(...)``), every airssys logger follows that
configuration. Otherwise airssys uses its own small pipeline, set with
:func:`configure_logging`: warnings and errors only, one line each, on stderr (or a
stream you pass, or the standard library's ``logging`` when ``stdlib=True``), with
long values truncated. Nothing airssys does calls ``structlog.configure``: the
application's own structlog defaults are left alone.

Values that come from outside (a guest's log line, an error string quoting a
payload) are also truncated where they are logged (:func:`truncate`), so a 4 MiB
error string never reaches a log whole, whatever the configuration.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import IO, Any, Final, Literal

import structlog

__all__ = ("LEVELS", "AirssysLogger", "Throttle", "configure_logging", "get_logger", "truncate")

Level = Literal["trace", "debug", "info", "warning", "error", "critical"]
LEVELS: Final[dict[str, int]] = {
    "trace": logging.DEBUG - 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_METHOD_LEVEL: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}
DEFAULT_MAX_VALUE: Final = 512


def truncate(value: object, limit: int = DEFAULT_MAX_VALUE) -> str:
    """``value`` as text of at most about ``limit`` characters, saying how long it was."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


class _Settings:
    __slots__ = ("json", "level", "max_value", "stdlib", "stream")

    def __init__(self) -> None:
        self.level = logging.WARNING
        self.json = False
        self.stream: IO[str] | None = None
        self.stdlib = False
        self.max_value = DEFAULT_MAX_VALUE


class _Extras:
    """Processors added to the pipeline (trace ids, while a system traces): adding or
    removing one rebuilds the chain."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[Any] = []

    def append(self, processor: Any) -> None:
        with _chain_lock:
            self._items.append(processor)
            _changed()

    def remove(self, processor: Any) -> None:
        with _chain_lock:
            self._items.remove(processor)
            _changed()

    def __contains__(self, processor: object) -> bool:
        return processor in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


_settings: Final = _Settings()
_write_lock: Final = threading.Lock()
_chain_lock: Final = threading.Lock()
# airssys's own pipeline, one bound logger per name, built at its first line and
# dropped when configure_logging or the extra processors change it
_loggers: Final[dict[str, Any]] = {}
_chain: list[Any] | None = None  # the processors they share (a new list when rebuilt)
_extra_processors: Final = _Extras()  # e.g. trace ids, while a system traces


def _changed() -> None:
    """The pipeline changed (the caller holds ``_chain_lock``): build it anew. A
    logger already handed out keeps the chain it was built with."""
    global _chain
    _loggers.clear()
    _chain = None


def configure_logging(
    level: Level | str | int = "warning",
    *,
    json: bool = False,
    stream: IO[str] | None = None,
    stdlib: bool = False,
    max_value: int = DEFAULT_MAX_VALUE,
) -> None:
    """Set airssys's own log pipeline (used while structlog itself is unconfigured).

    ``level``: trace, debug, info, warning (default), error or critical, or a
    ``logging`` level number. ``json``: one JSON object per line instead of
    ``key=value`` text. ``stream``: where lines go (default: ``sys.stderr`` at the
    time of each line). ``stdlib``: hand each rendered line to
    ``logging.getLogger(<airssys logger name>)`` instead, so the application's
    logging handlers decide. ``max_value``: longest value kept whole.
    """
    if isinstance(level, str):
        key = level.lower()
        if key not in LEVELS:
            raise ValueError(f"unknown log level {level!r}; accepted: {', '.join(LEVELS)}")
        number = LEVELS[key]
    elif isinstance(level, int) and not isinstance(level, bool):
        number = level
    else:
        raise TypeError(f"log level must be a name or a number, got {level!r}")
    if max_value < 16:
        raise ValueError(f"max_value must be at least 16 characters, got {max_value}")
    with _chain_lock:
        _settings.level = number
        _settings.json = json
        _settings.stream = stream
        _settings.stdlib = stdlib
        _settings.max_value = max_value
        _changed()


def _truncate_values(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    limit = _settings.max_value
    for key, value in event.items():
        if isinstance(value, str) and len(value) > limit:
            event[key] = truncate(value, limit)
    return event


class _Sink:
    """The end of airssys's own pipeline: a stream, or the stdlib logger of that name."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def msg(self, message: str) -> None:
        if _settings.stdlib:
            logging.getLogger(self._name).log(_settings.level, message)
            return
        stream = _settings.stream or sys.stderr
        with _write_lock:
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = failure = msg


def _pipeline(name: str) -> Any:
    """The bound logger of airssys's own pipeline for ``name``: built at its first
    line, with the one processor chain, until configure_logging changes them."""
    global _chain
    logger = _loggers.get(name)
    if logger is None:
        with _chain_lock:
            logger = _loggers.get(name)
            if logger is None:
                if _chain is None:
                    _chain = _processors()
                logger = structlog.wrap_logger(_Sink(name), processors=_chain, logger_name=name)
                logger = _loggers[name] = logger.bind()
    return logger


def _processors() -> list[Any]:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if _settings.json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _truncate_values,
        *_extra_processors._items,
    ]
    if _settings.json:
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    return processors


class AirssysLogger:
    """A structlog-shaped logger: ``bind``, ``debug`` ... ``exception``.

    Resolved at each call: the application's structlog configuration when there
    is one, airssys's own quiet pipeline otherwise.
    """

    __slots__ = ("_context", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}

    def bind(self, **values: Any) -> AirssysLogger:
        return AirssysLogger(self._name, {**self._context, **values})

    def enabled(self, method: str) -> bool:
        """Would a line at this level be written? (always True under the app's config)."""
        return structlog.is_configured() or _METHOD_LEVEL[method] >= _settings.level

    def _emit(self, method: str, event: str, values: dict[str, Any]) -> None:
        if structlog.is_configured():
            target = structlog.get_logger(self._name)
        elif _METHOD_LEVEL[method] >= _settings.level:
            target = _pipeline(self._name)
        else:
            return
        if self._context:
            values = {**self._context, **values}
        getattr(target, method)(event, **values)

    def debug(self, event: str, **values: Any) -> None:
        self._emit("debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._emit("info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._emit("warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        self._emit("error", event, values)

    def exception(self, event: str, **values: Any) -> None:
        values.setdefault("exc_info", True)
        self._emit("error", event, values)


def get_logger(name: str) -> AirssysLogger:
    """The logger airssys modules use (``airssys.<part>``)."""
    return AirssysLogger(name)


class Throttle:
    """Log the first ``burst`` events per ``window`` seconds; count the rest and summarise.

    For events that can arrive in floods (dead letters, failed tells): a flood
    becomes ``burst`` lines plus one summary per window, with counts by kind.
    Thread-safe. :meth:`flush` writes the summary of a window that is still open.
    """

    _KINDS_KEPT: Final = 20

    def __init__(
        self, logger: AirssysLogger, event: str, *, burst: int = 10, window: float = 10.0
    ) -> None:
        self._logger = logger
        self._event = event
        self._burst = burst
        self._window = window
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._passed = 0
        self._held: dict[str, int] = {}

    def __call__(
        self, kind: str, *, method: str = "warning", event: str | None = None, **values: Any
    ) -> None:
        summary = None
        with self._lock:
            now = time.monotonic()
            if now - self._started >= self._window:
                summary = self._take()
                self._started, self._passed = now, 0
            emit = self._passed < self._burst
            if emit:
                self._passed += 1
            else:
                key = kind if len(self._held) < self._KINDS_KEPT or kind in self._held else "other"
                self._held[key] = self._held.get(key, 0) + 1
        if summary:
            self._write(summary)
        if emit:
            getattr(self._logger, method)(event or self._event, **values)

    def _take(self) -> dict[str, int]:
        held, self._held = self._held, {}
        return held

    def _write(self, held: dict[str, int]) -> None:
        total = sum(held.values())
        kinds = ", ".join(f"{truncate(kind, 80)} x{count}" for kind, count in held.items())
        self._logger.warning(
            f"{self._event}: {total} more not logged", window_s=self._window, by_kind=kinds
        )

    def flush(self) -> None:
        with self._lock:
            held = self._take()
        if held:
            self._write(held)
