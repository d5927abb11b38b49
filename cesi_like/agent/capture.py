"""Reading a child's stdout/stderr pipes into its log files, without blocking the loop.

Each pipe gets an `add_reader` callback that reads everything available in one go (pipes are
enlarged in spawn.py) and appends it to the channel's RotatingFile. A pipe is read until EOF, even
after its process was reaped, so output written just before exit (or by a grandchild still
holding the pipe) is never lost (supervisord's issue #57).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from .config import AUTO, ChannelConfig
from .logs import RotatingFile, strip_ansi

READ_SIZE = 1 << 18
ERROR_REPORT_INTERVAL = 60.0

Listener = Callable[[bytes], None]


class Channel:
    """One output channel (stdout or stderr) of one process: its log file and its followers."""

    def __init__(
        self,
        name: str,
        config: ChannelConfig,
        path: str | None,
        strip: bool,
        syslog: Callable[[str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        private: bool = False,
    ) -> None:
        self.name = name
        # AUTO logs are created 0600, as supervisord's mkstemp makes them: they live in a
        # shared directory (childlogdir, /tmp by default)
        self.mode = 0o600 if private else 0o644
        self.config = config
        self.path = path  # resolved path (AUTO already turned into a file name), or None
        self.strip = strip
        self.file: RotatingFile | None = None
        self.listeners: list[Listener] = []
        self.syslog = syslog  # `*_syslog=true`: each complete line also goes there
        self._syslog_partial = b""
        self.on_error = on_error
        self._last_error_report = -ERROR_REPORT_INTERVAL

    def open(self) -> None:
        """Create/open the log file if this channel has one and it is not open yet."""
        if self.file is None and self.path is not None:
            self.file = RotatingFile(self.path, self.config.maxbytes, self.config.backups,
                                     self.mode)

    def write(self, data: bytes) -> None:
        if self.strip:
            data = strip_ansi(data)
        if self.path is not None:
            try:
                if self.file is None:
                    self.open()
                assert self.file is not None
                self.file.write(data)
            except OSError as exc:  # a full disk must not stop the capture (or the daemon)
                self._report(exc)
        if self.syslog is not None:
            self._to_syslog(data)
        for listener in list(self.listeners):
            listener(data)

    def _report(self, exc: OSError) -> None:
        now = time.monotonic()
        if self.on_error is not None and now - self._last_error_report >= ERROR_REPORT_INTERVAL:
            self._last_error_report = now
            self.on_error(f"cannot write the {self.name} log {self.path}: {exc.strerror}; "
                          "its output is dropped until writing works again")

    def _to_syslog(self, data: bytes) -> None:
        assert self.syslog is not None
        *lines, self._syslog_partial = (self._syslog_partial + data).split(b"\n")
        for line in lines:
            if line:
                self.syslog(line.decode("utf-8", "replace"))

    def reopen(self) -> None:
        if self.file is not None:
            self.file.open()

    def clear(self) -> None:
        if self.path is None:
            return
        self.open()
        assert self.file is not None
        self.file.clear()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def channel_path(config: ChannelConfig, auto_path: Callable[[], str]) -> str | None:
    if config.logfile is None:
        return None
    if config.logfile == AUTO:
        return auto_path()
    return config.logfile


class PipeReader:
    """Feeds one non-blocking pipe fd into a Channel until EOF."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        channel: Channel,
        on_close: Callable[[PipeReader], None],
    ) -> None:
        self.loop = loop
        self.fd = fd
        self.channel = channel
        self.on_close = on_close
        loop.add_reader(fd, self.read_available)

    def read_available(self) -> None:
        """Read until the pipe is empty; close on EOF or error."""
        while self.fd >= 0:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self.channel.write(data)
            if len(data) < READ_SIZE:
                return

    def close(self) -> None:
        if self.fd < 0:
            return
        self.loop.remove_reader(self.fd)
        os.close(self.fd)
        self.fd = -1
        self.on_close(self)
