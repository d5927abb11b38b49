"""The agent's HTTP routes: `/RPC2` (XML-RPC), `/logtail/...` and `/mainlogtail` (streams),
and the status page (`page.py`).

Streams follow the writer while the reader keeps up and the files when it does not (see
follow.py), so a slow reader gets every byte rotation left, at its own pace.
"""

from __future__ import annotations

import urllib.parse

from ..rpc.dispatch import Dispatcher, ServerError
from ..supervisor import Supervisor
from .follow import follow
from .page import WebUI
from .server import Request, Response

XML = frozenset({"text/xml", "application/xml"})


def _cross_site(request: Request) -> Response | None:
    """Another site's page may make a logged-in browser POST a valid XML-RPC body here (a
    form sends text/plain) with its saved credentials: refuse a request from another site,
    and any body that is not XML, which every XML-RPC client sends (supervisorctl, Python's
    xmlrpc.client, the npm client) and no form or no-CORS fetch can."""
    if request.from_another_site():
        return Response(403, b"Forbidden: XML-RPC from another site's page\n")
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in XML:
        return Response(415, b"Unsupported Media Type: XML-RPC requests are text/xml\n")
    return None


STREAM_HEADERS = [("X-Accel-Buffering", "no")]
TEXT = "text/plain;charset=utf-8"


class Routes:
    """Dispatches one HTTP request to the right handler."""

    def __init__(self, supervisor: Supervisor, dispatcher: Dispatcher) -> None:
        self.supervisor = supervisor
        self.dispatcher = dispatcher
        self.page = WebUI(dispatcher.methods)

    async def __call__(self, request: Request) -> Response:
        path = urllib.parse.urlsplit(request.path).path
        if path.startswith("/RPC2"):
            if request.method != "POST":
                return Response(400, b"XML-RPC requests must be POSTed\n")
            refused = _cross_site(request)
            if refused is not None:
                return refused
            try:
                body = await self.dispatcher.handle(request.body)
            except ServerError as exc:  # as supervisord answers it
                self.supervisor.log.debug(f"XML-RPC answered HTTP 500: {exc}")
                return Response(500, b"Internal Server Error\n")
            return Response(200, body, "text/xml")
        if path.startswith("/logtail/"):
            return self._logtail(request, path[len("/logtail/"):])
        if path == "/mainlogtail":
            return self._mainlogtail(request)
        page = await self.page(request, path)
        return page if page is not None else Response(404, b"Not Found\n")

    def _logtail(self, request: Request, rest: str) -> Response:
        if request.method != "GET":
            return Response(400, b"Bad Request\n")
        namespec, _, channel_name = urllib.parse.unquote(rest).partition("/")
        channel_name = channel_name or "stdout"
        if channel_name not in ("stdout", "stderr"):
            return Response(404, b"Not Found\n")
        _, process = self.supervisor.lookup(namespec)
        if process is None:
            return Response(404, b"Not Found\n")
        channel = self.supervisor.channel(process, channel_name)
        try:
            channel.open()
        except OSError:
            return Response(404, b"Not Found\n")
        if channel.file is None:
            return Response(404, b"Not Found\n")
        stream = follow(channel.file, channel.listeners)
        return Response(200, content_type=TEXT, headers=STREAM_HEADERS, stream=stream)

    def _mainlogtail(self, request: Request) -> Response:
        if request.method != "GET":
            return Response(400, b"Bad Request\n")
        log = self.supervisor.log
        if log.file is None:
            return Response(404, b"Not Found\n")
        stream = follow(log.file, log.listeners)
        return Response(200, content_type=TEXT, headers=STREAM_HEADERS, stream=stream)
