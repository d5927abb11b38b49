"""The main log's levels, with supervisord's names and tags."""

from __future__ import annotations

from enum import IntEnum


class LogLevel(IntEnum):
    """Main-log levels with supervisord's names; higher is more severe."""

    BLATHER = 3
    TRACE = 5
    DEBUG = 10
    INFO = 20
    WARN = 30
    ERROR = 40
    CRITICAL = 50

    @property
    def tag(self) -> str:
        """The four-letter tag supervisord writes in each log line."""
        return _LEVEL_TAGS[self]


_LEVEL_TAGS = {
    LogLevel.BLATHER: "BLAT",
    LogLevel.TRACE: "TRAC",
    LogLevel.DEBUG: "DEBG",
    LogLevel.INFO: "INFO",
    LogLevel.WARN: "WARN",
    LogLevel.ERROR: "ERRO",
    LogLevel.CRITICAL: "CRIT",
}
