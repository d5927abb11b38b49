"""Total deadlines for blocking socket I/O.

Socket timeouts bound each `recv`, not a whole exchange: a node that drips one byte a second
never trips them, and a thread reading it waits forever. Here a single watcher thread keeps a
heap of call deadlines; a call registers the sockets it uses, and when its deadline passes the
watcher shuts them down, which wakes the blocked reader at once with an error or an EOF. The
caller then sees `expired` and reports a hung node.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Call:
    """One call's deadline and the sockets it has used so far."""

    __slots__ = ("deadline", "done", "expired", "sockets")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.done = False
        self.expired = False

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


def _shutdown(sock: socket.socket) -> None:
    try:
        # the base method: for a TLS socket it acts on the fd without touching the SSL object
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its owner: nothing left to wake


class DeadlineWatch:
    """Shuts down the sockets of calls that outlive their deadline (one daemon thread)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, Call]] = []
        self._order = itertools.count()
        self._local = threading.local()
        self._thread: threading.Thread | None = None

    @contextmanager
    def call(self, seconds: float) -> Iterator[Call]:
        """Everything the current thread does inside is bounded by `seconds` in total."""
        entry = Call(time.monotonic() + seconds)
        outer = getattr(self._local, "call", None)
        self._local.call = entry
        with self._lock:
            heapq.heappush(self._heap, (entry.deadline, next(self._order), entry))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="node-deadlines",
                                                daemon=True)
                self._thread.start()
            self._lock.notify()
        try:
            yield entry
        finally:
            self._local.call = outer
            with self._lock:  # after this the watcher never touches these sockets again
                entry.done = True

    def adopt(self, sock: socket.socket) -> None:
        """Bound `sock` by the current thread's call, if there is one."""
        entry: Call | None = getattr(self._local, "call", None)
        if entry is None:
            return
        with self._lock:
            if entry.expired:
                _shutdown(sock)
            elif sock not in entry.sockets:
                entry.sockets.append(sock)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, _, entry = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._heap)
                entry.expired = True
                for sock in entry.sockets:
                    _shutdown(sock)


WATCH = DeadlineWatch()
