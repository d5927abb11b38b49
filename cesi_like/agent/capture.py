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

BEGIN = b"<!--XSUPERVISOR:BEGIN-->"
END = b"<!--XSUPERVISOR:END-->"


def _prefix_at_end(data: bytes, token: bytes) -> int:
    """How many bytes at the end of `data` could start `token` (supervisord keeps them back
    until the next read says whether the token is complete)."""
    for size in range(min(len(token) - 1, len(data)), 0, -1):
        if data.endswith(token[:size]):
            return size
    return 0


class CaptureMode:
    """`*_capture_maxbytes`: output between BEGIN and END is a PROCESS_COMMUNICATION event's
    body instead of log data, as supervisord's POutputDispatcher splits it (the tokens
    themselves go nowhere; the body keeps at most about `maxbytes`, dropping from the
    front as supervisord's BoundIO does)."""

    def __init__(self, maxbytes: int, on_message: Callable[[bytes], None]) -> None:
        self.maxbytes = maxbytes
        self.on_message = on_message
        self.capturing = False
        self.pending = b""
        self.body = b""

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        """(captured, bytes) pieces in order; messages are handed to `on_message` at END."""
        self.pending += data
        pieces: list[tuple[bool, bytes]] = []
        while True:
            token = END if self.capturing else BEGIN
            if len(self.pending) <= len(token):
                return pieces
            data, self.pending = self.pending, b""
            before, found, after = data.partition(token)
            if not found:
                keep = _prefix_at_end(data, token)
                if keep:
                    self.pending, data = data[-keep:], data[:-keep]
                self._piece(pieces, data)
                return pieces
            self._piece(pieces, before)
            if self.capturing:
                self.on_message(self.body)
                self.body = b""
            self.capturing = not self.capturing
            self.pending = after
            if not after:
                return pieces

    def _piece(self, pieces: list[tuple[bool, bytes]], data: bytes) -> None:
        if not data:
            return
        if self.capturing:
            if len(self.body) + len(data) > self.maxbytes:
                self.body = self.body[len(data):]
            self.body += data
        pieces.append((self.capturing, data))


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
        self.capture: CaptureMode | None = None  # set when capture_maxbytes > 0
        # every piece of output, captured or not (events, debug lines in the main log)
        self.observers: list[Listener] = []
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
        if self.capture is None:
            self._log(data)
            return
        for captured, piece in self.capture.feed(data):
            if not captured:
                self._log(piece)
            else:
                for observer in list(self.observers):
                    observer(piece)

    def _log(self, data: bytes) -> None:
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
        for observer in list(self.observers):
            observer(data)

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
