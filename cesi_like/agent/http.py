"""HTTP/1.1 transport for the agent: h11 on asyncio streams, over a unix socket or TCP.

Authentication is checked on the request head, before a byte of the body is read, so an
unauthenticated client cannot make us buffer anything. Bodies are capped. Each complete response
goes out in one write (headers and body together) to avoid Nagle/delayed-ACK stalls; streams
(`/logtail`) are sent chunked as data arrives.
"""

from __future__ import annotations

import asyncio
import http
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import h11

from .listen import Credentials

MAX_BODY = 2 * 1024 * 1024
"""Largest request body we accept: generous for XML-RPC (multicall, sendProcessStdin)."""

MAX_HEAD = 64 * 1024

MAX_STREAM_BEHIND = 512 * 1024
"""Unsent bytes of a stream (`/logtail`) past which its client is disconnected: a follower
that stops reading costs this much, not everything the program writes meanwhile."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


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


class HttpServer:
    """Serves one listening socket with one handler; `credentials` None means no auth."""

    def __init__(
        self,
        handler: Handler,
        credentials: Credentials | None,
        name: str,
        on_error: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.handler = handler
        self.on_error = on_error
        self.credentials = credentials
        self.name = name
        self.server: asyncio.AbstractServer | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self, sock: socket.socket) -> None:
        # asyncio listens again with its own backlog (100) unless told: keep supervisord's 512
        if sock.family == socket.AF_UNIX:
            self.server = await asyncio.start_unix_server(self._client, sock=sock,
                                                          backlog=BACKLOG)
        else:
            self.server = await asyncio.start_server(self._client, sock=sock, backlog=BACKLOG)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await _Connection(self, reader, writer).serve()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server is closing; ending quietly keeps asyncio from logging noise
        finally:
            self.connections.discard(task)
            writer.close()


class _Connection:
    def __init__(
        self, server: HttpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(65536)
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
            request = await self._read_request(event)
            if request is None:
                return
            try:
                response = await self.server.handler(request)
            except Exception as exc:  # a handler bug must not take the daemon down
                self.server.on_error(
                    f"{request.method} {request.path} failed: {traceback.format_exc()}"
                )
                response = _simple(500, f"internal error: {type(exc).__name__}")
            await self._send(response, request.method == "HEAD")
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
            if response.body and not head_only:
                out += self.conn.send(h11.Data(data=response.body)) or b""
            out += self.conn.send(h11.EndOfMessage()) or b""
            self.writer.write(out)
            await self.writer.drain()
            return
        self.writer.write(out)
        await self.writer.drain()
        stream = response.stream
        transport = self.writer.transport
        try:
            # no drain() here: a follower that stops reading would hold this loop there while
            # its stream's queue grows; instead its unsent output is capped and it is cut off
            async for chunk in stream:
                if chunk:
                    self.writer.write(self.conn.send(h11.Data(data=chunk)) or b"")
                    if transport.get_write_buffer_size() > MAX_STREAM_BEHIND:
                        transport.abort()  # frees the buffer; the client sees the stream end
                        raise ConnectionAbortedError("the follower fell too far behind")
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        self.writer.write(self.conn.send(h11.EndOfMessage()) or b"")
        await self.writer.drain()
