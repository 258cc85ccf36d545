"""The global options (``--log-level``, ``--quiet``, ``--json-logs``, ``--debug``) as
the root callback saw them, for every command module to read."""

from __future__ import annotations

from enum import StrEnum

from .._logging import configure_logging

__all__ = ("LogLevel", "Settings")


class LogLevel(StrEnum):
    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class Settings:
    """The global options, as the root callback saw them."""

    debug = False
    quiet = False
    json_logs = False
    level: LogLevel | None = None  # given with --log-level

    @classmethod
    def log_level(cls, default: LogLevel = LogLevel.WARNING) -> LogLevel:
        if cls.level is not None:
            return cls.level
        if cls.debug:
            return LogLevel.DEBUG
        if cls.quiet:
            return max(LogLevel.ERROR, default, key=list(LogLevel).index)
        return default

    @classmethod
    def apply(cls, default: LogLevel = LogLevel.WARNING) -> None:
        configure_logging(cls.log_level(default).value, json=cls.json_logs)
