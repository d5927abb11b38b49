"""Log files: size-bounded rotation that never splits a line it can keep whole, and the main log.

supervisord writes a chunk and only then checks the size, so its files overrun `maxbytes` and
lines get cut across two files (its issue #749). Here a chunk is split at the last newline that
still fits: every file stays within `maxbytes` and every byte lands exactly once.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from .loglevel import LogLevel

_ANSI_ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def strip_ansi(data: bytes) -> bytes:
    """Remove ANSI escape sequences (colours, cursor moves) from program output."""
    return _ANSI_ESCAPE.sub(b"", data)


class RotatingFile:
    """An append-only file that rotates to `path.1` … `path.N` when it would exceed `maxbytes`.

    Writes go straight to the file descriptor (no userspace buffer), so what a program wrote is
    on disk as soon as it was read from the pipe, and a crash of the agent loses nothing.

    A write that fails (a full disk) takes back the line it left unfinished, and the rest of
    that line is dropped when writing works again: output is lost while the disk is full,
    but no half line is ever glued to the next one.

    Every byte written has a position: its number in everything this object wrote, across
    rotations. `locate` says which file, if any still does, holds a position, so a reader
    slower than the writer (`tail -f`) can follow from the files at its own pace.
    """

    def __init__(self, path: str, maxbytes: int = 0, backups: int = 0,
                 mode: int = 0o644) -> None:
        self.path = path
        self.maxbytes = maxbytes
        self.backups = backups
        self.mode = mode  # for a file it creates (umask applies)
        self._fd = -1
        self._size = 0
        self._line_start = 0  # the size just after the last newline written
        self._torn = False  # a failed write lost part of a line: drop up to its newline
        self._inode = -1
        self._start = 0  # the position of the current file's first byte
        self._backup_starts: deque[int] = deque(maxlen=max(backups, 0))  # path.1's, path.2's...
        self.open()

    def open(self) -> None:
        """(Re)open the file for appending; used at start and on SIGUSR2."""
        before, end = self._inode, self.end
        self._open()
        if self._inode != before and before >= 0:  # someone else moved it (logrotate)
            self._start = end  # what the new file holds comes after what we wrote
            self._backup_starts.clear()  # and the backups are not where rotate() put them

    def _open(self) -> None:
        self.close()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           self.mode)
        stat = os.fstat(self._fd)
        self._inode = stat.st_ino
        self._size = self._line_start = stat.st_size

    @property
    def end(self) -> int:
        """The position after the last byte written."""
        return self._start + self._size

    def locate(self, position: int) -> tuple[str, int, int] | int:
        """Where the byte at `position` is kept: (file, offset in it, bytes from there to the
        end of that file). If rotation or a clear removed it: the first position still kept."""
        if position >= self._start:
            return self.path, position - self._start, self.end - position
        end = self._start
        for index, start in enumerate(self._backup_starts, 1):
            if position >= start:
                return f"{self.path}.{index}", position - start, end - position
            end = start
        return self._backup_starts[-1] if self._backup_starts else self._start

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        """Append `data`, rotating first wherever the next piece would not fit. On OSError
        the file is left ending with a whole line."""
        if self._torn:  # the rest of the line a failed write took back
            end = data.find(b"\n")
            if end < 0:
                return
            data, self._torn = data[end + 1:], False
        if self._fd < 0:
            self.open()
        try:
            self._write(data)
        except OSError:
            self._take_back_partial_line()
            self._torn = not data.endswith(b"\n")
            raise

    def _take_back_partial_line(self) -> None:
        try:
            os.ftruncate(self._fd, self._line_start)
        except OSError:
            return  # the partial line stays; nothing else can be done about it
        self._size = self._line_start

    def _write(self, data: bytes) -> None:
        maxbytes = self.maxbytes
        begin, end = 0, len(data)
        while begin < end:
            if maxbytes <= 0:
                self._write_all(data, begin, end)
                return
            room = maxbytes - self._size
            if end - begin <= room:
                self._write_all(data, begin, end)
                return
            cut = data.rfind(b"\n", begin, begin + room) + 1 if room > 0 else 0
            if cut == 0 and self._size == 0:
                cut = begin + room  # one line longer than a whole file: split it hard
            if cut:
                self._write_all(data, begin, cut)
                begin = cut
            self.rotate()

    def _write_all(self, data: bytes, begin: int, end: int) -> None:
        """Write `data[begin:end]` whole, noting where its last complete line ends."""
        view = memoryview(data)
        while begin < end:
            try:
                written = os.write(self._fd, view[begin:end])
            except InterruptedError:
                continue
            newline = data.rfind(b"\n", begin, begin + written)
            if newline >= 0:
                self._line_start = self._size + newline - begin + 1
            self._size += written
            begin += written

    def rotate(self) -> None:
        """Shift `path.i` to `path.i+1`, `path` to `path.1`, start an empty `path`."""
        self.close()
        if self._backup_starts.maxlen:
            self._backup_starts.appendleft(self._start)
        self._start = self.end
        self._size = 0
        if self.backups > 0:
            for index in range(self.backups - 1, 0, -1):
                source = f"{self.path}.{index}"
                if os.path.exists(source):
                    os.replace(source, f"{self.path}.{index + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            _unlink(self.path)
        self._open()

    def clear(self) -> None:
        """Truncate the current file and delete its backups (clearProcessLogs / clearLog)."""
        self.close()
        self._backup_starts.clear()
        self._start = self.end
        self._size = 0
        for index in range(1, self.backups + 1):
            _unlink(f"{self.path}.{index}")
        with open(self.path, "wb"):
            pass
        self._open()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_last_second: list[object] = [None, ""]


def format_time(now: float) -> str:
    """supervisord's timestamp: `2024-05-01 12:00:00,123`, local time (strftime once a second)."""
    second = int(now)
    if _last_second[0] != second:
        _last_second[:] = [second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))]
    return f"{_last_second[1]},{int(now * 1000) % 1000:03d}"


class MainLog:
    """The daemon's own log: `<time> <LEVL> <message>` lines, as supervisord writes them."""

    def __init__(
        self,
        level: LogLevel = LogLevel.INFO,
        file: RotatingFile | None = None,
        echo: TextIO | None = None,
    ) -> None:
        self.level = level
        self.file = file
        self.echo = echo
        self.listeners: list[Callable[[bytes], None]] = []
        self._last_failure = -60.0

    def log(self, level: LogLevel, message: str) -> None:
        if level < self.level:
            return
        line = f"{format_time(time.time())} {level.tag} {message}\n"
        data = line.encode("utf-8", "backslashreplace")
        if self.file is not None:
            try:
                self.file.write(data)
            except OSError as exc:  # the daemon keeps running with its log unwritable
                now = time.monotonic()
                if now - self._last_failure >= 60:
                    self._last_failure = now
                    print(f"cesi-agentd: cannot write {self.file.path}: {exc.strerror}",
                          file=sys.stderr)
        for listener in list(self.listeners):  # after the file: followers read on from there
            listener(data)
        if self.echo is not None:
            try:
                self.echo.write(line)
                self.echo.flush()
            except (OSError, ValueError):
                self.echo = None

    def critical(self, message: str) -> None:
        self.log(LogLevel.CRITICAL, message)

    def error(self, message: str) -> None:
        self.log(LogLevel.ERROR, message)

    def warn(self, message: str) -> None:
        self.log(LogLevel.WARN, message)

    def info(self, message: str) -> None:
        self.log(LogLevel.INFO, message)

    def debug(self, message: str) -> None:
        self.log(LogLevel.DEBUG, message)

    def trace(self, message: str) -> None:
        self.log(LogLevel.TRACE, message)

    def blather(self, message: str) -> None:
        self.log(LogLevel.BLATHER, message)

    def reopen(self) -> None:
        if self.file is not None:
            self.file.open()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class BadArguments(ValueError):
    """A negative length, or a negative offset with a length (readLog's BAD_ARGUMENTS)."""


def read_range(path: str, offset: int, length: int) -> bytes:
    """supervisord's readFile: `offset` < 0 means the last |offset| bytes (length must be 0);
    length 0 means to the end. Raises BadArguments, or OSError when the file cannot be read."""
    with open(path, "rb") as handle:
        if offset < 0:
            if length:
                raise BadArguments(length)
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size + offset))
            return handle.read(-offset)
        if length < 0:
            raise BadArguments(length)
        handle.seek(offset)
        return handle.read(length) if length else handle.read()


def tail(path: str, offset: int, length: int) -> tuple[bytes, int, bool]:
    """supervisord's tailFile: up to `length` bytes from `offset`, the new offset (the file's
    size), and whether more than `length` bytes arrived since `offset` (overflow)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            overflow = size > offset + length
            if overflow:
                offset = size - 1
            if offset + length > size:
                if offset > size - 1:
                    length = 0
                offset = size - length
            offset, length = max(offset, 0), max(length, 0)
            handle.seek(offset)
            return (handle.read(length) if length else b""), size, overflow
    except OSError:
        return b"", offset, False
