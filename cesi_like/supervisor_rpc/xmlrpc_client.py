"""A Supervisor XML-RPC client for `unix://` and `http://` server URLs.

The stdlib's ServerProxy speaks only TCP; this adds a transport that connects to a unix socket
and keeps one HTTP/1.1 connection open across calls, as supervisorctl does.
"""

from __future__ import annotations

import http.client
import socket
import urllib.parse
import xmlrpc.client
from typing import Any


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over a unix socket (`unix:///path/to/sock`)."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__()
        self.socket_path = path
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection and host == self._connection[0] and self._connection[1]:
            return self._connection[1]
        _, self._extra_headers, _ = self.get_host_info(host)  # basic auth from the URL
        connection = UnixHTTPConnection(self.socket_path, self.timeout)
        self._connection = host, connection
        return connection


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float | None) -> None:
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


def server_proxy(
    url: str,
    username: str | None = None,
    password: str | None = None,
    timeout: float | None = None,
) -> xmlrpc.client.ServerProxy:
    """A ServerProxy for a Supervisor server URL (`unix:///sock` or `http://host:port`)."""
    credentials = ""
    if username:
        quoted = urllib.parse.quote(username, safe="")
        credentials = f"{quoted}:{urllib.parse.quote(password or '', safe='')}@"
    if url.startswith("unix://"):
        transport: xmlrpc.client.Transport = UnixTransport(url[len("unix://"):], timeout)
        return xmlrpc.client.ServerProxy(f"http://{credentials}localhost/RPC2", transport)
    parts = urllib.parse.urlsplit(url)
    netloc = f"{credentials}{parts.hostname or 'localhost'}:{parts.port or 9001}"
    return xmlrpc.client.ServerProxy(f"http://{netloc}/RPC2", _TimeoutTransport(timeout))
