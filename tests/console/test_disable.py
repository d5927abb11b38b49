"""#18.11 in the console: disabled programs of cesi-agentd nodes are shown, operators disable
and enable them (recorded), and a supervisord node says it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from cesi_like.console.app import make_poller
from cesi_like.console.context import console
from cesi_like.console.services.credentials import hash_password
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Environment, Node, User
from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy
from tests.support.console import PASSWORD, bearer, csrf_from, login, make_app
from tests.support.daemons import StartDaemon

PROGRAMS = ("[program:web]\ncommand=sleep 1000\nstartsecs=0\n"
            "[program:worker]\ncommand=sleep 1000\nprocess_name=w%(process_num)s\nnumprocs=2\n"
            "startsecs=0\n")


@pytest.fixture
def app(tmp_path: Path, start_daemon: StartDaemon) -> Iterator[Flask]:
    agent = start_daemon(PROGRAMS, name="agent")
    sup = start_daemon(PROGRAMS, kind="supervisord", name="sup")
    app = make_app(tmp_path / "console")
    with database.standalone(app) as db:
        prod = Environment(name="prod", description="")
        db.add_all([prod, Node(name="agent", url=agent.url, environments=[prod]),
                    Node(name="sup", url=sup.url, environments=[prod])])
        db.add_all([User(username=name, role=role, password_hash=hash_password(PASSWORD))
                    for name, role in (("op", "operator"), ("viewer", "viewer"))])
        db.commit()
    make_poller(app).poll_now()
    app.config["agent_url"] = agent.url
    yield app
    console(app).engine.dispose()


def processes(app: Flask, node: str) -> dict[str, dict[str, object]]:
    rows = app.test_client().get(f"/api/v1/processes?node={node}",
                                 headers=bearer(app, "op")).get_json()
    return {f"{r['group']}:{r['name']}": r for r in rows}


def test_operators_disable_and_enable_on_agent_nodes(app: Flask) -> None:
    client = app.test_client()
    op = bearer(app, "op")
    done = client.post("/api/v1/nodes/agent/processes/web:web/disable", headers=op)
    assert done.status_code == 200, done.get_json()
    assert done.get_json() == {"results": [{"name": "web:web", "ok": True, "error": None}]}
    shown = processes(app, "agent")["web:web"]  # re-polled at once
    assert (shown["statename"], shown["description"]) == ("STOPPED", "Disabled")
    assert server_proxy(app.config["agent_url"]).cesi.getDisabled() == ["web:web"]
    start = client.post("/api/v1/nodes/agent/processes/web:web/start", headers=op)
    assert start.status_code == 409 and "web:web is disabled" in \
        start.get_json()["results"][0]["error"]
    group = client.post("/api/v1/nodes/agent/processes/worker:*/disable", headers=op)
    assert [r["name"] for r in group.get_json()["results"]] == ["worker:w0", "worker:w1"]
    again = client.post("/api/v1/nodes/agent/processes/worker:*/enable", headers=op)
    assert again.status_code == 200 and len(again.get_json()["results"]) == 2
    assert processes(app, "agent")["worker:w0"]["description"] != "Disabled"
    everything = client.post("/api/v1/nodes/agent/processes/*/disable", headers=op)
    assert everything.status_code == 400 and "not to every process" in \
        everything.get_json()["error"]
    viewer = client.post("/api/v1/nodes/agent/processes/web:web/enable",
                         headers=bearer(app, "viewer"))
    assert viewer.status_code == 403
    with database.standalone(app) as db:
        recorded = [(a.username, a.action, a.target, a.result) for a in db.scalars(
            select(ActivityLog).where(ActivityLog.action.like("process.%able")))]
    assert ("op", "process.disable", "agent/web:web", "ok") in recorded
    assert ("op", "process.enable", "agent/worker:*", "ok") in recorded
    assert ("viewer", "process.enable", "agent/web:web", "denied") in recorded


def test_a_supervisord_node_cannot_disable(app: Flask) -> None:
    refused = app.test_client().post("/api/v1/nodes/sup/processes/web:web/disable",
                                     headers=bearer(app, "op"))
    assert refused.status_code == 409
    assert refused.get_json()["results"] == [{
        "name": "web:web", "ok": False,
        "error": "not available on a supervisord node (disable and enable need cesi-agentd)"}]
    assert processes(app, "sup")["web:web"]["statename"] == "RUNNING"


def test_pages_show_disabled_programs_and_offer_the_right_button(app: Flask) -> None:
    client = app.test_client()
    login(client, "op")
    page = client.get("/nodes/agent/processes/web:web").get_data(as_text=True)
    assert ">Disable</button>" in page and "not available" not in page
    token = csrf_from(page)
    done = client.post("/nodes/agent/processes/web:web/disable",
                       data={"csrf_token": token, "next": "/nodes/agent/processes/web:web"})
    assert done.status_code == 302
    page = client.get("/nodes/agent/processes/web:web").get_data(as_text=True)
    assert "disable on agent: web:web ok." in page
    assert ">Enable</button>" in page and ">Disable</button>" not in page
    node_page = client.get("/nodes/agent").get_data(as_text=True)
    assert '<span class="badge disabled">disabled</span>' in node_page
    assert 'title="Enable web:web on agent"' in node_page  # instead of Start
    sup_page = client.get("/nodes/sup/processes/web:web").get_data(as_text=True)
    assert "Disable: not available on a supervisord node" in sup_page
    assert ">Disable</button>" not in sup_page
    login(viewer := app.test_client(), "viewer")
    assert ">Disable</button>" not in viewer.get("/nodes/agent/processes/worker:w0").get_data(
        as_text=True)


def test_the_cli_disables_through_the_same_rules(app: Flask, tmp_path: Path) -> None:
    env = {**os.environ, "CESI_LIKE_DATABASE": console(app).engine.url.render_as_string(
        hide_password=False)}
    env.pop("CESI_LIKE_CONFIG", None)

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cesi_like.console.cli", "ctl", *args],
                              capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)

    done = ctl("agent", "disable", "worker:w1")
    assert (done.returncode, done.stdout) == (0, "worker:w1: ok\n"), done.stderr
    assert server_proxy(app.config["agent_url"]).cesi.getDisabled() == ["worker:w1"]
    refused = ctl("sup", "disable", "worker:w1")
    assert refused.returncode == 1 and "not available on a supervisord node" in refused.stdout
