"""Streaming parts of cesi-agentctl: `tail -f`, `maintail -f` and `fg`.

They read the server's chunked /logtail and /mainlogtail responses with http.client, which
handles chunked transfer coding (supervisorctl carries its own asyncore client for that).
"""

from __future__ import annotations

import base64
import http.client
import threading
import xmlrpc.client
from typing import Any, TextIO

from ...supervisor_rpc.states import Fault, ProcessState
from ...supervisor_rpc.xmlrpc_client import UnixHTTPConnection
from ..config import CtlConfig


def _connect(options: CtlConfig) -> http.client.HTTPConnection:
    url = options.serverurl
    if url.startswith("unix://"):
        return UnixHTTPConnection(url[len("unix://"):], None)
    host_port = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    return http.client.HTTPConnection(host or "localhost", int(port or 9001))


def open_stream(options: CtlConfig, path: str) -> http.client.HTTPResponse:
    """GET a streaming URL; raises OSError or http.client errors when it cannot."""
    connection = _connect(options)
    headers = {}
    if options.username:
        token = f"{options.username}:{options.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    if response.status != 200:
        raise http.client.HTTPException(f"{path}: HTTP {response.status} {response.reason}")
    return response


def copy_stream(options: CtlConfig, path: str, out: TextIO) -> None:
    """Copy a stream to `out` until the server ends it."""
    response = open_stream(options, path)
    while True:
        chunk = response.read1(65536)
        if not chunk:
            return
        out.write(chunk.decode("utf-8", "replace"))
        out.flush()


def foreground(options: CtlConfig, rpc: Any, name: str, out: TextIO) -> str:
    """Show a process's stdout and stderr while forwarding typed lines to its stdin.
    Returns the closing message to print."""
    for channel in ("stdout", "stderr"):
        thread = threading.Thread(
            target=_quietly, args=(options, f"/logtail/{name}/{channel}", out), daemon=True)
        thread.start()
    try:
        while True:
            line = input() + "\n"
            try:
                rpc.sendProcessStdin(name, line)
            except xmlrpc.client.Fault as exc:
                if exc.faultCode == Fault.NOT_RUNNING:
                    return "Process got killed\nExiting foreground"
                return f"ERROR: {exc}\nExiting foreground"
            if rpc.getProcessInfo(name)["state"] != ProcessState.RUNNING:
                return "Process got killed\nExiting foreground"
    except (KeyboardInterrupt, EOFError):
        return "Exiting foreground"


def _quietly(options: CtlConfig, path: str, out: TextIO) -> None:
    try:
        copy_stream(options, path, out)
    except (OSError, http.client.HTTPException):
        pass
