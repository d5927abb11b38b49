"""#10.6 `/metrics` against real nodes (cesi-agentd and supervisord 4.3) and a node that is
down, parsed with prometheus_client's own parser; who may read it."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from cesi_like.console.api.metrics import parse_allow
from cesi_like.console.app import make_poller
from cesi_like.console.context import console
from cesi_like.console.services.credentials import hash_password, new_token
from cesi_like.console.services.snapshot import _changes
from cesi_like.console.settings import load
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ApiToken, Environment, Node, User
from cesi_like.inifile import ConfigError
from cesi_like.supervisor_rpc.states import ProcessState
from tests.support.console import make_app, token_for
from tests.support.daemons import Daemon, daemons
from tests.support.ports import closed_url

PROGRAMS = """
[program:web]
command=sleep 1000
startsecs=0

[program:crashy]
command=/bin/sh -c 'sleep 1; exit 3'
startsecs=0
autorestart=false
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Daemon]]:
    with daemons(tmp_path_factory.mktemp("metrics")) as start:
        yield [start(PROGRAMS, name="agent"), start(PROGRAMS, kind="supervisord", name="sup")]


@pytest.fixture
def metrics_app(tmp_path: Path, nodes: list[Daemon]) -> Iterator[Flask]:
    dead = closed_url()
    app = make_app(tmp_path)
    with database.standalone(app) as db:
        prod, dev = Environment(name="prod", description=""), Environment(name="dev",
                                                                          description="")
        db.add_all([Node(name="agent", url=nodes[0].url, environments=[prod]),
                    Node(name="sup", url=nodes[1].url, environments=[prod]),
                    Node(name="down", url=dead, environments=[dev]),
                    User(username="devviewer", role="viewer", scope=[dev],
                         password_hash=hash_password("x" * 12))])
        db.commit()
    yield app
    console(app).engine.dispose()


def read_only_token(app: Flask, username: str) -> str:
    with database.standalone(app) as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None
        secret, digest = new_token()
        db.add(ApiToken(user_id=user.id, token_hash=digest, read_only=True))
        db.commit()
    return secret


def scrape(app: Flask, token: str | None = None) -> dict[str, list[tuple[dict[str, str], float]]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = app.test_client().get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain; version=")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], metric: str,
          **labels: str) -> float | None:
    for sample_labels, sample_value in found.get(metric, []):
        if all(sample_labels.get(key) == wanted for key, wanted in labels.items()):
            return sample_value
    return None


def test_fleet_metrics_from_real_nodes(metrics_app: Flask, nodes: list[Daemon]) -> None:
    poller = make_poller(metrics_app)
    poller.poll_now()
    for daemon in nodes:  # crashy exits with status 3 a second after it started
        daemon.wait_state("crashy", "EXITED")
    poller.poll_now()
    for daemon in nodes:  # seen RUNNING by one poll and EXITED by the next: a crash
        daemon.rpc().startProcess("crashy")
    poller.poll_now()
    for daemon in nodes:
        daemon.wait_state("crashy", "EXITED")
    client = metrics_app.test_client()
    admin = {"Authorization": f"Bearer {token_for(metrics_app, 'admin')}"}
    assert client.post("/api/v1/nodes/agent/processes/web:web/restart",
                       headers=admin).status_code == 200
    poller.poll_now()
    found = scrape(metrics_app, read_only_token(metrics_app, "admin"))
    assert value(found, "cesi_node_up", node="agent") == 1.0
    assert value(found, "cesi_node_up", node="sup") == 1.0
    assert value(found, "cesi_node_up", node="down") == 0.0
    assert value(found, "cesi_node_state", node="down", state="unreachable") == 1.0
    assert value(found, "cesi_processes", node="sup", group="web", state="RUNNING") == 1.0
    assert value(found, "cesi_processes", node="sup", group="crashy", state="EXITED") == 1.0
    assert (value(found, "cesi_process_uptime_seconds", node="sup", group="web",
                  name="web") or -1) >= 0
    assert (value(found, "cesi_node_last_success_age_seconds", node="agent") or -1) >= 0
    # the restart through the console is a start; crashy exited with status 3 twice, each
    # time seen RUNNING by one poll and EXITED by the next
    assert value(found, "cesi_process_starts_total", node="agent", group="web",
                 name="web") == 1.0
    assert value(found, "cesi_process_crashes_total", node="sup", group="crashy",
                 name="crashy") == 2.0
    assert value(found, "cesi_actions_total", action="process.restart", result="ok") == 1.0


def test_who_may_read_metrics(tmp_path: Path, metrics_app: Flask) -> None:
    assert metrics_app.test_client().get("/metrics").status_code == 401
    make_poller(metrics_app).poll_now()
    scoped = scrape(metrics_app, read_only_token(metrics_app, "devviewer"))
    assert {labels["node"] for labels, _ in scoped["cesi_node_up"]} == {"down"}
    (tmp_path / "allow").mkdir()
    allowed = make_app(tmp_path / "allow",
                       CESI_METRICS_ALLOW=parse_allow("10.0.0.0/8, 127.0.0.1"))
    try:
        assert allowed.test_client().get("/metrics").status_code == 200  # from 127.0.0.1
        assert allowed.test_client().get(
            "/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 401
    finally:
        console(allowed).engine.dispose()
    (tmp_path / "cesi.conf").write_text("[cesi]\nmetrics_allow = 10.0.0.0/8, prometheus\n")
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path / "cesi.conf"), {})
    assert caught.value.key == "metrics_allow" and "prometheus" in str(caught.value)


def test_a_restart_between_two_polls_is_still_a_start() -> None:
    """RUNNING twice under another pid: the poller records it as STOPPED -> RUNNING."""
    def process(pid: int) -> dict[str, object]:
        return {"group": "web", "name": "web", "state": ProcessState.RUNNING, "pid": pid,
                "exitstatus": 0}

    when = datetime.datetime(2026, 11, 25)
    assert _changes("n", [process(10)], [process(10)], when) == []
    [event] = _changes("n", [process(10)], [process(11)], when)
    assert (event.from_state, event.to_state, event.pid) == (ProcessState.STOPPED,
                                                             ProcessState.RUNNING, 11)


def test_a_scoped_user_sees_only_its_share_with_bounded_labels(metrics_app: Flask) -> None:
    """#17.4: /metrics showed a scoped user the whole fleet's cesi_actions_total and
    cesi_jobs, with the raw path of other users' refused requests in a label (node and
    process names of prod), and every refused request made a new series."""
    make_poller(metrics_app).poll_now()
    client = metrics_app.test_client()
    readonly = {"Authorization": f"Bearer {read_only_token(metrics_app, 'admin')}"}
    for name in ("web:web", "crashy:crashy", "web:secret-worker"):
        assert client.post(f"/api/v1/nodes/agent/processes/{name}/stop",
                           headers=readonly).status_code == 403
    admin = {"Authorization": f"Bearer {token_for(metrics_app, 'admin')}"}
    assert client.post("/api/v1/bulk", headers=admin, json={
        "action": "restart", "targets": [{"node": "agent", "spec": "web:*"}]}).status_code == 202
    everything = scrape(metrics_app, read_only_token(metrics_app, "admin"))
    actions = everything["cesi_actions_total"]
    assert all("/" not in labels["action"] and " " not in labels["action"]
               for labels, _ in actions), actions
    assert value(everything, "cesi_actions_total", action="denied", result="denied") == 3.0
    assert value(everything, "cesi_jobs", kind="bulk-action", state="queued") == 1.0
    scoped = scrape(metrics_app, read_only_token(metrics_app, "devviewer"))
    assert {labels["node"] for labels, _ in scoped["cesi_node_up"]} == {"down"}
    assert scoped.get("cesi_actions_total", []) == []  # none of its own
    assert scoped.get("cesi_jobs", []) == []  # the prod job is not its to see
