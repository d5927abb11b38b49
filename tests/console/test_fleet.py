"""The fleet against several real nodes at once: cesi-agentd over a unix socket, supervisord 4.3
over TCP with auth, the agent again behind a TLS endpoint, and nodes that are down, hung or
hostile. Snapshot aggregation, actions on process/group/all, logs, roles, scopes, activity."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cesi_like.console.app import make_poller
from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Environment, Node, ProcessEvent
from cesi_like.console.workers.poller import SHARDS, Poller, shares
from cesi_like.supervisor_rpc.schema import running_description
from tests.support.console import bearer, make_app
from tests.support.daemons import Daemon, StartDaemon, daemons, program
from tests.support.hostile import XSS, hostile_node
from tests.support.ports import free_port
from tests.support.tlsproxy import tls_proxy
from tests.support.waiting import LOAD_ROOM, wait_for

PROGRAMS = f"""
[program:web]
command=sleep 1000
numprocs=2
process_name=%(program_name)s_%(process_num)s
startsecs=0

[program:ticker]
command={program("ticker.py")}
startsecs=0

[program:noisy]
command={program("noisy.py", 300000, 100)}
startsecs=0
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Real daemons shared by this module's tests (each test gets its own console)."""
    tmp = tmp_path_factory.mktemp("fleet")
    port = free_port()
    with daemons(tmp) as start:
        agent = start(PROGRAMS, kind="agent", name="agent")
        sup = start(PROGRAMS + f"[inet_http_server]\nport=127.0.0.1:{port}\nusername=alice\n"
                    "password=s3cret\n", kind="supervisord", name="sup")
        with tls_proxy(agent.sock, tmp) as (tls_url, ca_file), \
                hostile_node("xss") as xss_url, hostile_node("drip") as drip_url:
            yield {"agent": agent, "sup": sup, "sup_url": f"http://127.0.0.1:{port}",
                   "tls_url": tls_url, "ca_file": ca_file, "xss_url": xss_url,
                   "drip_url": drip_url}


@pytest.fixture
def fleet_app(tmp_path: Path, nodes: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(tmp_path, CESI_NODE_MAX_BYTES=64 * 1024)
    console(app).nodes.max_bytes = 64 * 1024
    agent: Daemon = nodes["agent"]
    with database.standalone(app) as db:
        prod = Environment(name="prod", description="")
        dev = Environment(name="dev", description="")
        db.add_all([
            Node(name="agent", url=agent.url, environments=[prod]),
            Node(name="sup", url=nodes["sup_url"], username="alice", password="s3cret",
                 environments=[prod]),
            Node(name="tls", url=nodes["tls_url"], ca_file=nodes["ca_file"], environments=[dev]),
            Node(name="refused", url=f"http://127.0.0.1:{free_port()}", environments=[dev]),
            Node(name="badpw", url=nodes["sup_url"], username="alice", password="wrong",
                 environments=[dev]),
            Node(name="hostile", url=nodes["xss_url"], environments=[dev]),
            Node(name="drip", url=nodes["drip_url"], environments=[dev]),
        ])
        db.commit()
        from cesi_like.console.services.credentials import hash_password
        from cesi_like.console.storage.models import User
        from tests.support.console import PASSWORD
        db.add_all([User(username="op", role="operator", password_hash=hash_password(PASSWORD)),
                    User(username="viewer", role="viewer", password_hash=hash_password(PASSWORD)),
                    User(username="devop", role="operator", password_hash=hash_password(PASSWORD),
                         scope=[dev])])
        db.commit()
    make_poller(app).poll_now()
    yield app
    console(app).engine.dispose()


def repoll(app: Flask) -> None:
    make_poller(app).poll_now()


def test_node_states_from_the_snapshot(fleet_app: Flask) -> None:
    client = fleet_app.test_client()
    listed = {n["name"]: n for n in client.get("/api/v1/nodes",
                                               headers=bearer(fleet_app, "admin")).get_json()}
    assert {name: n["state"] for name, n in listed.items()} == {
        "agent": "online", "sup": "online", "tls": "online", "refused": "unreachable",
        "badpw": "auth-failed", "hostile": "online", "drip": "hung"}
    assert listed["agent"]["process_count"] == 4 and listed["agent"]["stale"] is False
    assert listed["drip"]["stale"] is True and "no answer within" in listed["drip"]["reason"]
    assert listed["refused"]["last_ok"] is None and listed["agent"]["last_ok"]
    assert "s3cret" not in str(listed) and "wrong" not in str(listed)


def test_processes_aggregate_every_node_with_filters(fleet_app: Flask) -> None:
    client = fleet_app.test_client()
    admin = bearer(fleet_app, "admin")
    rows = client.get("/api/v1/processes", headers=admin).get_json()
    names = {(r["node"], f"{r['group']}:{r['name']}") for r in rows}
    for node in ("agent", "sup", "tls"):
        assert {(node, "web:web_0"), (node, "web:web_1"), (node, "ticker:ticker")} <= names
    assert set(rows[0]) == {"node", "group", "name", "statename", "state", "pid",
                            "description", "start", "stop", "now", "exitstatus", "spawnerr",
                            "stale"}
    only = client.get("/api/v1/processes?node=sup&group=web", headers=admin).get_json()
    assert sorted(r["name"] for r in only) == ["web_0", "web_1"]
    dev = client.get("/api/v1/processes?environment=dev", headers=admin).get_json()
    assert {r["node"] for r in dev} == {"tls", "hostile"}
    assert client.get("/api/v1/processes?state=FATAL", headers=admin).get_json() == []
    # a scoped operator sees only its environments' nodes
    scoped = client.get("/api/v1/processes", headers=bearer(fleet_app, "devop")).get_json()
    assert {r["node"] for r in scoped} == {"tls", "hostile"}


def test_actions_on_process_group_and_all(fleet_app: Flask, nodes: dict[str, Any]) -> None:
    client = fleet_app.test_client()
    op = bearer(fleet_app, "op")
    for node in ("agent", "sup", "tls"):
        stop = client.post(f"/api/v1/nodes/{node}/processes/web:web_0/stop", headers=op)
        assert stop.status_code == 200, stop.get_json()
        assert stop.get_json() == {"results": [{"name": "web:web_0", "ok": True, "error": None}]}
        # the node was re-polled at once: the snapshot already shows it
        state = {(r["group"], r["name"]): r["statename"] for r in client.get(
            f"/api/v1/processes?node={node}", headers=op).get_json()}
        assert state[("web", "web_0")] == "STOPPED"
        again = client.post(f"/api/v1/nodes/{node}/processes/web:web_0/stop", headers=op)
        assert again.status_code == 409
        assert "NOT_RUNNING" in again.get_json()["results"][0]["error"]
        group = client.post(f"/api/v1/nodes/{node}/processes/web:*/start", headers=op)
        # as supervisord does, a group start reports only the processes it had to start
        assert group.get_json() == {"results": [{"name": "web:web_0", "ok": True,
                                                 "error": None}]}
        restart = client.post(f"/api/v1/nodes/{node}/processes/web:*/restart", headers=op)
        assert restart.status_code == 200 and len(restart.get_json()["results"]) == 2
        hup = client.post(f"/api/v1/nodes/{node}/processes/web:web_1/signal", headers=op,
                          json={"signal": "HUP"})
        assert hup.status_code == 200, hup.get_json()
    everything = client.post("/api/v1/nodes/agent/processes/*/restart", headers=op)
    assert everything.status_code == 200
    assert {r["name"] for r in everything.get_json()["results"]} == {
        "web:web_0", "web:web_1", "ticker:ticker", "noisy:noisy"}
    bad_signal = client.post("/api/v1/nodes/agent/processes/web:web_1/signal", headers=op,
                             json={"signal": "NOPE"})
    assert bad_signal.status_code == 400 and "signal must be" in bad_signal.get_json()["error"]
    assert client.post("/api/v1/nodes/agent/processes/web:web_1/explode",
                       headers=op).status_code == 404
    assert client.post("/api/v1/nodes/agent/processes/bad%00name/start",
                       headers=op).status_code == 400
    with database.standalone(fleet_app) as db:
        actions = [(a.action, a.target, a.result) for a in db.scalars(
            select(ActivityLog).where(ActivityLog.action.startswith("process.")))]
    assert ("process.stop", "sup/web:web_0", "ok") in actions
    assert ("process.stop", "sup/web:web_0", "failed") in actions
    assert ("process.signal HUP", "agent/web:web_1", "ok") in actions


def test_roles_and_scopes_on_actions(fleet_app: Flask) -> None:
    client = fleet_app.test_client()
    viewer = client.post("/api/v1/nodes/agent/processes/web:web_0/stop",
                         headers=bearer(fleet_app, "viewer"))
    assert viewer.status_code == 403
    outside = client.post("/api/v1/nodes/agent/processes/web:web_0/stop",
                          headers=bearer(fleet_app, "devop"))
    assert outside.status_code == 404  # no hint that the node exists
    assert client.post("/api/v1/nodes/nope/processes/web:web_0/stop",
                       headers=bearer(fleet_app, "op")).status_code == 404
    with database.standalone(fleet_app) as db:
        denied = db.scalars(select(ActivityLog).where(ActivityLog.result == "denied")).all()
    assert [(d.username, d.action) for d in denied] == [("viewer", "process.stop")]
    states = {r["name"]: r["statename"] for r in client.get(
        "/api/v1/processes?node=agent", headers=bearer(fleet_app, "op")).get_json()}
    assert states["web_0"] == "RUNNING"  # nothing changed


def test_failing_nodes_fail_actions_fast(fleet_app: Flask) -> None:
    client = fleet_app.test_client()
    op = bearer(fleet_app, "op")
    began = time.monotonic()
    hung = client.post("/api/v1/nodes/drip/processes/web:web_0/start", headers=op)
    assert hung.status_code == 502 and "hung" in hung.get_json()["error"]
    assert time.monotonic() - began < fleet_app.config["CESI_NODE_TIMEOUT"] + LOAD_ROOM
    refused = client.post("/api/v1/nodes/refused/processes/*/stop", headers=op)
    assert refused.status_code == 502 and "unreachable" in refused.get_json()["error"]


def test_log_tail_follows_and_download_exceeds_the_cap(fleet_app: Flask) -> None:
    client = fleet_app.test_client()
    viewer = bearer(fleet_app, "viewer")
    url = "/api/v1/nodes/sup/processes/ticker:ticker/log"
    first = client.get(f"{url}?length=1000", headers=viewer).get_json()
    assert "tick" in first["data"]
    seen = first["data"]
    offset = first["offset"]

    def more() -> bool:
        nonlocal offset, seen
        later = client.get(f"{url}?offset={offset}&length=1000", headers=viewer).get_json()
        offset = later["offset"]
        seen += later["data"]
        return later["data"] != ""

    wait_for(more, what="new ticker output")
    numbers = [int(n) for n in re.findall(r"tick (\d+)", seen)]
    assert numbers == sorted(numbers) and len(numbers) >= 2
    bad = client.get(f"{url}?stream=nope", headers=viewer)
    assert bad.status_code == 400
    assert client.get("/api/v1/nodes/sup/processes/web:nope/log",
                      headers=viewer).status_code == 404
    # 300 kB of log through a console that reads at most 64 kB per answer
    for node in ("agent", "sup"):
        download = client.get(f"/api/v1/nodes/{node}/processes/noisy:noisy/log/download",
                              headers=viewer)
        assert download.status_code == 200
        body = download.get_data()
        assert len(body) > 300000 and body.endswith(b"DONE\n")
        for run in body.split(b"DONE\n")[:-1]:  # one run per start of the program
            numbers = [int(line.split()[0]) for line in run.splitlines()]
            assert numbers == list(range(len(numbers)))


def test_main_log_of_a_node_is_for_admins(fleet_app: Flask) -> None:
    """supervisord and cesi-agentd both serve their main log's end; only admins read it."""
    from tests.support.console import login

    client = fleet_app.test_client()
    admin = bearer(fleet_app, "admin")
    for node in ("agent", "sup"):
        answer = client.get(f"/api/v1/nodes/{node}/log?length=4000", headers=admin)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        data = answer.get_json()["data"]
        assert "success: web_0 entered RUNNING state" in data and 0 < len(data) <= 4000
    assert client.get("/api/v1/nodes/agent/log?length=0", headers=admin).status_code == 400
    assert client.get("/api/v1/nodes/drip/log", headers=admin).status_code == 502
    assert client.get("/api/v1/nodes/agent/log", headers=bearer(fleet_app, "op")
                      ).status_code == 403
    with database.standalone(fleet_app) as db:
        denied = db.scalars(select(ActivityLog).where(ActivityLog.action == "node.main-log")
                            ).all()
    assert [(d.username, d.result) for d in denied] == [("op", "denied")]
    login(client, "admin")
    assert "Main log" in client.get("/nodes/agent").get_data(as_text=True)
    page = client.get("/nodes/agent/log").get_data(as_text=True)
    assert "data-log-whole" in page and "/api/v1/nodes/agent/log" in page
    login(client := fleet_app.test_client(), "op")
    assert "Main log" not in client.get("/nodes/agent").get_data(as_text=True)
    assert client.get("/nodes/agent/log").status_code == 403


def test_pages_show_processes_escaped(fleet_app: Flask) -> None:
    from tests.support.console import login

    client = fleet_app.test_client()
    login(client, "op")
    for url in ("/", "/processes", "/processes?q=web&sort=state", "/nodes/agent",
                "/nodes/hostile", "/groups/web", "/nodes/sup/processes/web:web_0",
                "/nodes/drip", "/nodes/refused/processes/web:web_0"):
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.get_data(as_text=True)
        assert "<script>alert" not in html, url
    hostile = client.get("/nodes/hostile").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile
    node = client.get("/nodes/agent").get_data(as_text=True)
    assert ">Stop</button>" in node and "web_0" in node
    assert "onsubmit" not in node and 'data-confirm="Stop web:web_0 on agent?"' in node
    assert client.get("/nodes/dev-only-nope").status_code == 404
    assert XSS not in client.get("/processes?q=" + XSS).get_data(as_text=True)


def test_live_fragments_are_conditional(fleet_app: Flask) -> None:
    from tests.support.console import login

    client = fleet_app.test_client()
    login(client, "viewer")
    first = client.get("/processes", headers={"X-Fragment": "1"})
    assert first.status_code == 200 and "<html" not in first.get_data(as_text=True)
    etag = first.headers["ETag"]
    same = client.get("/processes", headers={"X-Fragment": "1", "If-None-Match": etag})
    assert same.status_code == 304


def test_action_forms_record_and_redirect(fleet_app: Flask) -> None:
    from tests.support.console import csrf_from, login

    client = fleet_app.test_client()
    login(client, "op")
    token = csrf_from(client.get("/nodes/agent").get_data(as_text=True))
    done = client.post("/nodes/agent/processes/web:web_1/stop",
                       data={"csrf_token": token, "next": "/nodes/agent"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/nodes/agent")
    page = client.get("/nodes/agent").get_data(as_text=True)
    assert "stop on agent: web:web_1 ok." in page
    assert client.post("/nodes/agent/processes/web:web_1/start",
                       data={"next": "/"}).status_code == 400  # no CSRF token: refused
    row = client.get("/api/v1/processes?node=agent&group=web").get_json()
    assert {r["name"]: r["statename"] for r in row}["web_1"] == "STOPPED"
    client.post("/nodes/agent/processes/web:web_1/start", data={"csrf_token": token})
    login(client := fleet_app.test_client(), "viewer")
    token = csrf_from(client.get("/nodes/agent").get_data(as_text=True))
    assert client.post("/nodes/agent/processes/web:web_1/stop",
                       data={"csrf_token": token}).status_code == 403


@pytest.mark.parametrize("name", ["sup", "agent"])
def test_poller_sees_changes_behind_the_consoles_back(fleet_app: Flask, nodes: dict[str, Any],
                                                      name: str) -> None:
    """supervisord is polled in full, cesi-agentd through its change feed: both show a stop
    made with another client, and the feed's quiet answers still move every uptime on."""
    fleet_app.config["CESI_POLL_INTERVAL"] = 0.3
    poller = make_poller(fleet_app)
    poller.start()
    client = fleet_app.test_client()
    admin = bearer(fleet_app, "admin")

    def rows() -> dict[str, dict[str, Any]]:
        found = client.get(f"/api/v1/processes?node={name}&group=web", headers=admin)
        return {r["name"]: r for r in found.get_json()}

    try:
        wait_for(lambda: poller.rounds > 7, timeout=10)
        with database.standalone(fleet_app) as db:
            node_id = db.scalars(select(Node.id).where(Node.name == name)).one()
        assert poller.uses_feed(node_id) is (name == "agent")
        before = rows()["web_0"]
        wait_for(lambda: rows()["web_0"]["now"] >= before["now"] + 2, timeout=10)
        after = rows()["web_0"]
        assert after["description"] == running_description(after["pid"], after["start"],
                                                           after["now"])
        assert after["description"] != before["description"]
        nodes[name].rpc().stopProcess("web:web_1")
        wait_for(lambda: rows()["web_1"]["statename"] == "STOPPED",
                 timeout=fleet_app.config["CESI_POLL_INTERVAL"] + 5)
    finally:
        poller.stop()
        nodes[name].rpc().startProcess("web:web_1")
    with database.standalone(fleet_app) as db:
        changes = db.scalars(select(ProcessEvent).where(
            ProcessEvent.node == name, ProcessEvent.name == "web_1")).all()
    seen = [(c.from_state, c.to_state) for c in changes]
    assert (20, 0) in seen or (40, 0) in seen, seen  # RUNNING (-> STOPPING) -> STOPPED


def test_a_stopped_node_is_hung_and_keeps_its_last_processes(tmp_path: Path) -> None:
    with daemons(tmp_path) as start:
        sup = start(PROGRAMS, kind="supervisord")
        app = make_app(tmp_path / "console")
        with database.standalone(app) as db:
            db.add(Node(name="frozen", url=sup.url))
            db.commit()
        repoll(app)
        os.kill(sup.proc.pid, signal.SIGSTOP)
        try:
            repoll(app)
            client = app.test_client()
            node = client.get("/api/v1/nodes", headers=bearer(app, "admin")).get_json()[0]
            assert node["state"] == "hung" and node["stale"] is True
            rows = client.get("/api/v1/processes", headers=bearer(app, "admin")).get_json()
            assert len(rows) == 4 and all(r["stale"] for r in rows)
        finally:
            os.kill(sup.proc.pid, signal.SIGCONT)
            console(app).engine.dispose()


def test_tls_settings_through_the_api(fleet_app: Flask, nodes: dict[str, Any]) -> None:
    client = fleet_app.test_client()
    admin = bearer(fleet_app, "admin")
    created = client.post("/api/v1/nodes", headers=admin, json={
        "name": "tls2", "url": nodes["tls_url"]})
    assert created.status_code == 201 and created.get_json()["verify_tls"] is True

    def state() -> dict[str, Any]:
        listed = {n["name"]: n for n in client.get("/api/v1/nodes", headers=admin).get_json()}
        return listed["tls2"]

    assert state()["state"] == "error" and "certificate" in state()["reason"]
    client.patch("/api/v1/nodes/tls2", headers=admin, json={"verify_tls": False})
    assert state()["state"] == "online"
    client.patch("/api/v1/nodes/tls2", headers=admin, json={
        "verify_tls": True, "ca_file": nodes["ca_file"]})
    assert state()["state"] == "online"
    bad = client.patch("/api/v1/nodes/tls2", headers=admin, json={"verify_tls": "yes"})
    assert bad.status_code == 400
    for key in ("ca_file", "client_cert"):  # a path the console cannot read: said, not stored
        missing = client.patch("/api/v1/nodes/tls2", headers=admin,
                               json={key: "/nonexistent/ca.pem"})
        assert missing.status_code == 400, missing.get_json()
        assert missing.get_json()["error"] == (f"{key}: no readable file at "
                                               "/nonexistent/ca.pem on the console host")
    assert state()["state"] == "online"  # still verified with the CA file it had


def held_once(pollers: tuple[Poller, ...]) -> bool:
    """Every share held, and by one of `pollers` only. A poller learns that its lease ran out
    at its next claim, so on a starved machine two may both count a share for an instant:
    this is what they settle on."""
    views = [poller.held for poller in pollers]
    return (len(frozenset().union(*views)) == SHARDS
            and sum(map(len, views)) == SHARDS)


def test_shard_leases_are_held_by_one_poller_each(fleet_app: Flask) -> None:
    """Pollers racing for the shares each win disjoint ones; a share is polled again soon
    after its holder stops, and a poller limited to a share never takes another."""
    fleet_app.config["CESI_POLL_INTERVAL"] = 0.2
    first, second = make_poller(fleet_app), make_poller(fleet_app)
    half = make_poller(fleet_app, shares(0, 2))
    pollers = (first, second, half)
    for poller in pollers:
        poller.start()
    try:
        wait_for(lambda: held_once(pollers), what="every share held by one poller")
        holder = first if first.held else second
        other = second if holder is first else first
        holder.stop()  # hands its leases over at once
        wait_for(lambda: held_once((other, half)), what="the others to take over")
        assert half.held <= shares(0, 2)
        polled = other.rounds + half.rounds
        wait_for(lambda: other.rounds + half.rounds > polled + 7, what="polls by the new holders")
    finally:
        for poller in pollers:
            poller.stop()


def test_a_late_dedicated_poller_takes_its_shares_from_a_standby_one(fleet_app: Flask) -> None:
    """A web worker's standby poller that claimed every share (the dedicated poller process
    started late, on a slow host) gives the dedicated one its shares at its first claim,
    and keeps the others; dedicated pollers never take from each other."""
    fleet_app.config["CESI_POLL_INTERVAL"] = 60.0  # leases far from lapsing: no takeover
    standby = make_poller(fleet_app, standby=True)
    late, other = make_poller(fleet_app, shares(0, 2)), make_poller(fleet_app)
    try:
        standby._claim()
        assert standby.held == frozenset(range(SHARDS))
        late._claim()
        assert late.held == shares(0, 2)
        standby._claim()
        assert standby.held == shares(1, 2)
        other._claim()  # another dedicated one: the standby's shares, never `late`'s
        late._claim()
        assert (other.held, late.held) == (shares(1, 2), shares(0, 2))
    finally:
        for poller in (standby, late, other):
            poller.stop()


EURO_LINE = r"'\u20ac\u20ac\n'"  # "€€\n", 7 bytes: 1 KB windows cut its characters
EUROS = f"""
[program:euros]
command={program("repeat.py", EURO_LINE, 1500)}
startsecs=0
stdout_logfile=%(here)s/euros.log
"""


@pytest.mark.parametrize("kind", ["supervisord", "agent"])
def test_logs_whose_windows_cut_characters_are_read_whole(tmp_path: Path,
                                                          start_daemon: StartDaemon,
                                                          kind: str) -> None:
    """#18.2: a node answers HTTP 500 for a log window that cuts a UTF-8 character (both do
    now); the console widens the window instead of failing, and never invents a character:
    a tail of 1000 bytes of 3-byte characters, and a download read in 1 KB windows."""
    daemon = start_daemon(EUROS, kind=kind)
    wait_for(lambda: (daemon.dir / "euros.log").exists()
             and (daemon.dir / "euros.log").stat().st_size == 1500 * 7)
    app = make_app(tmp_path, CESI_NODE_MAX_BYTES=8192)  # downloads read 1,024 bytes a call
    with database.standalone(app) as db:
        db.add(Node(name="n", url=daemon.url))
        db.commit()
    client, admin = app.test_client(), bearer(app, "admin")
    url = "/api/v1/nodes/n/processes/euros:euros/log"
    tail = client.get(f"{url}?length=1000", headers=admin)
    assert tail.status_code == 200, tail.get_json()
    assert tail.get_json()["data"].endswith("€€\n") and "\ufffd" not in tail.get_json()["data"]
    download = client.get(f"{url}/download", headers=admin)
    assert download.status_code == 200
    assert download.get_data() == "€€\n".encode() * 1500
    console(app).engine.dispose()
