"""Listening sockets and their credentials: everything about the agent's servers that has to
exist before the daemon forks into the background (so a port in use is reported on the
terminal) and that must not pull in the HTTP stack."""

from __future__ import annotations

import base64
import os
import socket
import stat
from dataclasses import dataclass

from ..config import Config


@dataclass(frozen=True)
class Credentials:
    """Basic-auth credentials; a password of the form `{SHA}<hex sha1>` is compared hashed."""

    username: str
    password: str

    def accepts(self, header: str | None) -> bool:
        # imported here: hashlib loads OpenSSL's libcrypto (~4 MB), which a daemon without
        # authentication never needs
        import hashlib
        import hmac

        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, colon, password = decoded.partition(":")
        if not colon:
            return False
        expected = self.password
        if expected.startswith("{SHA}"):
            password = hashlib.sha1(password.encode("utf-8")).hexdigest()
            expected = expected[5:].lower()
        user_ok = hmac.compare_digest(user.encode(), self.username.encode())
        password_ok = hmac.compare_digest(password.encode(), expected.encode())
        return user_ok and password_ok


def bind_unix(path: str, mode: int, owner: tuple[int, int] | None) -> socket.socket:
    """Bind the unix socket as supervisord does: refuse if a live server answers on it,
    replace a stale one, then chmod/chown. Raises OSError with a message on failure."""
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            probe.close()
            raise OSError(f"Another program is already listening on a port that one of our "
                          f"HTTP servers is configured to use ({path}).  Shut this program "
                          "down first before starting supervisord.")
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o777 ^ mode)
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner[0], owner[1])
    sock.listen(512)
    sock.setblocking(False)
    return sock


def bind_tcp(host: str, port: int) -> socket.socket:
    """Bind a TCP listener (`host` empty = all interfaces; port 0 = any free port)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(512)
    sock.setblocking(False)
    return sock


Listeners = list[tuple[str, socket.socket, Credentials | None]]


def bind_servers(config: Config) -> Listeners:
    """Open the configured listening sockets; raises OSError with a readable message."""
    listeners: Listeners = []
    if config.inet_http is not None:
        inet = config.inet_http
        creds = Credentials(inet.username, inet.password or "") if inet.username else None
        listeners.append(("inet_http_server", bind_tcp(inet.host, inet.port), creds))
    if config.unix_http is not None:
        unix = config.unix_http
        creds = Credentials(unix.username, unix.password or "") if unix.username else None
        listeners.append(
            ("unix_http_server", bind_unix(unix.file, unix.chmod, unix.chown), creds)
        )
    return listeners
