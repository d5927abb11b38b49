"""HTTP transport and XML-RPC plumbing: auth, hostile input, marshalling, streaming."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import re
import socket
import subprocess
import sys
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from cesi_like.agent.rpc.dispatch import dump_response
from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy
from tests.support.daemons import Daemon, StartDaemon, program
from tests.support.ports import free_port
from tests.support.waiting import wait_for


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def raw(daemon: Daemon, method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = UnixHTTPConnection(str(daemon.sock))
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def call(daemon: Daemon, method: str, *params: Any) -> Any:
    body = xmlrpc.client.dumps(params, method).encode()
    status, _, data = raw(daemon, "POST", "/RPC2", body, {"Content-Type": "text/xml"})
    assert status == 200
    return xmlrpc.client.loads(data)[0][0]


@pytest.mark.parametrize("value", [
    "plain", "<&>\"' üñí", "", 0, -(2**31), 2**31 - 1, True, False, 1.5, [], {},
    [1, "a", [True, {"k": ["v", 2]}]], {"nested": {"list": [1, 2.25, "x&y"]}},
])
def test_fast_marshaller_round_trips(value: Any) -> None:
    assert xmlrpc.client.loads(dump_response(value))[0][0] == value


def test_fast_marshaller_refuses_oversized_ints() -> None:
    with pytest.raises(OverflowError):
        dump_response(2**31)


def test_get_on_rpc2_is_400_and_unknown_paths_404(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("")
    assert raw(daemon, "GET", "/RPC2")[0] == 400
    assert raw(daemon, "GET", "/nothing-here")[0] == 404


def test_unknown_private_and_badly_called_methods(start_daemon: StartDaemon) -> None:
    rpc = server_proxy(start_daemon("").url)
    for name, code in [("supervisor.noSuchMethod", 1), ("supervisor._update", 1),
                       ("nonamespace", 1), ("system._dispatch", 1)]:
        with pytest.raises(xmlrpc.client.Fault) as caught:
            getattr(rpc, name)()
        assert (caught.value.faultCode, caught.value.faultString) == (code, "UNKNOWN_METHOD")
    with pytest.raises(xmlrpc.client.Fault) as caught:
        rpc.supervisor.getState("extra")
    assert (caught.value.faultCode, caught.value.faultString) == (2, "INCORRECT_PARAMETERS")
    with pytest.raises(xmlrpc.client.Fault) as caught:
        rpc.supervisor.getProcessInfo()
    assert caught.value.faultCode == 2


def test_multicall_reports_each_failure_in_place(start_daemon: StartDaemon) -> None:
    rpc = server_proxy(start_daemon("[program:p]\ncommand=sleep 100\nautostart=false\n").url)
    results = rpc.system.multicall([
        {"methodName": "supervisor.getAPIVersion", "params": []},
        {"methodName": "supervisor.getProcessInfo", "params": ["nope"]},
        {"methodName": "system.multicall", "params": [[]]},
        {"methodName": "supervisor.stopProcess", "params": ["p"]},
        {"methodName": "supervisor.getState", "params": []},
    ])
    assert results[0] == "3.0"
    assert results[1] == {"faultCode": 10, "faultString": "BAD_NAME: nope"}
    assert results[2]["faultCode"] == 2
    assert results[3] == {"faultCode": 70, "faultString": "NOT_RUNNING: p"}
    assert results[4] == {"statecode": 1, "statename": "RUNNING"}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<methodCall><methodName>supervisor.getProcessInfo</methodName>
<params><param><value><string>&lol9;</string></value></param></params></methodCall>"""


XML = {"Content-Type": "text/xml"}


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS,
    b"<methodCall><methodName>supervisor.getState",  # truncated
    b"not xml at all",
    b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><methodCall/>',
    b"<methodCall><params><param><value><int>12x</int></value></param></params></methodCall>",
])
def test_hostile_or_malformed_xml_gets_a_fault(start_daemon: StartDaemon, body: bytes) -> None:
    daemon = start_daemon("")
    status, _, data = raw(daemon, "POST", "/RPC2", body, XML)
    assert status == 200
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(data)
    assert caught.value.faultCode == 2
    assert call(daemon, "supervisor.getState")["statename"] == "RUNNING"


def test_huge_body_is_refused_before_it_is_read(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("")
    connection = UnixHTTPConnection(str(daemon.sock))
    connection.putrequest("POST", "/RPC2")
    connection.putheader("Content-Length", str(100 * 1024 * 1024))
    connection.endheaders()
    try:
        connection.send(b"x" * 65536)  # the server answers without waiting for the rest
    except OSError:
        pass
    assert connection.getresponse().status == 413
    assert call(daemon, "supervisor.getState")["statename"] == "RUNNING"


def test_wrong_argument_types_are_faults(start_daemon: StartDaemon) -> None:
    rpc = server_proxy(start_daemon("[program:p]\ncommand=sleep 100\n").url).supervisor
    with pytest.raises(xmlrpc.client.Fault) as caught:
        rpc.readLog("zero", 10)
    assert caught.value.faultCode in (3, 30)
    with pytest.raises(xmlrpc.client.Fault) as caught:
        rpc.sendProcessStdin("p", 42)
    assert caught.value.faultCode == 2
    with pytest.raises(xmlrpc.client.Fault) as caught:
        rpc.signalProcess("p", "NOTASIGNAL")
    assert (caught.value.faultCode, caught.value.faultString) == (11, "BAD_SIGNAL: NOTASIGNAL")


AUTH = """
[unix_http_server]
username=admin
password={password}
"""


@pytest.mark.parametrize("stored", ["s3cret", "{SHA}" + hashlib.sha1(b"s3cret").hexdigest()])
def test_basic_auth(start_daemon: StartDaemon, stored: str) -> None:
    daemon = start_daemon(AUTH.format(password=stored), wait=False)
    wait_for(lambda: daemon.sock.exists())
    body = xmlrpc.client.dumps((), "supervisor.getState").encode()
    status, headers, _ = raw(daemon, "POST", "/RPC2", body)
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="default"'
    wrong = "Basic " + base64.b64encode(b"admin:nope").decode()
    assert raw(daemon, "POST", "/RPC2", body, {"Authorization": wrong})[0] == 401
    good = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    status, _, data = raw(daemon, "POST", "/RPC2", body, {"Authorization": good, **XML})
    assert status == 200 and xmlrpc.client.loads(data)[0][0]["statename"] == "RUNNING"
    proxy = server_proxy(daemon.url, "admin", "s3cret").supervisor
    assert proxy.getAPIVersion() == "3.0"


def test_inet_server_on_port_zero(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("\n[inet_http_server]\nport=127.0.0.1:0\nusername=u\npassword=p\n")
    port = int(re.search(r"inet_http_server listening on 127.0.0.1:(\d+)",
                         daemon.wait_log("inet_http_server listening")).group(1))  # type: ignore[union-attr]
    rpc = server_proxy(f"http://127.0.0.1:{port}", "u", "p").supervisor
    assert rpc.getState()["statename"] == "RUNNING"
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        server_proxy(f"http://127.0.0.1:{port}").supervisor.getState()
    assert caught.value.errcode == 401


def test_logtail_streams_new_output(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"[program:echo]\ncommand={program('echo_stdin.py')}\nstartsecs=0\n")
    daemon.wait_state("echo", "RUNNING")
    daemon.rpc().sendProcessStdin("echo", "first\n")
    wait_for(lambda: "got: first" in daemon.child_log("echo"))
    connection = UnixHTTPConnection(str(daemon.sock))
    connection.request("GET", "/logtail/echo")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/plain;charset=utf-8"
    assert response.read1(65536) == b"got: first\n"  # history first
    daemon.rpc().sendProcessStdin("echo", "second\n")
    assert response.read1(65536) == b"got: second\n"  # then live
    connection.close()
    assert raw(daemon, "GET", "/logtail/nope")[0] == 404


def test_a_refused_body_may_still_arrive(start_daemon: StartDaemon) -> None:
    """A client that sends its head, then its body (http.client does so in two writes), gets
    the 401 and may still write the body: the connection is half-closed and what arrives is
    dropped, not reset under the client (a broken pipe instead of the answer)."""
    daemon = start_daemon(AUTH.format(password="s3cret"), wait=False)
    wait_for(lambda: daemon.sock.exists())
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(daemon.sock))
        client.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"Unauthorized\n"):
            answer += client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 401 ")
        client.sendall(b"x" * 200_000)  # refused, and still no broken pipe
        assert client.recv(4096) == b""  # then the end of the connection


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def critical(self, message: str) -> None:
        self.lines.append(message)

    error = warn = info = critical


def test_idle_connections_are_closed(tmp_path: Path) -> None:
    """A connection silent since it connected, or idle since its last answer, is closed
    after the idle timeout; one whose request is still being answered is not."""
    from cesi_like.agent.web.listen import bind_unix
    from cesi_like.agent.web.server import HttpServer, Request, Response

    path = str(tmp_path / "s.sock")
    release = asyncio.Event()  # the slow answer waits past the others' idle timeout

    async def handler(request: Request) -> Response:
        if request.path == "/slow":
            await release.wait()
        return Response(200, b"ok")

    async def answer(reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        return head + await reader.readexactly(2)

    async def scenario() -> None:
        server = HttpServer(handler, None, "test", _Log(), idle_timeout=0.3)
        await server.start(bind_unix(path, 0o700, None))
        silent, _silent = await asyncio.open_unix_connection(path)
        used, used_writer = await asyncio.open_unix_connection(path)
        used_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await answer(used)).endswith(b"ok")
        slow, slow_writer = await asyncio.open_unix_connection(path)
        slow_writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await asyncio.wait_for(silent.read(), 2) == b""
        assert await asyncio.wait_for(used.read(), 2) == b""
        release.set()  # the slow request has been under way longer than the idle timeout
        assert (await asyncio.wait_for(answer(slow), 3)).endswith(b"ok")
        for writer in (_silent, used_writer, slow_writer):
            writer.close()
        await server.close()

    asyncio.run(scenario())


CLIENTS_CONFIG = """
[inet_http_server]
port=127.0.0.1:{port}
username=admin
password=s3cret

[program:web]
command=sleep 1000
startsecs=0
"""


def _forged(port: int, headers: dict[str, str]) -> int:
    """What another site's page can make a logged-in browser send: a valid XML-RPC body,
    with the saved credentials."""
    body = xmlrpc.client.dumps(("web",), "supervisor.stopProcess").encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/RPC2", body=body, headers={
        "Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode(), **headers})
    status = connection.getresponse().status
    connection.close()
    return status


def test_rpc2_refuses_other_sites_and_non_xml_and_every_client_still_works(
        start_daemon: StartDaemon) -> None:
    """#18.6: another site's `<form enctype="text/plain">` could POST stopProcess to the
    agent with the browser's saved basic-auth credentials (supervisord does the same)."""
    port = free_port()
    daemon = start_daemon(CLIENTS_CONFIG.format(port=port))
    daemon.wait_state("web", "RUNNING")
    pid = daemon.info("web")["pid"]
    for headers, status in (
            ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),
            ({"Origin": "http://evil.example", "Content-Type": "text/xml"}, 403),
            ({"Origin": "null", "Content-Type": "text/xml"}, 403),
            ({"Content-Type": "text/plain"}, 415),
            ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
            ({}, 415)):  # a no-CORS fetch of a typeless blob sends no Content-Type at all
        assert _forged(port, headers) == status, headers
    assert daemon.info("web")["pid"] == pid  # still running, untouched
    # the real clients: the stock supervisorctl, Python's xmlrpc.client (CESI, the Nagios
    # check), supervisor's own transport (superlance), and the npm client Nodervisor uses
    ctl = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-s",
                          f"http://127.0.0.1:{port}", "-u", "admin", "-p", "s3cret",
                          "status"], capture_output=True, text=True, timeout=60)
    assert ctl.returncode == 0 and ctl.stdout.startswith("web"), ctl.stdout + ctl.stderr
    proxy = xmlrpc.client.ServerProxy(f"http://admin:s3cret@127.0.0.1:{port}/RPC2")
    assert proxy.supervisor.getState()["statename"] == "RUNNING"
    from supervisor import childutils

    assert childutils.getRPCInterface({
        "SUPERVISOR_SERVER_URL": f"http://127.0.0.1:{port}", "SUPERVISOR_USERNAME": "admin",
        "SUPERVISOR_PASSWORD": "s3cret"}).supervisor.getPID() == daemon.proc.pid
    # from the same site (the agent's own page would be): allowed
    assert _forged(port, {"Origin": f"http://127.0.0.1:{port}",
                          "Content-Type": "text/xml"}) == 200
    assert daemon.state("web") == "STOPPED"


def test_rpc2_answers_the_npm_client(start_daemon: StartDaemon, npm_supervisord: Path
                                     ) -> None:
    """The npm `supervisord` client (Nodervisor's) through its real code, over TCP with
    basic auth, against the agent's /RPC2 refusals."""
    port = free_port()
    daemon = start_daemon(CLIENTS_CONFIG.format(port=port))
    daemon.wait_state("web", "RUNNING")
    script = ("const s = require('supervisord').connect(process.argv[1]);"
              "s.getAllProcessInfo((e, v) => { if (e) { console.error(String(e));"
              " process.exit(1); } console.log(JSON.stringify(v.map(p => p.statename))); });")
    done = subprocess.run(["node", "-e", script, f"http://admin:s3cret@127.0.0.1:{port}"],
                          cwd=npm_supervisord, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '["RUNNING"]'
