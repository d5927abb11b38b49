"""#20.3 open problems and silences: what fires is listed until its condition ends, people
acknowledge it; a silence (node, environment, group, rule) or a node's maintenance keeps it
quiet and says so; maintenance shows on every page and rolling restarts pass the node unless
asked; every right is checked (viewers read, operators act in their scope)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.app import make_poller
from cesi_like.console.context import console
from cesi_like.console.services import alerts
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Node, ProcessEvent, utcnow
from cesi_like.supervisor_rpc.states import ProcessState
from tests.console.test_alert_channels import FIXABLE, Receiver, make
from tests.console.test_confirm import snapshot
from tests.support.console import token_for
from tests.support.daemons import daemons
from tests.support.waiting import wait_for


def bearer(app: Flask, user: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(app, user)}"}


def test_a_problem_is_listed_acknowledged_and_gone_when_it_ends(tmp_path: Path) -> None:
    receiver = Receiver()
    app = make(tmp_path)
    flag = tmp_path / "flag"
    client = app.test_client()
    try:
        with daemons(tmp_path) as start:
            agent = start(FIXABLE.format(flag=flag), name="agent")
            with database.standalone(app) as db:
                db.add(Node(name="web1", url=agent.url))
                db.commit()
            client.post("/api/v1/alerts", headers=bearer(app), json={
                "name": "fatal", "kind": "fatal", "notify": [f"json://{receiver.base}/f"]})
            poller = make_poller(app)
            poller.poll_now()
            start_it = "/api/v1/nodes/web1/processes/needs-flag:needs-flag/start"
            assert client.post(start_it, headers=bearer(app)).status_code == 409
            listed = client.get("/api/v1/problems", headers=bearer(app)).get_json()
            assert [(p["rule"], p["node"], p["process"], p["acknowledged"]) for p in listed] \
                == [("fatal", "web1", "needs-flag:needs-flag", None)]
            page = client.get("/", headers=bearer(app)).get_data(as_text=True)
            assert "Firing now (1)" in page  # the dashboard's panel
            acked = client.post(f"/api/v1/problems/{listed[0]['id']}/ack",
                                headers=bearer(app), json={"note": "on it, disk full"})
            assert acked.status_code == 200
            assert acked.get_json()["acknowledged"]["note"] == "on it, disk full"
            assert acked.get_json()["acknowledged"]["by"] == "admin"
            flag.write_text("")
            assert client.post(start_it, headers=bearer(app)).status_code == 200
            poller.poll_now()
            assert client.get("/api/v1/problems", headers=bearer(app)).get_json() == []
            wait_for(lambda: len(receiver.at("/f")) == 2, 10, "the alert and its end")
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    console(app).engine.dispose()


def fatal(node: str, group: str = "web") -> ProcessEvent:
    return ProcessEvent(time=utcnow(), node=node, group=group, name=f"{group}_0",
                        from_state=ProcessState.BACKOFF, to_state=ProcessState.FATAL, pid=0,
                        exitstatus=0)


SILENCED: list[str] = []  # what the judged changes recorded as silenced


def judged(app: Flask, event: ProcessEvent) -> list[Any]:
    """Judge one change as a stored poll would (then forget it, firings included); what would
    be delivered."""
    with database.standalone(app) as db:
        db.add(event)
        db.flush()
        alerts.judge(db, [event], [])
        pending = list(db.info.pop(alerts.PENDING, []))
        db.flush()
        SILENCED.extend(db.scalars(select(ActivityLog.detail).where(
            ActivityLog.action == "alert.silenced")).all())
        db.rollback()
    return pending


def test_silences_and_maintenance_keep_quiet_and_say_so(app: Flask,
                                                       client: FlaskClient) -> None:
    snapshot(app, "web1", {"web": 1})
    admin = bearer(app)
    rule = client.post("/api/v1/alerts", headers=admin, json={
        "name": "fatal", "kind": "fatal", "webhook_url": "http://127.0.0.1:9/h"}).get_json()
    assert [a.rule for a in judged(app, fatal("web1"))] == ["fatal"]
    for body, error in (({"kind": "node", "target": "ghost", "minutes": 30, "reason": "x"},
                         "no node"),
                        ({"kind": "group", "target": "nosuch", "minutes": 30, "reason": "x"},
                         "no node runs a group"),
                        ({"kind": "node", "target": "web1", "minutes": 0, "reason": "x"},
                         "minutes"),
                        ({"kind": "node", "target": "web1", "minutes": 30, "reason": ""},
                         "reason")):
        answer = client.post("/api/v1/silences", headers=admin, json=body)
        assert answer.status_code in (400, 404) and error in answer.get_json()["error"], body
    for kind, target in (("node", "web1"), ("environment", "prod"), ("group", "web"),
                         ("rule", str(rule["id"]))):
        made = client.post("/api/v1/silences", headers=admin, json={
            "kind": kind, "target": target, "minutes": 30, "reason": "deploy 4.2"})
        assert made.status_code == 201, made.get_json()
        assert judged(app, fatal("web1")) == []  # silenced: nothing goes out
        assert client.delete(f"/api/v1/silences/{made.get_json()['id']}",
                             headers=admin).status_code == 204
        assert [a.rule for a in judged(app, fatal("web1"))] == ["fatal"]  # ended early
    assert len(SILENCED) == 4 and all("deploy 4.2" in line for line in SILENCED)

    on = client.put("/api/v1/nodes/web1/maintenance", headers=admin,
                    json={"on": True, "note": "disk swap"})
    assert on.get_json() == {"node": "web1", "maintenance": True, "note": "disk swap"}
    assert judged(app, fatal("web1")) == []
    for page in ("/", "/processes", "/jobs"):
        html = client.get(page, headers=admin).get_data(as_text=True)
        assert "web1 is in maintenance (disk swap)" in html, page
    rollout = client.post("/api/v1/rollouts", headers=admin, json={
        "environment": "prod", "group": "web"})
    assert rollout.status_code == 400 and "no node of environment prod" in \
        rollout.get_json()["error"]
    assert client.post("/api/v1/rollouts", headers=admin, json={
        "environment": "prod", "group": "web", "include_maintenance": True}).status_code == 202
    client.put("/api/v1/nodes/web1/maintenance", headers=admin, json={"on": False})
    assert "is in maintenance" not in client.get("/", headers=admin).get_data(as_text=True)


def test_viewers_read_and_operators_act_in_their_scope(app: Flask,
                                                       client: FlaskClient) -> None:
    snapshot(app, "web1", {"web": 1})
    viewer, devop = bearer(app, "viewer"), bearer(app, "devop")
    assert client.get("/api/v1/problems", headers=viewer).status_code == 200
    assert client.post("/api/v1/silences", headers=viewer, json={
        "kind": "node", "target": "dev1", "minutes": 5, "reason": "x"}).status_code == 403
    # a dev operator: prod does not exist for them
    for kind, target in (("node", "web1"), ("environment", "prod")):
        assert client.post("/api/v1/silences", headers=devop, json={
            "kind": kind, "target": target, "minutes": 5, "reason": "x"}).status_code == 404
    assert client.put("/api/v1/nodes/web1/maintenance", headers=devop,
                      json={"on": True}).status_code == 404
    made = client.post("/api/v1/silences", headers=devop, json={
        "kind": "node", "target": "dev1", "minutes": 5, "reason": "x"})
    assert made.status_code == 201
    rule_silence = client.post("/api/v1/silences", headers=devop, json={
        "kind": "rule", "target": "1", "minutes": 5, "reason": "x"})
    assert rule_silence.status_code == 403  # silencing a rule is an admin's
