"""#10.1 bulk actions against real nodes (cesi-agentd and supervisord 4.3) and a node that is
down: every node at once, each node's per-process results, one activity entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cesi_like.console.app import make_job_runner, make_poller
from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Environment, Job, Node
from tests.support.console import csrf_from, login, make_app, token_for
from tests.support.daemons import Daemon, daemons
from tests.support.ports import closed_url

PROGRAMS = """
[program:web]
command=sleep 1000
process_name=%(program_name)s_%(process_num)s
numprocs=2
startsecs=0

[program:other]
command=sleep 1000
startsecs=0
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Daemon]]:
    with daemons(tmp_path_factory.mktemp("bulk")) as start:
        yield [start(PROGRAMS, name="a1"), start(PROGRAMS, kind="supervisord", name="s1")]


@pytest.fixture
def bulk_app(tmp_path: Path, nodes: list[Daemon]) -> Iterator[Flask]:
    dead = closed_url()
    app = make_app(tmp_path)
    with database.standalone(app) as db:
        prod = Environment(name="prod", description="")
        db.add_all([Node(name="a1", url=nodes[0].url, environments=[prod]),
                    Node(name="s1", url=nodes[1].url, environments=[prod]),
                    Node(name="down", url=dead, environments=[prod])])
        db.commit()
    make_poller(app).poll_now()
    yield app
    console(app).engine.dispose()


def post(app: Flask, body: dict[str, Any], user: str = "admin") -> Any:
    return app.test_client().post("/api/v1/bulk", json=body,
                                  headers={"Authorization": f"Bearer {token_for(app, user)}"})


def pids(daemon: Daemon) -> dict[str, int]:
    return {i["name"]: i["pid"] for i in daemon.rpc().getAllProcessInfo() if i["group"] == "web"}


def test_restart_across_three_nodes_with_one_down(bulk_app: Flask,
                                                  nodes: list[Daemon]) -> None:
    before = [pids(daemon) for daemon in nodes]
    answer = post(bulk_app, {"action": "restart", "spec": "web:*",
                             "nodes": ["a1", "s1", "down"]})
    assert answer.status_code == 202, answer.get_json()
    job_id = answer.get_json()["id"]
    assert make_job_runner(bulk_app).run_once() == job_id
    shown = bulk_app.test_client().get(
        f"/api/v1/jobs/{job_id}",
        headers={"Authorization": f"Bearer {token_for(bulk_app, 'admin')}"}).get_json()
    steps = {step["node"]: step for step in shown["steps"]}
    assert steps["a1"]["state"] == steps["s1"]["state"] == "done"
    assert sorted(r["name"] for r in steps["s1"]["results"]) == ["web:web_0", "web:web_1"]
    assert all(r["ok"] for r in steps["a1"]["results"] + steps["s1"]["results"])
    assert steps["down"]["state"] == "failed"
    assert steps["down"]["detail"].startswith("node down is unreachable")
    assert shown["state"] == "failed" and shown["message"].startswith("2 of 3 targets ok")
    for old, daemon in zip(before, nodes, strict=True):
        assert all(pids(daemon)[name] != pid for name, pid in old.items())
    with database.standalone(bulk_app) as db:
        entries = db.scalars(select(ActivityLog).where(
            ActivityLog.action == "process.restart")).all()
    assert len(entries) == 1  # one entry for the whole action, with its targets and results
    assert entries[0].target == f"job {job_id}: a1/web:*, s1/web:*, down/web:*"
    assert entries[0].result == "failed" and "down: node down is unreachable" in entries[0].detail


def test_explicit_targets_and_signal(bulk_app: Flask, nodes: list[Daemon]) -> None:
    other = [i["pid"] for i in nodes[0].rpc().getAllProcessInfo() if i["name"] == "other"]
    answer = post(bulk_app, {"action": "signal", "signal": "STOP", "targets": [
        {"node": "a1", "spec": "other:other"}, {"node": "s1", "spec": "web:web_0"}]})
    assert answer.status_code == 202
    make_job_runner(bulk_app).run_once()
    with database.standalone(bulk_app) as db:
        job = db.get(Job, answer.get_json()["id"])
        assert job is not None and job.state == "succeeded", job.message
    status = Path(f"/proc/{other[0]}/status").read_text()
    assert "State:\tT" in status  # stopped by the signal
    post(bulk_app, {"action": "signal", "signal": "CONT", "targets": [
        {"node": "a1", "spec": "other:other"}, {"node": "s1", "spec": "web:web_0"}]})
    make_job_runner(bulk_app).run_once()


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"action": "reboot", "spec": "*", "nodes": ["a1"]}, 400, "action: one of"),
    ({"action": "restart", "spec": "web:*", "nodes": ["a1", "ghost"]}, 404, "no node 'ghost'"),
    ({"action": "restart", "spec": "web:*", "environment": "nope"}, 404, "no environment"),
    ({"action": "restart", "spec": "nosuch:*", "environment": "prod"}, 400, "runs 'nosuch:*'"),
    ({"action": "restart", "spec": "web:*"}, 400, "give environment or nodes"),
    ({"action": "restart", "targets": [{"node": "a1"}]}, 400, "targets: a list"),
    ({"action": "restart", "targets": [{"node": "a1", "spec": "web:*"}] * 2}, 400, "twice"),
    ({"action": "signal", "spec": "web:*", "nodes": ["a1"]}, 400, "signal must be one of"),
    ({"action": "stop", "signal": "HUP", "spec": "web:*", "nodes": ["a1"]}, 400, "only with"),
    ({"action": "stop", "spec": "web:\x00", "nodes": ["a1"]}, 400, "not a process name"),
])
def test_bad_requests_start_nothing(bulk_app: Flask, body: dict[str, Any], status: int,
                                    error: str) -> None:
    answer = post(bulk_app, body)
    assert answer.status_code == status and error in answer.get_json()["error"], \
        answer.get_json()
    with database.standalone(bulk_app) as db:
        assert db.scalars(select(Job)).all() == []


def test_viewers_may_not(bulk_app: Flask) -> None:
    from cesi_like.console.services.credentials import hash_password
    from cesi_like.console.storage.models import User

    with database.standalone(bulk_app) as db:
        db.add(User(username="viewer", role="viewer", password_hash=hash_password("x" * 12)))
        db.commit()
    answer = post(bulk_app, {"action": "stop", "spec": "*", "nodes": ["a1"]}, "viewer")
    assert answer.status_code == 403


def test_the_processes_page_bulk_form(bulk_app: Flask, nodes: list[Daemon]) -> None:
    """Ticked rows become one bulk job (a wholly ticked group becomes `group:*`, one call
    per node); "all matching" takes the page's filters; a bad choice comes back as a message
    and starts nothing; the form is an operator's."""
    client = bulk_app.test_client()
    login(client)
    page = client.get("/processes?group=web").get_data(as_text=True)
    assert 'id="bulk"' in page and 'value="a1/web:web_0"' in page and 'form="bulk"' in page
    token = csrf_from(page)
    before = [pids(daemon) for daemon in nodes]

    def submit(**fields: Any) -> Any:
        return client.post("/processes/bulk", data={"csrf_token": token,
                                                    "next": "/processes?group=web", **fields})

    ticked = submit(action="restart", scope="selected",
                    target=["a1/web:web_0", "a1/web:web_1", "s1/web:web_1"])
    assert ticked.status_code == 302 and "/jobs/" in ticked.headers["Location"]
    job_id = make_job_runner(bulk_app).run_once()
    with database.standalone(bulk_app) as db:
        job = db.get(Job, job_id)
        assert job is not None and job.state == "succeeded", job.message
        assert [(s["node"], s["spec"]) for s in json.loads(job.steps)] == [
            ("a1", "web:*"), ("s1", "web:web_1")]
    after = [pids(daemon) for daemon in nodes]
    assert after[0]["web_0"] != before[0]["web_0"] and after[0]["web_1"] != before[0]["web_1"]
    assert after[1]["web_1"] != before[1]["web_1"] and after[1]["web_0"] == before[1]["web_0"]
    shown = client.get(ticked.headers["Location"]).get_data(as_text=True)
    assert "Bulk action queued: restart web:*, web:web_1 on 2 nodes" in shown

    matching = submit(action="signal", signal="CONT", scope="matching", group="web",
                      node="s1")
    assert matching.status_code == 302
    make_job_runner(bulk_app).run_once()
    with database.standalone(bulk_app) as db:
        job = db.scalars(select(Job).order_by(Job.id.desc())).first()
        assert job is not None and job.state == "succeeded", job.message
        assert [(s["node"], s["spec"]) for s in json.loads(job.steps)] == [("s1", "web:*")]

    for fields, message in (
            ({"action": "restart", "scope": "selected"}, "select at least one process"),
            ({"action": "restart", "scope": "matching", "group": "no"}, "no process matches"),
            ({"action": "reboot", "scope": "selected", "target": "a1/web:web_0"}, "one of"),
            ({"action": "stop", "scope": "selected", "target": "a1/web"}, "not a process")):
        answer = submit(**fields)
        assert answer.status_code == 302, fields
        assert message in client.get(answer.headers["Location"]).get_data(as_text=True), fields
    unknown = submit(action="stop", scope="selected", target="ghost/web:web_0")
    assert unknown.status_code == 404 and "no node" in unknown.get_data(as_text=True)
    with database.standalone(bulk_app) as db:
        assert len(db.scalars(select(Job)).all()) == 2  # the bad ones started nothing
    assert client.post("/processes/bulk", data={"action": "stop", "scope": "selected",
                                                "target": "a1/web:web_0"}).status_code == 400
    assert pids(nodes[0]) == after[0]  # no CSRF token: refused, nothing done

    from cesi_like.console.services.credentials import hash_password
    from cesi_like.console.storage.models import User

    with database.standalone(bulk_app) as db:
        db.add(User(username="looker", role="viewer", password_hash=hash_password("x" * 12)))
        db.commit()
    viewer = bulk_app.test_client()
    login(viewer, "looker", "x" * 12)
    listed = viewer.get("/processes").get_data(as_text=True)
    assert 'id="bulk"' not in listed and 'name="target"' not in listed
    assert viewer.post("/processes/bulk", data={
        "csrf_token": csrf_from(listed), "action": "stop", "scope": "selected",
        "target": "a1/web:web_0"}).status_code == 403


def test_nodes_are_checked_again_when_the_job_runs(bulk_app: Flask) -> None:
    """A node disabled or removed between queueing and running is a clear failure, and the
    others go ahead."""
    answer = post(bulk_app, {"action": "signal", "signal": "CONT", "spec": "web:*",
                             "nodes": ["a1", "s1", "down"]})
    assert answer.status_code == 202
    with database.standalone(bulk_app) as db:
        s1 = db.scalar(select(Node).where(Node.name == "s1"))
        down = db.scalar(select(Node).where(Node.name == "down"))
        assert s1 is not None and down is not None
        s1.enabled = False
        db.delete(down)
        db.commit()
    make_job_runner(bulk_app).run_once()
    with database.standalone(bulk_app) as db:
        job = db.get(Job, answer.get_json()["id"])
        assert job is not None
        steps = {step["node"]: step for step in json.loads(job.steps)}
    assert steps["a1"]["state"] == "done"
    assert (steps["s1"]["state"], steps["s1"]["detail"]) == ("failed", "node s1 is disabled")
    assert (steps["down"]["state"], steps["down"]["detail"]) == ("failed", "no node 'down'")
