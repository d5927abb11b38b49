"""HTTP/1.1 transport for the agent: h11 on asyncio streams, over a unix socket or TCP.

Authentication is checked on the request head, before a byte of the body is read, so an
unauthenticated client cannot make us buffer anything. Bodies are capped. Each complete response
goes out in one write (headers and body together) to avoid Nagle/delayed-ACK stalls; streams
(`/logtail`) are sent chunked, as fast as the client reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import os
import resource
import socket
import traceback
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import h11

from .listen import Credentials

MAX_BODY = 2 * 1024 * 1024
"""Largest request body we accept: generous for XML-RPC (multicall, sendProcessStdin)."""

MAX_HEAD = 64 * 1024
LINGER_SECONDS = 2.0  # after refusing a request, how long its body may still arrive


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    def from_another_site(self) -> bool:
        """Sent by a browser from another site's page: its Origin is not this host (a
        browser adds the saved credentials to such a request; other clients send no
        Origin)."""
        origin = self.headers.get("origin")
        return origin is not None and \
            urllib.parse.urlsplit(origin).netloc != self.headers.get("host", "")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None


Handler = Callable[[Request], Awaitable[Response]]


_REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}


def _simple(status: int, text: str, extra: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode(), "text/plain", extra or [])


BACKLOG = 512
IDLE_TIMEOUT = 60.0
"""Seconds a connection may sit between requests (or inside a request head) before it is
closed: held-open sockets cost memory and file descriptors, and no Supervisor client waits
that long between two calls on one connection."""

OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
EPISODE_QUIET = 1.0  # seconds without a refusal that end an episode of refusals


def connection_cap() -> int:
    """Connections one server keeps at once: half the open-files limit, so a flood of
    clients leaves descriptors for the programs' pipes and logs (and the other server)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(32, (soft if soft != resource.RLIM_INFINITY else 65536) // 2)


class HttpServer:
    """Serves one listening socket with one handler; `credentials` None means no auth.

    It accepts connections itself rather than through asyncio's server: out of file
    descriptors, asyncio's accept loop logs a traceback for each of up to `backlog` tries per
    wakeup and schedules as many retries (gigabytes of stderr and a busy core). Here a
    connection past the cap, or one that cannot get a descriptor, is closed at once (a spare
    descriptor is given up for a moment to accept it), the client sees its connection end
    instead of hanging, and the episode is logged once.
    """

    def __init__(self, handler: Handler, credentials: Credentials | None, name: str,
                 log: ServerLog, max_connections: int | None = None,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.handler = handler
        self.log = log
        self.credentials = credentials
        self.name = name
        self.max_connections = max_connections or connection_cap()
        self.idle_timeout = idle_timeout
        self.connections: dict[asyncio.Task[None], _Connection | None] = {}
        # accepted connections that have not sent a byte yet: fd -> (socket, since)
        self._silent: dict[int, tuple[socket.socket, float]] = {}
        self._sock: socket.socket | None = None
        self._spare = -1  # a descriptor to give up when there is no other
        self._refusing = ""  # why new connections are being closed ("" while accepting)
        self._refused = 0
        self._last_refusal = 0.0
        self._ending: asyncio.TimerHandle | None = None  # the episode's quiet-period check
        self._sweep: asyncio.TimerHandle | None = None
        self._paused: asyncio.TimerHandle | None = None

    async def start(self, sock: socket.socket) -> None:
        sock.setblocking(False)  # bound and listening with supervisord's backlog (listen.py)
        self._sock = sock
        self._spare = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for timer in (self._sweep, self._paused, self._ending):
            if timer is not None:
                timer.cancel()
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._spare >= 0:
            os.close(self._spare)
            self._spare = -1
        for fd, (conn, _) in list(self._silent.items()):
            self._drop_silent(fd, conn)
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)

    # -- accepting -------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(BACKLOG):  # what is queued, within reason, per wakeup
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in OUT_OF_FDS:
                    self.log.error(f"{self.name}: accept failed: {exc}")
                    return
                if not self._shed(exc):
                    return  # nothing was waiting after all, or accepting pauses
                continue
            if len(self.connections) + len(self._silent) >= self.max_connections:
                conn.close()
                self._refuse(f"{self.max_connections} connections are open")
                continue
            self._accepting()
            # until its first bytes arrive a connection is only its socket (under 1 KB,
            # where a stream, a task and a parser take 6 KB): 2,000 idle ones cost little
            conn.setblocking(False)
            loop = asyncio.get_running_loop()
            self._silent[conn.fileno()] = (conn, loop.time())
            loop.add_reader(conn.fileno(), self._first_bytes, conn)
            if self._sweep is None:
                self._sweep = loop.call_later(self.idle_timeout / 4, self._close_idle)

    def _first_bytes(self, conn: socket.socket) -> None:
        try:
            closed = not conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            closed = True
        if closed:  # it left without a word: nothing to build a stream for
            self._drop_silent(conn.fileno(), conn)
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(conn.fileno())
        del self._silent[conn.fileno()]
        task = loop.create_task(self._client(conn))
        self.connections[task] = None
        task.add_done_callback(self._forget)

    def _shed(self, error: OSError) -> bool:
        """No descriptor for a waiting client: free the spare, accept and close the client,
        take the spare back. False when no client was waiting after all (the kernel wants a
        descriptor before it looks at the queue), or when even that failed (accepting
        pauses for a second)."""
        assert self._sock is not None
        if self._spare >= 0:
            os.close(self._spare)
            self._spare = -1
            shed = False
            try:
                self._sock.accept()[0].close()
                shed = True
            except OSError:
                pass
            with contextlib.suppress(OSError):
                self._spare = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            if shed:
                self._refuse(f"no file descriptor is free ({error.strerror})")
            if self._spare >= 0:
                return shed
        self._refuse(f"no file descriptor is free ({error.strerror})")
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._sock.fileno())
        self._paused = loop.call_later(1.0, self._resume)
        return False

    def _resume(self) -> None:
        self._paused = None
        if self._sock is not None:
            if self._spare < 0:
                with contextlib.suppress(OSError):
                    self._spare = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._accept)

    def _refuse(self, why: str) -> None:
        self._refused += 1
        self._last_refusal = asyncio.get_running_loop().time()
        if not self._refusing:
            self._refusing = why
            self.log.warn(f"{self.name}: {why}: closing new connections at once")

    def _accepting(self) -> None:
        """A connection was accepted: the episode of refusals ends once none follows for
        EPISODE_QUIET (at the edge of the limit a descriptor freed for a moment lets one
        client in between refusals: that is one episode, and one warning)."""
        if self._refusing and self._ending is None:
            self._ending = asyncio.get_running_loop().call_later(EPISODE_QUIET,
                                                                 self._episode_over)

    def _episode_over(self) -> None:
        self._ending = None
        quiet = asyncio.get_running_loop().time() - self._last_refusal
        if quiet < EPISODE_QUIET:  # refused again meanwhile: still the same episode
            self._ending = asyncio.get_running_loop().call_later(EPISODE_QUIET - quiet,
                                                                 self._episode_over)
            return
        self.log.info(f"{self.name}: accepting connections again ({self._refused} "
                      f"closed at once while {self._refusing})")
        self._refusing, self._refused = "", 0

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.connections.pop(task, None)

    def _close_idle(self) -> None:
        """Close connections idle for IDLE_TIMEOUT; checked while any are open."""
        self._sweep = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for fd, (conn, since) in list(self._silent.items()):
            if now - since > self.idle_timeout:
                self._drop_silent(fd, conn)
        for connection in list(self.connections.values()):
            if connection is not None and not connection.busy \
                    and now - connection.active > self.idle_timeout:
                connection.writer.transport.abort()
        if self.connections or self._silent:
            self._sweep = loop.call_later(self.idle_timeout / 4, self._close_idle)

    def _drop_silent(self, fd: int, conn: socket.socket) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        del self._silent[fd]
        conn.close()

    async def _client(self, conn: socket.socket) -> None:
        task = asyncio.current_task()
        assert task is not None
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEAD, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=conn)
        except OSError:
            conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        connection = _Connection(self, reader, writer)
        self.connections[task] = connection
        try:
            await connection.serve()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server is closing; ending quietly keeps asyncio from logging noise
        finally:
            writer.close()


class ServerLog(Protocol):
    """The main log's methods a server reports with."""

    def critical(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def info(self, message: str) -> None: ...


class _Connection:
    def __init__(
        self, server: HttpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.active = asyncio.get_running_loop().time()  # the last byte in, or answer out
        self.busy = False  # between a request's head and the end of its answer

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(65536)
            self.active = asyncio.get_running_loop().time()
            self.conn.receive_data(data)
            if not data:
                return h11.ConnectionClosed()

    async def serve(self) -> None:
        while True:
            try:
                event = await self._next_event()
            except h11.RemoteProtocolError as exc:
                await self._fail(exc.error_status_hint, str(exc))
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            self.busy = True
            request = await self._read_request(event)
            if request is None:
                return
            try:
                response = await self.server.handler(request)
            except Exception as exc:  # a handler bug must not take the daemon down
                self.server.log.critical(
                    f"{request.method} {request.path} failed: {traceback.format_exc()}"
                )
                response = _simple(500, f"internal error: {type(exc).__name__}")
            await self._send(response, request.method == "HEAD")
            self.busy = False
            self.active = asyncio.get_running_loop().time()
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                return
            try:
                self.conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(self, event: h11.Request) -> Request | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        request = Request(event.method.decode("ascii"), event.target.decode("latin-1"), headers)
        creds = self.server.credentials
        if creds is not None and not creds.accepts(headers.get("authorization")):
            await self._fail(
                401, "Unauthorized", [("WWW-Authenticate", 'Basic realm="default"')]
            )
            return None
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await self._fail(413, "Request Entity Too Large")
            return None
        body = bytearray()
        while True:
            try:
                part = await self._next_event()
            except h11.RemoteProtocolError as exc:
                await self._fail(exc.error_status_hint, str(exc))
                return None
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY:
                    await self._fail(413, "Request Entity Too Large")
                    return None
            elif isinstance(part, h11.EndOfMessage):
                request.body = bytes(body)
                return request
            else:
                return None

    async def _fail(
        self, status: int, text: str, extra: list[tuple[str, str]] | None = None
    ) -> None:
        """Answer an error and close: the rest of the request is not worth reading."""
        response = _simple(status, text + "\n", [*(extra or []), ("Connection", "close")])
        try:
            await self._send(response, False)
        except h11.LocalProtocolError:
            pass
        await self._linger()

    async def _linger(self) -> None:
        """Half-close, then read and drop what the client still sends (the body of a refused
        request) for a moment: closing at once would reset the connection under a client
        that is still writing, which then sees a broken pipe instead of our answer."""
        transport = self.writer.transport
        if not transport.can_write_eof():
            return
        transport.write_eof()
        dropped = 0
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(LINGER_SECONDS):
                while dropped <= MAX_BODY and (data := await self.reader.read(65536)):
                    dropped += len(data)

    async def _send(self, response: Response, head_only: bool) -> None:
        headers = [("Content-Type", response.content_type), ("Server", "cesi-agentd")]
        headers += response.headers
        if response.stream is None:
            headers.append(("Content-Length", str(len(response.body))))
        reason = _REASONS.get(response.status, b"Unknown")  # supervisorctl needs a phrase
        out = self.conn.send(
            h11.Response(status_code=response.status, headers=headers, reason=reason)
        ) or b""
        if response.stream is None:
            parts = [out]
            if response.body and not head_only:  # passed through, not copied by h11
                parts += self.conn.send_with_data_passthrough(h11.Data(data=response.body)) \
                    or []
            parts.append(self.conn.send(h11.EndOfMessage()) or b"")
            self.writer.write(b"".join(parts))  # one copy of a big answer, not two
            await self.writer.drain()
            return
        self.writer.write(out)
        await self.writer.drain()
        stream = response.stream
        try:
            # at the reader's pace: the stream bounds what it holds while this waits
            async for chunk in stream:
                if chunk:
                    self.writer.write(self.conn.send(h11.Data(data=chunk)) or b"")
                    await self.writer.drain()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        self.writer.write(self.conn.send(h11.EndOfMessage()) or b"")
        await self.writer.drain()
