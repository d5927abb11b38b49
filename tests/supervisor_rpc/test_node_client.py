"""The console's node client against real nodes (supervisord 4.3 and cesi-agentd, unix and TCP,
with auth, behind TLS) and against every way a node can fail or attack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
import xmlrpc.client
from pathlib import Path

import pytest

from cesi_like.supervisor_rpc.node import (
    NodeAddress,
    NodeClient,
    NodeError,
    NodeState,
    Snapshot,
    Unchanged,
    endpoint,
)
from cesi_like.supervisor_rpc.states import Fault, ProcessState
from tests.support.daemons import StartDaemon
from tests.support.hostile import BODIES, XSS, hostile_node
from tests.support.ports import free_port
from tests.support.tlsproxy import tls_proxy
from tests.support.waiting import LOAD_ROOM, wait_for

PROGRAMS = ("[program:web]\ncommand=sleep 1000\nnumprocs=3\n"
            "process_name=%(program_name)s_%(process_num)s\nstartsecs=0\n")
TIMEOUT = 1.5


def inet(port: int, auth: bool = True) -> str:
    users = "username=alice\npassword=s3cret\n" if auth else ""
    return f"[inet_http_server]\nport=127.0.0.1:{port}\n{users}"


@pytest.fixture
def client() -> NodeClient:
    return NodeClient(timeout=TIMEOUT)


@pytest.mark.parametrize("kind", ["agent", "supervisord"])
def test_snapshot_over_unix_and_tcp_with_auth(kind: str, start_daemon: StartDaemon,
                                              client: NodeClient) -> None:
    port = free_port()
    daemon = start_daemon(PROGRAMS + inet(port), kind=kind)
    for address in (NodeAddress("n", daemon.url),
                    NodeAddress("n", f"http://127.0.0.1:{port}", "alice", "s3cret")):
        snap = client.snapshot(address)
        assert snap.version == "4.3.0" and snap.supervisor_state == 1
        assert sorted(p.full_name for p in snap.processes) == [
            "web:web_0", "web:web_1", "web:web_2"]
        assert all(p.statename == "RUNNING" and p.pid > 0 for p in snap.processes)
    with pytest.raises(NodeError) as wrong:
        client.snapshot(NodeAddress("n", f"http://127.0.0.1:{port}", "alice", "nope"))
    assert wrong.value.state is NodeState.AUTH_FAILED
    # a fault is the node's answer, not a node failure
    with pytest.raises(xmlrpc.client.Fault) as fault:
        client.call(NodeAddress("n", daemon.url), "supervisor.startProcess", "nope:nope")
    assert fault.value.faultCode == Fault.BAD_NAME


def test_change_feed_of_the_agent(start_daemon: StartDaemon, client: NodeClient) -> None:
    """A full answer first, then a few bytes while only the clock moves, then in full again
    after any change; supervisord has no feed (None: poll it in full)."""
    daemon = start_daemon(PROGRAMS + "[program:once]\ncommand=true\nautostart=false\n")
    node = NodeAddress("n", daemon.url)
    first = client.changes(node)
    assert isinstance(first, Snapshot) and first.token
    assert sorted(p.full_name for p in first.processes) == [
        "once:once", "web:web_0", "web:web_1", "web:web_2"]
    quiet = client.changes(node, first.token)
    assert isinstance(quiet, Unchanged) and quiet.token == first.token
    assert quiet.version == "4.3.0" and quiet.supervisor_state == 1 and quiet.now > 0
    client.call(node, "supervisor.stopProcess", "web:web_1")
    moved = client.changes(node, first.token)
    assert isinstance(moved, Snapshot) and moved.token != first.token
    assert {p.full_name: p.statename for p in moved.processes}["web:web_1"] == "STOPPED"
    # with every state change since the token, as the agent made them
    assert first.transitions is None and moved.transitions is not None
    assert [(t.group, t.name, t.from_state, t.to_state, t.expected)
            for t in moved.transitions] == [
        ("web", "web_1", ProcessState.RUNNING, ProcessState.STOPPING, True),
        ("web", "web_1", ProcessState.STOPPING, ProcessState.STOPPED, True)]
    assert moved.transitions[1].pid == {p.full_name: p.pid for p in first.processes}[
        "web:web_1"] and moved.now is not None and moved.now >= int(moved.transitions[1].time)
    # a token from another run of the agent is never taken for "unchanged"
    other_run = client.changes(node, "feedbeef0000:" + first.token.split(":")[1])
    assert isinstance(other_run, Snapshot) and other_run.transitions is None
    with pytest.raises(xmlrpc.client.Fault) as refused:
        client.call(node, "cesi.getChangesSince", "x" * 65)
    assert refused.value.faultCode == Fault.INCORRECT_PARAMETERS
    # invisible to Supervisor clients: system.listMethods stays supervisord's
    assert "cesi.getChangesSince" not in client.call(node, "system.listMethods")

    plain = start_daemon(PROGRAMS, kind="supervisord")
    assert client.changes(NodeAddress("s", plain.url)) is None


def test_https_node_is_verified(start_daemon: StartDaemon, client: NodeClient,
                                tmp_path: Path) -> None:
    daemon = start_daemon(PROGRAMS)
    with tls_proxy(daemon.sock, tmp_path) as (url, ca_file):
        assert len(client.snapshot(NodeAddress("n", url, verify=ca_file)).processes) == 3
        with pytest.raises(NodeError) as untrusted:  # system CAs do not know our test CA
            client.snapshot(NodeAddress("n", url))
        assert untrusted.value.state is NodeState.ERROR
        assert "TLS" in untrusted.value.reason and "certificate" in untrusted.value.reason
        assert len(client.snapshot(NodeAddress("n", url, verify=False)).processes) == 3
        # a CA file or client certificate that is gone is the node's error, not the caller's
        for missing in (NodeAddress("n", url, verify=str(tmp_path / "gone.pem")),
                        NodeAddress("n", url, cert=str(tmp_path / "gone.pem"))):
            with pytest.raises(NodeError) as gone:
                client.snapshot(missing)
            assert gone.value.state is NodeState.ERROR and "gone.pem" in gone.value.reason


def test_node_without_the_rpc_interface(tmp_path: Path, client: NodeClient) -> None:
    conf = tmp_path / "bare.conf"
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/main.log\npidfile={tmp_path}/d.pid\n"
                    f"[unix_http_server]\nfile={tmp_path}/bare.sock\n")
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-n", "-c",
                             str(conf)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (tmp_path / "bare.sock").exists())
        with pytest.raises(NodeError) as error:
            client.snapshot(NodeAddress("n", f"unix://{tmp_path}/bare.sock"))
        assert error.value.state is NodeState.NO_RPC
    finally:
        proc.terminate()
        proc.wait(30)


def test_refused_and_unknown(client: NodeClient, tmp_path: Path) -> None:
    for url in (f"http://127.0.0.1:{free_port()}", f"unix://{tmp_path}/none.sock"):
        with pytest.raises(NodeError) as error:
            client.snapshot(NodeAddress("n", url))
        assert error.value.state is NodeState.UNREACHABLE and error.value.reason


def test_a_stopped_supervisord_is_hung_within_the_deadline(
    start_daemon: StartDaemon, client: NodeClient
) -> None:
    daemon = start_daemon(PROGRAMS, kind="supervisord")
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        with pytest.raises(NodeError) as error:
            client.snapshot(NodeAddress("n", daemon.url))
        assert error.value.state is NodeState.HUNG
        assert time.monotonic() - began < TIMEOUT + LOAD_ROOM
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("mode,state,words", [
    ("drip", NodeState.HUNG, "no answer within"),
    ("slow-headers", NodeState.HUNG, "no answer within"),
    ("silent", NodeState.HUNG, "no answer within"),
    ("huge", NodeState.ERROR, "limit"),
    ("gzip", NodeState.ERROR, "compressed"),
    ("invalid-xml", NodeState.ERROR, "malformed"),
    ("bomb", NodeState.ERROR, "DTD"),
    ("deep", NodeState.ERROR, "nested deeper"),
    ("wrong-types", NodeState.ERROR, "pid: expected an integer"),
    ("not-a-list", NodeState.ERROR, "expected an array"),
    ("fault", NodeState.NO_RPC, "UNKNOWN_METHOD"),
    ("html", NodeState.ERROR, "malformed"),
    ("http-500", NodeState.ERROR, "HTTP 500"),
    ("colon-name", NodeState.ERROR, "not a valid name"),
    ("feed-wrong-types", NodeState.ERROR, "exitstatus: expected an integer"),
    ("feed-long-token", NodeState.ERROR, "token: longer than 64"),
])
def test_hostile_answers_become_node_states(mode: str, state: NodeState, words: str,
                                            client: NodeClient) -> None:
    """Every answer is classified within the deadline, with bounded memory."""
    with hostile_node(mode) as url:
        tracemalloc.start()
        began = time.monotonic()
        try:
            with pytest.raises(NodeError) as error:
                # as the poller asks: the change feed first, then (supervisord) in full
                if client.changes(NodeAddress("n", url)) is None:
                    client.snapshot(NodeAddress("n", url))
            elapsed = time.monotonic() - began
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert error.value.state is state, error.value.reason
    assert words in error.value.reason
    assert elapsed < TIMEOUT + LOAD_ROOM
    assert peak < 20 * 1024 * 1024  # the 200 MB body was never read whole


def test_markup_in_names_is_data_not_an_error(client: NodeClient) -> None:
    """Valid answers with HTML in them pass: escaping is the page's job, and it is tested."""
    assert "xss" in BODIES
    with hostile_node("xss") as url:
        names = [p.name for p in client.snapshot(NodeAddress("n", url)).processes]
    assert XSS in names


@pytest.mark.parametrize("url,why", [
    ("ftp://host", "must start with"),
    ("http://u:p@host:9001", "credentials"),
    ("http://host:99999", "port"),
    ("http://host:0", "port"),
    ("http://:9001", "no host"),
    ("unix://relative.sock", "absolute"),
])
def test_bad_urls_are_refused_before_connecting(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        endpoint(url)


def test_endpoints() -> None:
    assert endpoint("http://h") == "http://h:9001/RPC2"
    assert endpoint("http://h:10/") == "http://h:10/RPC2"
    assert endpoint("https://h/nodes/a/") == "https://h/nodes/a/RPC2"
    assert endpoint("unix:///run/s.sock") == "http+unix://%2Frun%2Fs.sock/RPC2"
