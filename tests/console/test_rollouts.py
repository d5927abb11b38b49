"""#10.2 rolling restarts against real nodes: three cesi-agentd and a supervisord 4.3, each
running a group `web` whose start fails while a `broken` file lies beside the node's config.
The job runs through the real runner (`JobRunner.run_once`, as the console's processes run
it); the API starts, shows and cancels it."""

from __future__ import annotations

import datetime
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from cesi_like.console.app import make_job_runner, make_poller
from cesi_like.console.context import console
from cesi_like.console.services.credentials import hash_password
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Environment, Job, Node, User, utcnow
from tests.support.console import PASSWORD, make_app
from tests.support.console import bearer as support_bearer
from tests.support.daemons import Daemon, daemons
from tests.support.waiting import wait_for

WEB = """
[program:web]
command=/bin/sh -c 'test -e %(here)s/broken && exit 1; exec sleep 1000'
process_name=%(program_name)s_%(process_num)s
numprocs=2
startsecs=1
startretries=0

[program:other]
command=sleep 1000
startsecs=0
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Daemon]]:
    tmp = tmp_path_factory.mktemp("rollout")
    with daemons(tmp) as start:
        yield [start(WEB, kind="supervisord" if index == 3 else "agent", name=f"n{index}")
               for index in range(1, 5)]


@pytest.fixture
def rollout_app(tmp_path: Path, nodes: list[Daemon]) -> Iterator[Flask]:
    for daemon in nodes:  # every node healthy, web running, at the start of each test
        (daemon.dir / "broken").unlink(missing_ok=True)
        rpc = daemon.rpc()
        wait_for(lambda rpc=rpc: not any(  # type: ignore[misc]
            info["statename"] in ("STARTING", "BACKOFF", "STOPPING")
            for info in rpc.getAllProcessInfo()), 20, "the web processes to settle")
        for info in rpc.getAllProcessInfo():
            if info["group"] == "web" and info["statename"] != "RUNNING":
                rpc.startProcess(f"web:{info['name']}")
    app = make_app(tmp_path)
    with database.standalone(app) as db:
        prod = Environment(name="prod", description="")
        db.add_all([Node(name=f"n{index}", url=daemon.url, environments=[prod])
                    for index, daemon in enumerate(nodes, 1)])
        db.add_all([User(username="op", role="operator", password_hash=hash_password(PASSWORD)),
                    User(username="viewer", role="viewer",
                         password_hash=hash_password(PASSWORD))])
        db.commit()
    make_poller(app).poll_now()
    yield app
    console(app).engine.dispose()


def bearer(app: Flask, user: str = "op") -> dict[str, str]:
    return support_bearer(app, user)


def pids(daemon: Daemon) -> dict[str, int]:
    return {info["name"]: info["pid"] for info in daemon.rpc().getAllProcessInfo()
            if info["group"] == "web"}


def start_rollout(app: Flask, **body: Any) -> dict[str, Any]:
    answer = app.test_client().post("/api/v1/rollouts", headers=bearer(app),
                                    json={"environment": "prod", "group": "web", **body})
    assert answer.status_code == 202, answer.get_json()
    job: dict[str, Any] = answer.get_json()
    return job


def job_json(app: Flask, job_id: int) -> dict[str, Any]:
    answer = app.test_client().get(f"/api/v1/jobs/{job_id}", headers=bearer(app))
    assert answer.status_code == 200
    job: dict[str, Any] = answer.get_json()
    return job


def states(job: dict[str, Any]) -> list[str]:
    return [step["state"] for step in job["steps"]]


def test_stops_at_the_first_failure_and_leaves_the_rest_untouched(
        rollout_app: Flask, nodes: list[Daemon]) -> None:
    before = [pids(daemon) for daemon in nodes]
    (nodes[2].dir / "broken").touch()  # node 3's program no longer starts
    job = start_rollout(rollout_app)
    assert job["state"] == "queued" and states(job) == ["pending"] * 4
    assert make_job_runner(rollout_app).run_once() == job["id"]
    job = job_json(rollout_app, job["id"])
    assert job["state"] == "failed"
    assert states(job) == ["done", "done", "failed", "skipped"]
    assert job["message"].startswith("stopped: n3: ") and "web:web_" in job["message"]
    after = [pids(daemon) for daemon in nodes]
    for index in (0, 1):  # restarted: new pids, running
        assert all(after[index][name] != before[index][name] for name in before[index])
        assert all(after[index].values())
    assert after[3] == before[3]  # node 4 untouched
    with database.standalone(rollout_app) as db:
        actions = [(row.action, row.target, row.result) for row in db.scalars(
            select(ActivityLog).where(ActivityLog.username == "op").order_by(ActivityLog.id))]
    assert actions[0] == ("rolling-restart.start", f"job {job['id']}", "ok")
    assert ("process.restart", "n3/web:*", "failed") in actions
    assert actions[-1] == ("rolling-restart.failed", f"job {job['id']}", "failed")
    assert not any(target.startswith("n4/") for _, target, _ in actions)


def test_keep_going_restarts_every_node_and_reports_the_failures(
        rollout_app: Flask, nodes: list[Daemon]) -> None:
    (nodes[0].dir / "broken").touch()
    before = pids(nodes[3])
    job = start_rollout(rollout_app, batch_size=2, keep_going=True)
    make_job_runner(rollout_app).run_once()
    job = job_json(rollout_app, job["id"])
    assert states(job) == ["failed", "done", "done", "done"]
    assert job["state"] == "failed" and job["message"] == "1 of 4 nodes failed (kept going)"
    assert all(pid != before[name] for name, pid in pids(nodes[3]).items())


def test_cancel_during_the_pause_stops_before_the_next_batch(rollout_app: Flask) -> None:
    job = start_rollout(rollout_app, pause=30)
    runner = make_job_runner(rollout_app)
    running = threading.Thread(target=runner.run_once)
    running.start()
    wait_for(lambda: states(job_json(rollout_app, job["id"]))[0] == "done", 30,
             "the first node restarted")
    answer = rollout_app.test_client().post(f"/api/v1/jobs/{job['id']}/cancel",
                                            headers=bearer(rollout_app))
    assert answer.status_code == 200 and answer.get_json()["cancel_requested"] is True
    running.join(10)
    assert not running.is_alive()  # the 30 s pause ended at the cancel
    job = job_json(rollout_app, job["id"])
    assert job["state"] == "cancelled" and states(job) == ["done", "skipped", "skipped",
                                                           "skipped"]
    again = rollout_app.test_client().post(f"/api/v1/jobs/{job['id']}/cancel",
                                           headers=bearer(rollout_app))
    assert again.status_code == 409


def test_a_job_whose_runner_died_is_resumed_by_another(rollout_app: Flask,
                                                       nodes: list[Daemon]) -> None:
    """A runner that stopped renewing (here: a claim that lapsed mid-way, node 2 under way)
    loses the job to the next runner, which redoes node 2 and carries on."""
    job = start_rollout(rollout_app)
    steps = [{"node": f"n{i}", "state": state, "detail": "", "started": None, "finished": None}
             for i, state in zip(range(1, 5), ["done", "running", "pending", "pending"],
                                 strict=True)]
    with database.standalone(rollout_app) as db:
        db.execute(update(Job).where(Job.id == job["id"]).values(
            state="running", owner="dead-host:1:x", steps=json.dumps(steps),
            expires=utcnow() - datetime.timedelta(seconds=1)))
        db.commit()
    first = pids(nodes[0])
    make_job_runner(rollout_app).run_once()
    job = job_json(rollout_app, job["id"])
    assert job["state"] == "succeeded" and job["takeovers"] == 1
    assert states(job) == ["done"] * 4
    assert pids(nodes[0]) == first  # done before the takeover: not restarted again


def test_a_claimed_job_is_not_run_twice(rollout_app: Flask) -> None:
    job = start_rollout(rollout_app, pause=30)
    with database.standalone(rollout_app) as db:
        db.execute(update(Job).where(Job.id == job["id"]).values(
            state="running", owner="live-host:1:x",
            expires=utcnow() + datetime.timedelta(seconds=60)))
        db.commit()
    assert make_job_runner(rollout_app).run_once() is None


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"group": "nosuch"}, 400, "runs a group 'nosuch'"),
    ({"environment": "staging"}, 404, "no environment"),
    ({"batch_size": 0}, 400, "batch_size must be from 1 to 100"),
    ({"batch_size": True}, 400, "batch_size"),
    ({"pause": "soon"}, 400, "pause must be a number"),
    ({"pause": float("nan")}, 400, "pause must be from 0 to"),
    ({"pause": float("inf")}, 400, "pause"),
    ({"keep_going": "yes"}, 400, "keep_going"),
    ({"group": "*"}, 400, "group"),
    ({"nodes": ["n1"]}, 400, "unknown fields: nodes"),
])
def test_bad_requests_are_refused_and_start_nothing(rollout_app: Flask, body: dict[str, Any],
                                                    status: int, error: str) -> None:
    answer = rollout_app.test_client().post(
        "/api/v1/rollouts", headers=bearer(rollout_app),
        data=json.dumps({"environment": "prod", "group": "web", **body}),
        content_type="application/json")
    assert answer.status_code == status and error in answer.get_json()["error"]
    with database.standalone(rollout_app) as db:
        assert db.scalars(select(Job)).all() == []


def test_viewers_may_not_start_or_cancel(rollout_app: Flask) -> None:
    viewer = bearer(rollout_app, "viewer")
    client = rollout_app.test_client()
    answer = client.post("/api/v1/rollouts", headers=viewer,
                         json={"environment": "prod", "group": "web"})
    assert answer.status_code == 403
    job = start_rollout(rollout_app)
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=viewer).status_code == 403
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=viewer).status_code == 200
    with database.standalone(rollout_app) as db:  # scoped to another environment: not seen
        dev = Environment(name="dev", description="")
        db.add(dev)
        user = db.scalar(select(User).where(User.username == "viewer"))
        assert user is not None
        user.scope = [dev]
        db.commit()
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=viewer).status_code == 404
    assert client.get("/api/v1/jobs", headers=viewer).get_json() == []


def test_pages_start_show_and_cancel_a_rollout(rollout_app: Flask) -> None:
    from tests.support.console import csrf_from, login

    client = rollout_app.test_client()
    token = login(client, "viewer")
    assert client.get("/rollouts/new?group=web").status_code == 403
    answer = client.post("/rollouts/new", data={
        "csrf_token": token, "environment": "prod", "group": "web", "batch_size": 1,
        "pause": 0})
    assert answer.status_code == 403 and "need the operator role" in answer.get_data(
        as_text=True)
    client.post("/logout", data={"csrf_token": token})
    login(client, "op")
    form = client.get("/rollouts/new").get_data(as_text=True)
    answer = client.post("/rollouts/new", data={
        "csrf_token": csrf_from(form), "environment": "prod", "group": "web<script>",
        "batch_size": 1, "pause": 0})
    page = answer.get_data(as_text=True)
    assert "not a process name" in page or "runs a group" in page
    assert "web<script>" not in page  # escaped
    answer = client.post("/rollouts/new", data={
        "csrf_token": csrf_from(form), "environment": "prod", "group": "web",
        "batch_size": 2, "pause": 5})
    assert answer.status_code == 302 and re.search(r"/jobs/\d+$", answer.headers["Location"])
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "restart web on 4 nodes of prod, 2 at a time" in page and "pending" in page
    job_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    cancelled = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf_from(page)})
    assert cancelled.status_code == 302
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "cancelled" in page and "before it began" in page
    assert "restart web on 4 nodes" in client.get("/jobs").get_data(as_text=True)


def test_job_ids_beyond_the_database_are_not_found(rollout_app: Flask) -> None:
    """Found by the API fuzzer: a 21-digit id made SQLite raise OverflowError (a 500)."""
    client = rollout_app.test_client()
    for path in ("/api/v1/jobs/425841455147855380480", "/jobs/425841455147855380480"):
        assert client.get(path, headers=bearer(rollout_app)).status_code == 404
    assert client.post("/api/v1/jobs/425841455147855380480/cancel",
                       headers=bearer(rollout_app)).status_code == 404


def test_a_job_of_a_disabled_user_is_interrupted_not_run(rollout_app: Flask,
                                                         nodes: list[Daemon]) -> None:
    before = pids(nodes[0])
    job = start_rollout(rollout_app)
    with database.standalone(rollout_app) as db:
        user = db.scalar(select(User).where(User.username == "op"))
        assert user is not None
        user.active = False
        db.commit()
    make_job_runner(rollout_app).run_once()
    with database.standalone(rollout_app) as db:
        found = db.get(Job, job["id"])
        assert found is not None and found.state == "interrupted"
        assert "disabled" in found.message and found.owner is None
    assert pids(nodes[0]) == before


@pytest.mark.parametrize("change", ["demoted", "disabled", "moved"])
def test_a_rollout_stops_when_its_user_loses_the_right(rollout_app: Flask,
                                                       nodes: list[Daemon], change: str) -> None:
    """#17.2: the rights were checked when the job was claimed, so a rollout went on after
    its user was demoted to viewer, disabled or moved to another environment. They are
    checked before every step now, the pause between batches included."""
    later = [pids(daemon) for daemon in nodes[1:]]
    job = start_rollout(rollout_app, pause=30)
    running = threading.Thread(target=make_job_runner(rollout_app).run_once)
    running.start()
    wait_for(lambda: states(job_json(rollout_app, job["id"]))[0] == "done", 30,
             "the first node restarted")
    with database.standalone(rollout_app) as db:
        user = db.scalar(select(User).where(User.username == "op"))
        assert user is not None
        if change == "demoted":
            user.role = "viewer"
        elif change == "disabled":
            user.active = False
        else:
            staging = Environment(name="staging", description="")
            db.add(staging)
            user.scope = [staging]
        db.commit()
    running.join(10)
    assert not running.is_alive()  # not after the 30 s pause: at once
    with database.standalone(rollout_app) as db:
        found = db.get(Job, job["id"])
        assert found is not None and found.state == "interrupted"
        steps = json.loads(found.steps)
        reason = found.message
    assert [step["state"] for step in steps] == ["done", "skipped", "skipped", "skipped"]
    assert reason.startswith("interrupted: op ") and {
        "demoted": "no longer an operator", "disabled": "is disabled",
        "moved": "may no longer act on n2"}[change] in reason
    assert [pids(daemon) for daemon in nodes[1:]] == later  # nothing more restarted


def test_an_environment_out_of_scope_is_not_found(rollout_app: Flask) -> None:
    """#17.5: a staging operator got 400 "no node of environment prod that you may act on"
    for prod and 404 for a name that does not exist, which told them prod exists."""
    with database.standalone(rollout_app) as db:
        staging = Environment(name="staging", description="")
        db.add(User(username="stagingop", role="operator", scope=[staging],
                    password_hash=hash_password(PASSWORD)))
        db.commit()
    client = rollout_app.test_client()
    headers = bearer(rollout_app, "stagingop")
    answers = {}
    for environment in ("prod", "nosuch"):
        rollout = client.post("/api/v1/rollouts", headers=headers,
                              json={"environment": environment, "group": "web"})
        bulk = client.post("/api/v1/bulk", headers=headers, json={
            "action": "restart", "spec": "web:*", "environment": environment})
        answers[environment] = [(a.status_code, a.get_json()["error"].replace(
            environment, "ENV")) for a in (rollout, bulk)]
    assert answers["prod"] == answers["nosuch"] == [(404, "no environment 'ENV'")] * 2
    with database.standalone(rollout_app) as db:
        assert db.scalars(select(Job)).all() == []
