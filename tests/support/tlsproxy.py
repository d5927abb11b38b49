"""A TLS front for a node: accepts TLS on a loopback port and relays bytes to a unix socket,
as nginx or stunnel would in front of a supervisord. The certificates come from trustme."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def tls_proxy(backend: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Yields (https URL, CA file that signed its certificate)."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    def relay(client: socket.socket) -> None:
        try:
            client.settimeout(10)
            secure = context.wrap_socket(client, server_side=True)
            secure.settimeout(None)
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(str(backend))
        except (OSError, ssl.SSLError):
            client.close()
            return
        threading.Thread(target=_pipe, args=(upstream, secure), daemon=True).start()
        _pipe(secure, upstream)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", str(ca_file)
    finally:
        stopping.set()
        listener.close()
