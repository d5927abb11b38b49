"""`requests` adapters whose every socket is bounded by a call's total deadline, and one for
`unix://` server URLs.

urllib3 opens the sockets; we only hook the moments a socket appears (`_new_conn`, the TLS
wrap) or is reused for a new request, and hand it to the deadline watch.
"""

from __future__ import annotations

import socket
import urllib.parse
from typing import Any

from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .deadline import WATCH

UNIX_SCHEME = "http+unix"


class _Watched:
    """Mixin for urllib3 connections: register each socket with the current call."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        WATCH.adopt(sock)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        if self.sock is not None:  # for https: the TLS socket that replaced the raw one
            WATCH.adopt(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection serving a new call
            WATCH.adopt(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _OneShot:
    """Pool mixin: a TCP connection serves one call and is closed, never kept for the next.

    A kept-alive connection to supervisord stalls ~40 ms per call (its Nagle algorithm meets
    our delayed ACK; bench/fleet.py measures it), and one the node closed meanwhile would fail
    a call that must not be retried blindly (a start or a stop). A fresh connection costs well
    under a millisecond on a LAN.
    """

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.close()
        super()._put_conn(None)  # type: ignore[misc]  # the slot is free again


class _WatchedHTTPPool(_OneShot, HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class _WatchedHTTPSPool(_OneShot, HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """http:// and https:// with deadline-bounded sockets (TLS verified as requests does)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


class UnixConnection(_Watched, HTTPConnection):
    """HTTP over a unix socket; `host` is only what goes in the Host header."""

    def __init__(self, socket_path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        WATCH.adopt(sock)
        if isinstance(self.timeout, int | float):
            sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        return sock


class _UnixPool(HTTPConnectionPool):
    def __init__(self, socket_path: str, **kwargs: Any) -> None:
        super().__init__("localhost", **kwargs)
        self.socket_path = socket_path

    def _new_conn(self) -> HTTPConnection:
        self.num_connections += 1
        return UnixConnection(self.socket_path, host="localhost", port=None,
                              timeout=self.timeout.connect_timeout)


class UnixAdapter(HTTPAdapter):
    """`http+unix://<percent-encoded socket path>/RPC2`, one small pool per socket."""

    def __init__(self, pool_maxsize: int = 10) -> None:
        super().__init__(pool_maxsize=pool_maxsize)
        self._pools: dict[str, _UnixPool] = {}
        self._maxsize = pool_maxsize

    def get_connection_with_tls_context(self, request: PreparedRequest, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> _UnixPool:
        path = urllib.parse.unquote(urllib.parse.urlsplit(request.url or "").netloc)
        pool = self._pools.get(path)
        if pool is None:
            pool = self._pools.setdefault(path, _UnixPool(path, maxsize=self._maxsize))
        return pool

    def close(self) -> None:
        super().close()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def unix_url(socket_path: str, path: str = "/RPC2") -> str:
    return f"{UNIX_SCHEME}://{urllib.parse.quote(socket_path, safe='')}{path}"
