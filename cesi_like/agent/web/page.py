"""The agent's own web page, as supervisord serves it at `http://host:9001/`: a status table of
every process with Start / Stop / Restart / Clear Log / Tail -f, Refresh, Restart All and
Stop All, and `tail.html` showing the end of a process's log.

It says what supervisord's page says (its messages are what users know), but every action is
a POST form carrying a token of this run of the daemon, never a GET link: supervisord's links
let any web page a logged-in user visits stop their programs (the browser sends the basic-auth
credentials along). It is served behind the same authentication as the XML-RPC interface, on
every listening socket, needs no JavaScript, and escapes everything it shows.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from ...supervisor_rpc.states import Fault, ProcessState
from ..rpc.dispatch import RPCError
from ..rpc.namespace import SUPERVISOR_VERSION
from .server import Request, Response

Call = Callable[..., Awaitable[Any]]

TAIL_BYTES = 1024  # tail.html's default and smallest `limit`, as supervisord's
MAX_FORM = 4096

HEADERS = [
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
     "base-uri 'none'"),
    ("X-Frame-Options", "DENY"),  # a framed page could be clicked through (clickjacking)
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # "no-referrer" would make a POST's Origin "null"
    ("Cache-Control", "no-store"),
]

START_FAULTS = {Fault.NO_FILE: "no such file", Fault.NOT_EXECUTABLE: "file not executable",
                Fault.ALREADY_STARTED: "already started", Fault.SPAWN_ERROR: "spawn error",
                Fault.ABNORMAL_TERMINATION: "abnormal termination"}

STYLESHEET = b"""body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
#wrapper{max-width:1100px;margin:0 auto;padding:1em 1.5em}
h1{font-size:1.3em;margin:.2em 0 .8em}
.status_msg{background:#e7f3e3;border:1px solid #9c9;padding:.5em .8em;margin-bottom:1em}
#buttons{display:flex;gap:.5em;margin-bottom:1em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}
tr.shade td{background:#fafaf8}
.statusrunning{color:#15803d;font-weight:600}.statuserror{color:#b91c1c;font-weight:600}
.statusnominal{color:#555}
form.inline{display:inline}
button{font:inherit;padding:.15em .6em;cursor:pointer}
ul.actions{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.35em;
align-items:center}
pre{background:#fff;border:1px solid #ddd;padding:.8em;white-space:pre-wrap;overflow:auto}
#footer{color:#777;font-size:.85em;margin-top:1.5em}
"""


class WebUI:
    """Renders the pages and runs their actions through the XML-RPC methods."""

    def __init__(self, methods: dict[str, Call]) -> None:
        self._methods = methods
        # the token of this run: a page from an earlier run (or from another site) cannot act
        self._token = secrets.token_urlsafe(24)

    async def __call__(self, request: Request, path: str) -> Response | None:
        """The answer for `path`, or None when it is not one of the page's."""
        if path == "/stylesheets/cesi-agentd.css" and request.method in ("GET", "HEAD"):
            return Response(200, STYLESHEET, "text/css", HEADERS)
        if path in ("/", "/index.html"):
            if request.method == "POST":
                return await self._act(request)
            if request.method in ("GET", "HEAD"):
                return await self._status(request)
            return Response(405, b"Method Not Allowed\n", headers=[("Allow", "GET, POST")])
        if path == "/tail.html" and request.method in ("GET", "HEAD"):
            return await self._tail(request)
        return None

    # -- status ----------------------------------------------------------------------------

    async def _status(self, request: Request) -> Response:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        message = query.get("message", [""])[0][:2000]
        infos = await self._methods["supervisor.getAllProcessInfo"]()
        rows = []
        for index, info in enumerate(infos):
            spec = _namespec(info["group"], info["name"])
            state = ProcessState(info["state"])
            shade = ' class="shade"' if index % 2 else ""
            rows.append(
                f'<tr{shade}>'
                f'<td class="status"><span class="{_css(state)}">{_e(state.name.lower())}'
                f'</span></td><td>{_e(info["description"])}</td>'
                f'<td><a href="tail.html?processname={_q(spec)}">{_e(spec)}</a></td>'
                f'<td><ul class="actions">{self._actions(spec, state)}</ul></td></tr>')
        table = ("<table><thead><tr><th>State</th><th>Description</th><th>Name</th>"
                 f"<th>Action</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
                 if rows else "<p>No programs to manage</p>")
        notice = f'<div class="status_msg" role="status">{_e(message)}</div>' if message else ""
        buttons = (f'<div id="buttons">{self._form("refresh", "", "Refresh")}'
                   f'{self._form("restartall", "", "Restart All")}'
                   f'{self._form("stopall", "", "Stop All")}</div>')
        return self._page("Supervisor Status", f"<h1>Supervisor status</h1>{notice}{buttons}"
                                               f"{table}")

    def _actions(self, spec: str, state: ProcessState) -> str:
        """The links supervisord shows for a process in `state`, as POST forms."""
        items = []
        if state == ProcessState.RUNNING:
            items += [self._form("restart", spec, "Restart"), self._form("stop", spec, "Stop")]
        elif state in (ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL):
            items.append(self._form("start", spec, "Start"))
        items.append(self._form("clearlog", spec, "Clear Log"))
        items += [f'<a href="logtail/{_q(spec)}" target="_blank" rel="noopener">'
                  "Tail -f Stdout</a>",
                  f'<a href="logtail/{_q(spec)}/stderr" target="_blank" rel="noopener">'
                  "Tail -f Stderr</a>"]
        return "".join(f"<li>{item}</li>" for item in items)

    def _form(self, action: str, spec: str, label: str) -> str:
        name = f'<input type="hidden" name="processname" value="{_e(spec)}">' if spec else ""
        return (f'<form class="inline" method="post" action="index.html">'
                f'<input type="hidden" name="token" value="{self._token}">{name}'
                f'<button name="action" value="{action}">{_e(label)}</button></form>')

    # -- actions ---------------------------------------------------------------------------

    async def _act(self, request: Request) -> Response:
        """Run the form's action, then send the browser back to the status page with
        supervisord's message (post, redirect, get: a reload does not repeat the action)."""
        if request.from_another_site():
            return Response(403, b"Forbidden: the form came from another site\n")
        if len(request.body) > MAX_FORM:
            return Response(413, b"Request Entity Too Large\n")
        try:
            form = {key: values[0] for key, values in urllib.parse.parse_qs(
                request.body.decode("latin-1"), max_num_fields=8).items()}
        except ValueError:  # more fields than any of the page's forms has
            return Response(400, b"Bad Request: not one of this page's forms\n")
        if not hmac.compare_digest(form.get("token", "").encode(), self._token.encode()):
            return Response(403, b"Forbidden: the form has expired; reload the page\n")
        message = await self._run(form.get("action", ""), form.get("processname", ""))
        location = "index.html?" + urllib.parse.urlencode({"message": message})
        return Response(303, b"", headers=[("Location", location), *HEADERS])

    async def _run(self, action: str, spec: str) -> str:
        call = self._methods
        if action == "refresh":
            return f"Page refreshed at {time.ctime()}"
        if action == "stopall":
            await call["supervisor.stopAllProcesses"]()
            return f"All stopped at {time.ctime()}"
        if action == "restartall":
            await call["supervisor.stopAllProcesses"]()
            await call["supervisor.startAllProcesses"]()
            return f"All restarted at {time.ctime()}"
        if action not in ("start", "stop", "restart", "clearlog"):
            return f"Unknown action {action[:40]}"
        try:
            await call["supervisor.getProcessInfo"](spec)
        except RPCError:
            return f"No such process named {spec[:200]}"
        try:
            if action == "start":
                await call["supervisor.startProcess"](spec)
                return f"Process {spec} started"
            if action == "stop":
                await call["supervisor.stopProcess"](spec)
                return f"Process {spec} stopped"
            if action == "clearlog":
                await call["supervisor.clearProcessLogs"](spec)
                return f"Log for {spec} cleared"
        except RPCError as exc:
            if action == "start" and exc.code in START_FAULTS:
                return f"ERROR: Process {spec}: {START_FAULTS[exc.code]}"
            return f"unexpected rpc fault [{int(exc.code)}] {exc.text}"
        for step in ("supervisor.stopProcess", "supervisor.startProcess"):
            try:  # as supervisord's multicall: a step's fault does not stop the next
                await call[step](spec)
            except RPCError:
                pass
        return f"Process {spec} restarted"

    # -- tail ------------------------------------------------------------------------------

    async def _tail(self, request: Request) -> Response:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        spec = query.get("processname", [""])[0]
        limit_text = query.get("limit", [str(TAIL_BYTES)])[0]
        limit = max(TAIL_BYTES, int(limit_text) if limit_text.isdigit() else TAIL_BYTES)
        limit = min(limit, 1024 * 1024)
        if not spec:
            tail = "No process name found"
        else:
            try:
                tail = await self._methods["supervisor.readProcessStdoutLog"](spec, -limit, 0)
            except RPCError as exc:
                tail = (f"No file for {spec}" if exc.code == Fault.NO_FILE else
                        f"ERROR: unexpected rpc fault [{int(exc.code)}] {exc.text}")
        refresh = (f'<p><a href="tail.html?processname={_q(spec)}&amp;limit={limit}">'
                   "Refresh</a> · <a href=\"index.html\">Status</a></p>") if spec else ""
        return self._page(f"Supervisor tail of process {spec}",
                          f"<h1>{_e(spec)}</h1><pre>{_e(tail)}</pre>{refresh}")

    def _page(self, title: str, body: str) -> Response:
        text = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{_e(title)}</title>"
                '<link rel="stylesheet" href="stylesheets/cesi-agentd.css"></head><body>'
                f'<div id="wrapper">{body}<div id="footer">cesi-agentd (Supervisor '
                f"{SUPERVISOR_VERSION} interface)</div></div></body></html>")
        return Response(200, text.encode("utf-8"), "text/html;charset=utf-8", HEADERS)


def _namespec(group: str, name: str) -> str:
    return name if group == name else f"{group}:{name}"


def _css(state: ProcessState) -> str:
    if state == ProcessState.RUNNING:
        return "statusrunning"
    if state in (ProcessState.FATAL, ProcessState.BACKOFF):
        return "statuserror"
    return "statusnominal"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe=":")
