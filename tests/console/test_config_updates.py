"""#10.3 config updates: on supervisord 4.3 and on cesi-agentd, the console's reread shows
what `supervisorctl reread` shows, and applying it leaves a node exactly where the real
`supervisorctl update` leaves its twin."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from cesi_like.console.app import make_job_runner, make_poller
from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Job, Node
from tests.support.console import make_app, token_for
from tests.support.daemons import Daemon, StartDaemon
from tests.support.waiting import wait_for

BEFORE = """
[program:keep]
command=sleep 1000
startsecs=0

[program:change_me]
command=sleep 1000
startsecs=0

[program:remove_me]
command=sleep 1000
startsecs=0
"""

AFTER = """
[program:keep]
command=sleep 1000
startsecs=0

[program:change_me]
command=sleep 2000
startsecs=0

[program:added_one]
command=sleep 1000
process_name=%(program_name)s_%(process_num)s
numprocs=2
startsecs=0
"""


def supervisorctl(daemon: Daemon, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c",
                           str(daemon.conf), *args], capture_output=True, text=True,
                          timeout=60)
    return done.stdout


def processes(daemon: Daemon) -> list[tuple[str, str, str]]:
    return sorted((i["group"], i["name"], i["statename"]) for i in daemon.rpc().getAllProcessInfo())


def rewrite(daemon: Daemon) -> None:
    daemon.conf.write_text(daemon.conf.read_text().replace(BEFORE, AFTER))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    yield app
    console(app).engine.dispose()


def add_node(app: Flask, name: str, daemon: Daemon) -> None:
    with database.standalone(app) as db:
        db.add(Node(name=name, url=daemon.url))
        db.commit()


@pytest.mark.parametrize("kind", ["supervisord", "agent"])
def test_reread_and_update_as_supervisorctl(app: Flask, start_daemon: StartDaemon,
                                            kind: str) -> None:
    twin, ours = start_daemon(BEFORE, kind=kind), start_daemon(BEFORE, kind=kind)
    for daemon in (twin, ours):
        wait_for(lambda daemon=daemon: all(  # type: ignore[misc]
            state == "RUNNING" for *_, state in processes(daemon)), what="all running")
        rewrite(daemon)
    add_node(app, "n", ours)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    diff = client.get("/api/v1/nodes/n/config", headers=headers).get_json()
    reread = supervisorctl(twin, "reread").split("\n")
    assert sorted(line for line in reread if line) == sorted(
        [f"{g}: available" for g in diff["added"]] + [f"{g}: changed" for g in diff["changed"]]
        + [f"{g}: disappeared" for g in diff["removed"]])
    assert diff == {"added": ["added_one"], "changed": ["change_me"], "removed": ["remove_me"]}
    assert processes(ours) == processes(twin)  # a reread changes nothing yet

    bad = client.post("/api/v1/nodes/n/config/apply", headers=headers,
                      json={"groups": ["keep"]})
    assert bad.status_code == 400 and "not added, changed or removed" in bad.get_json()["error"]
    answer = client.post("/api/v1/nodes/n/config/apply", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert [(r["change"], r["group"], r["ok"]) for r in answer.get_json()["results"]] == [
        ("removed", "remove_me", True), ("changed", "change_me", True),
        ("added", "added_one", True)]
    supervisorctl(twin, "update")

    def settled(daemon: Daemon) -> list[tuple[str, str, str]] | None:
        found = processes(daemon)
        return found if all(state == "RUNNING" for *_, state in found) else None

    assert wait_for(lambda: settled(ours)) == wait_for(lambda: settled(twin)) == [
        ("added_one", "added_one_0", "RUNNING"), ("added_one", "added_one_1", "RUNNING"),
        ("change_me", "change_me", "RUNNING"), ("keep", "keep", "RUNNING")]
    command = ours.rpc().getProcessInfo("change_me")["pid"]
    assert "2000" in Path(f"/proc/{command}/cmdline").read_text()
    assert client.get("/api/v1/nodes/n/config", headers=headers).get_json() == {
        "added": [], "changed": [], "removed": []}
    with database.standalone(app) as db:
        entry = db.scalar(select(ActivityLog).where(ActivityLog.action == "config.update"))
        assert entry is not None and entry.result == "ok"
        assert entry.detail == "removed remove_me; changed change_me; added added_one"


def test_a_broken_config_is_refused_and_changes_nothing(app: Flask,
                                                        start_daemon: StartDaemon) -> None:
    daemon = start_daemon(BEFORE)
    add_node(app, "n", daemon)
    daemon.conf.write_text(daemon.conf.read_text()
                           + "[program:bad]\ncommand=sleep 1\nstartsecs=soon\n")
    before = processes(daemon)
    headers = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    answer = app.test_client().post("/api/v1/nodes/n/config/apply", headers=headers)
    assert answer.status_code == 400
    assert "cannot reread its config" in answer.get_json()["error"]
    assert "startsecs" in answer.get_json()["error"]
    assert processes(daemon) == before


def test_update_as_a_bulk_action_on_two_nodes(app: Flask, start_daemon: StartDaemon) -> None:
    first, second = start_daemon(BEFORE), start_daemon(BEFORE)
    for index, daemon in enumerate((first, second)):
        rewrite(daemon)
        add_node(app, f"n{index}", daemon)
    make_poller(app).poll_now()
    headers = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    answer = app.test_client().post("/api/v1/bulk", headers=headers, json={
        "action": "update", "nodes": ["n0", "n1"]})
    assert answer.status_code == 202, answer.get_json()
    make_job_runner(app).run_once()
    with database.standalone(app) as db:
        job = db.get(Job, answer.get_json()["id"])
        assert job is not None and job.state == "succeeded", job.message
    for daemon in (first, second):
        assert {group for group, _, _ in processes(daemon)} == {"keep", "change_me",
                                                                "added_one"}




def test_the_config_page_applies_the_ticked_groups(app: Flask,
                                                   start_daemon: StartDaemon) -> None:
    from tests.support.console import csrf_from, login

    daemon = start_daemon(BEFORE)
    rewrite(daemon)
    add_node(app, "n", daemon)
    client = app.test_client()
    login(client)
    page = client.get("/nodes/n/config").get_data(as_text=True)
    for group in ("added_one", "change_me", "remove_me"):
        assert f'value="{group}"' in page
    answer = client.post("/nodes/n/config", data={"csrf_token": csrf_from(page),
                                                  "group": ["added_one"]})
    assert answer.status_code == 302
    page = client.get("/nodes/n/config").get_data(as_text=True)
    assert "added added_one: ok" in page  # flashed
    assert 'value="added_one"' not in page and 'value="remove_me"' in page
    assert {group for group, _, _ in processes(daemon)} == {"keep", "change_me", "remove_me",
                                                            "added_one"}


@pytest.mark.parametrize("how", ["misspelt field", "text/plain body", "empty list",
                                 "form with nothing ticked"])
def test_a_bad_apply_changes_nothing(app: Flask, start_daemon: StartDaemon, how: str) -> None:
    """#17.3: `{"grops": ["one"]}`, a JSON body sent as text/plain, or the config form with
    nothing ticked applied every pending change (groups removed, processes stopped)."""
    from tests.support.console import csrf_from, login

    daemon = start_daemon(BEFORE)
    wait_for(lambda: all(state == "RUNNING" for *_, state in processes(daemon)))
    rewrite(daemon)
    add_node(app, "n", daemon)
    before = processes(daemon)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    if how == "form with nothing ticked":
        login(client)
        page = client.get("/nodes/n/config").get_data(as_text=True)
        answer = client.post("/nodes/n/config", data={"csrf_token": csrf_from(page)})
        assert answer.status_code == 302
        assert "Tick at least one group" in client.get("/nodes/n/config").get_data(as_text=True)
    else:
        body = {"misspelt field": '{"grops": ["added_one"]}', "text/plain body":
                '{"groups": ["added_one"]}', "empty list": '{"groups": []}'}[how]
        answer = client.post("/api/v1/nodes/n/config/apply", headers=headers, data=body,
                             content_type="text/plain" if how == "text/plain body"
                             else "application/json")
        assert answer.status_code == 400, answer.get_json()
        assert {"misspelt field": "unknown fields: grops", "text/plain body":
                "Content-Type: application/json", "empty list": "groups"}[how] in \
            answer.get_json()["error"]
    assert processes(daemon) == before
    with database.standalone(app) as db:
        assert db.scalar(select(ActivityLog).where(ActivityLog.action == "config.update")) \
            is None


def test_a_secret_in_a_reread_error_is_not_stored_nor_shown_to_viewers(
        app: Flask, start_daemon: StartDaemon) -> None:
    """#17.6: a reread error quoted `environment=DB_PASSWORD="..."` from the node's config,
    and the bulk job's message kept it, where a viewer read it through GET /api/v1/jobs."""
    from cesi_like.console.services.credentials import hash_password
    from cesi_like.console.storage.models import User

    daemon = start_daemon(BEFORE)
    add_node(app, "n", daemon)
    with database.standalone(app) as db:
        db.add(User(username="viewer", role="viewer", password_hash=hash_password("x" * 10)))
        db.commit()
    daemon.conf.write_text(daemon.conf.read_text() + "[program:db]\ncommand=sleep 1\n"
                           'environment=DB_PASSWORD="hunter2-s3cret,OTHER=1\n')
    make_poller(app).poll_now()
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    client = app.test_client()
    direct = client.post("/api/v1/nodes/n/config/apply", headers=admin)
    assert direct.status_code == 400 and "cannot reread its config" in direct.get_json()["error"]
    answer = client.post("/api/v1/bulk", headers=admin, json={"action": "update",
                                                              "nodes": ["n"]})
    assert answer.status_code == 202
    make_job_runner(app).run_once()
    job_id = answer.get_json()["id"]
    seen = client.get(f"/api/v1/jobs/{job_id}", headers=admin).get_json()
    assert seen["state"] == "failed" and "cannot reread its config" in seen["message"]
    viewer = {"Authorization": f"Bearer {token_for(app, 'viewer')}"}
    shown = client.get("/api/v1/jobs", headers=viewer).get_json()
    assert [job["id"] for job in shown] == [job_id]
    assert shown[0]["message"] is None and all(
        "detail" not in step and "results" not in step for step in shown[0]["steps"])
    with database.standalone(app) as db:
        stored = [row.detail for row in db.scalars(select(ActivityLog))]
        job = db.get(Job, job_id)
        assert job is not None
        stored += [job.message, job.steps]
    assert not any("hunter2" in text for text in stored), stored
    assert "hunter2" not in json.dumps(seen)
