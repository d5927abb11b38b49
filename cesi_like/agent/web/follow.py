"""Following a log (`/logtail`, `/mainlogtail`: `tail -f`), at the reader's pace.

A follower starts `TAIL_START` bytes before the end, as supervisord's does. Once it has read to
the end it takes each chunk from the writer as it is written: no file reads while it keeps up.
If it falls `LIVE_BACKLOG` behind (its connection is slower than the program writes), it lets
go of the writer and reads the files from where it was, one `READ_SIZE` chunk at a time as its
connection takes them, and takes chunks from the writer again once it has caught up. Its
memory is bounded either way, and it is never cut off for being slow.

Only when rotation (or a clear) removed bytes it had not read does it skip them, saying so in
the stream with one line. supervisord follows the file too, but reads everything new in one
go, and jumps to a rotated file's successor without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from ..logs import RotatingFile

TAIL_START = 1024
"""Bytes of history a new follower gets first, as supervisord sends."""

LIVE_BACKLOG = 256 * 1024
"""Bytes taken from the writer and not yet sent, past which the follower reads the files."""

READ_SIZE = 64 * 1024

Listener = Callable[[bytes], None]


def skipped_notice(count: int) -> bytes:
    return (f"==> {count} bytes skipped: the log rotated before they were read <==\n"
            .encode())


async def follow(file: RotatingFile, listeners: list[Listener]) -> AsyncIterator[bytes]:
    """The last TAIL_START bytes of `file`, then everything written to it, until the reader
    leaves; `listeners` is where the writer hands each chunk (after writing it to `file`)."""
    position = max(file.end - TAIL_START, 0)
    at_line_start = True
    quiet = True  # the history of a new follower skips what rotated away without a notice
    while True:
        while position < file.end:  # from the files, at the reader's pace
            where = file.locate(position)
            if isinstance(where, int):  # removed before it was read: skip, and say so
                if not quiet:
                    yield (b"" if at_line_start else b"\n") + skipped_notice(where - position)
                    at_line_start = True
                position = where
                continue
            path, offset, length = where
            data = _read(path, offset, min(length, READ_SIZE))
            if not data:  # shorter than written: truncated by someone else
                position += length
                continue
            position += len(data)
            at_line_start = data.endswith(b"\n")
            yield data
        quiet = False
        async with contextlib.aclosing(_live(file, listeners)) as chunks:
            async for data, after in chunks:
                position = after  # where the files take over if it falls behind
                at_line_start = data.endswith(b"\n")
                yield data


async def _live(file: RotatingFile, listeners: list[Listener]
                ) -> AsyncGenerator[tuple[bytes, int], None]:
    """Chunks from the writer, each with the position after it, until LIVE_BACKLOG of them
    wait unsent: then the follower is behind, and goes back to the files after the last
    chunk it was given."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    waiting = 0
    end = file.end

    def listener(data: bytes) -> None:
        nonlocal waiting, end
        waiting += len(data)
        end = file.end  # where the file is now: the chunk is written (unless the disk is full)
        if waiting > LIVE_BACKLOG:
            listeners.remove(listener)
            queue.put_nowait(None)
        else:
            queue.put_nowait(data)

    listeners.append(listener)
    try:
        while True:
            chunk = await queue.get()
            if chunk is None:
                return
            parts = [chunk]
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    return
                parts.append(more)
            waiting = 0
            yield b"".join(parts), end
    finally:
        if listener in listeners:
            listeners.remove(listener)


def _read(path: str, offset: int, count: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(count)
    except OSError:
        return b""
