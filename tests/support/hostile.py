"""A hostile Supervisor node for tests and benchmarks: one TCP port per behaviour.

It answers `/RPC2` with whatever its mode says: valid answers carrying markup in names, invalid
XML, entity bombs, recursion bombs, wrong types, faults where structs belong, an endless drip,
a 200 MB body, a gzip body, or nothing at all. Modes whose body is a `system.multicall` answer
play a supervisord (no `cesi.*` change feed); `feed-*` modes attack through the feed. It
writes raw bytes on purpose: it is the misbehaving peer, not an HTTP implementation anyone
relies on.
"""

from __future__ import annotations

import gzip
import socket
import socketserver
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def process(name: str, group: str, **extra: Any) -> dict[str, Any]:
    info = {"name": name, "group": group, "description": "pid 1, uptime 0:00:01",
            "start": 1, "stop": 0, "now": 2, "state": 20, "statename": "RUNNING",
            "spawnerr": "", "exitstatus": 0, "logfile": "", "stdout_logfile": "",
            "stderr_logfile": "", "pid": 1}
    info.update(extra)
    return info


def multicall_answer(processes: list[Any], version: Any = "4.3.0") -> bytes:
    state = {"statecode": 1, "statename": "RUNNING"}
    return xmlrpc.client.dumps(([state, version, processes],), methodresponse=True).encode()


def feed_answer(processes: Any, token: Any = "t1") -> bytes:
    answer = {"token": token, "statecode": 1, "statename": "RUNNING", "version": "4.3.0",
              "now": 2, "changed": True, "processes": processes}
    return xmlrpc.client.dumps((answer,), methodresponse=True).encode()


XSS = "<script>alert(1)</script>"
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  b"<methodResponse><params><param><value>&lol2;</value></param></params>"
                  b"</methodResponse>")
DEEP = (b"<methodResponse><params><param><value>" + b"<array><data><value>" * 5000
        + b"</value></data></array>" * 5000 + b"</value></param></params></methodResponse>")

# mode -> body (bytes) for simple modes; the others are handled in the handler
BODIES: dict[str, bytes] = {
    "xss": multicall_answer([process(XSS, "g"), process("p", "g", description=XSS)]),
    "invalid-xml": b"<methodResponse><params><param><value><struct>",
    "bomb": BILLION_LAUGHS,
    "deep": DEEP,
    "wrong-types": multicall_answer([process("p", "g", pid="12")]),
    "not-a-list": multicall_answer("nope"),  # type: ignore[arg-type]
    "fault": xmlrpc.client.dumps(xmlrpc.client.Fault(1, "UNKNOWN_METHOD"),
                                 methodresponse=True).encode(),
    "html": b"<html><body>It works!</body></html>",
    "colon-name": multicall_answer([process("a:b", "g")]),
    "feed-wrong-types": feed_answer([process("p", "g", exitstatus=[0])]),
    "feed-long-token": feed_answer([], token="t" * 100_000),
}
# these answer the change feed as supervisord does: it has none
SUPERVISORD_LIKE = ("xss", "wrong-types", "not-a-list", "colon-name")
UNKNOWN_METHOD = BODIES["fault"]
MODES = (*BODIES, "drip", "huge", "gzip", "silent", "http-500", "slow-headers")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(30)
        try:
            request = self._read_request(sock)
            if b"cesi.getChangesSince" in request and self.server.mode in SUPERVISORD_LIKE:
                self._send(sock, UNKNOWN_METHOD)
            else:
                self._answer(sock, self.server.mode)
        except OSError:
            pass  # the client gave up on us: exactly what it should do

    def _read_request(self, sock: socket.socket) -> bytes:
        """The request's body (as much of it as arrived)."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return body

    def _answer(self, sock: socket.socket, mode: str) -> None:
        stop = self.server.stopping
        if mode == "silent":
            stop.wait(60)
            return
        if mode == "slow-headers":
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n":
                if stop.wait(0.5):
                    return
                sock.sendall(bytes([byte]))
            return
        if mode == "drip":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                         b"Content-Length: 10000\r\n\r\n<methodResponse>")
            while not stop.wait(0.2):
                sock.sendall(b" ")
            return
        if mode == "huge":
            size = 200 * 1024 * 1024
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                         b"Content-Length: %d\r\n\r\n<methodResponse>" % size)
            chunk = b" " * 65536
            for _ in range(size // len(chunk)):
                if stop.is_set():
                    return
                sock.sendall(chunk)
            return
        if mode == "http-500":
            sock.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            return
        if mode == "gzip":
            body = gzip.compress(multicall_answer([process("p", "g")]))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Encoding: gzip"
                         b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            return
        self._send(sock, BODIES[mode])

    @staticmethod
    def _send(sock: socket.socket, body: bytes) -> None:
        # undeclared length: the body runs to the close, as HTTP/1.0 servers do
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n"
                     + body)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.stopping = threading.Event()


@contextmanager
def hostile_node(mode: str) -> Iterator[str]:
    """Serve `mode` on a free loopback port; yields the node URL."""
    assert mode in MODES, mode
    server = _Server(mode)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        time.sleep(0)  # let handler threads see the event
