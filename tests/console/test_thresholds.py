"""#20.4 memory and CPU rules with remediation, against a real cesi-agentd: a program that
grows past its memory limit is alerted on and restarted once per window (recorded as the
rule's doing), a supervisord node is named as not watchable where the rule is made, and CPU %
is the CPU seconds between two samples of the same pid."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sqlalchemy import select

from cesi_like.console.app import make_poller, make_sampler
from cesi_like.console.context import console
from cesi_like.console.services.thresholds import readings
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, AlertFiring, Node
from tests.console.test_alert_channels import Receiver, make
from tests.support.console import token_for
from tests.support.daemons import daemons
from tests.support.waiting import wait_for

LEAKY = f"""
[program:leaky]
command={sys.executable} -c "import time; hoard = b'x' * (60 << 20); time.sleep(1000)"
startsecs=0
"""


def test_a_leaking_program_is_restarted_once_per_window(tmp_path: Path) -> None:
    receiver = Receiver()
    app = make(tmp_path)
    client = app.test_client()
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    try:
        with daemons(tmp_path) as start:
            agent = start(LEAKY, name="agent")
            supervisord = start("[program:idle]\ncommand=sleep 1000\n", kind="supervisord",
                                name="legacy")
            with database.standalone(app) as db:
                db.add_all([Node(name="web1", url=agent.url),
                            Node(name="legacy", url=supervisord.url)])
                db.commit()
            poller = make_poller(app)
            poller.poll_now()
            made = client.post("/api/v1/alerts", headers=admin, json={
                "name": "leak", "kind": "memory", "limit": 40, "duration_seconds": 1,
                "action": "restart", "window_minutes": 10,
                "notify": [f"json://{receiver.base}/leak"]})
            assert made.status_code == 201, made.get_json()
            assert "not available on legacy" in made.get_json()["note"]
            sampler = make_sampler(app, poller)
            first = agent.info("leaky")["pid"]
            wait_for(lambda: sampler.sample_now() and agent.info("leaky")["pid"] != first,
                     30, "the rule's restart")
            second = agent.info("leaky")["pid"]
            for _ in range(8):  # it leaks again at once: still one restart in the window
                sampler.sample_now()
            assert agent.info("leaky")["pid"] == second
            wait_for(lambda: receiver.at("/leak"), 10, "the alert")
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    message = json.loads(receiver.at("/leak")[0])["title"]
    assert "leaky:leaky on web1 uses" in message and "(more than 40 for" in message
    with database.standalone(app) as db:
        restarts = db.scalars(select(ActivityLog).where(
            ActivityLog.action == "process.restart")).all()
        assert [(r.username, r.target, r.result) for r in restarts] == [
            ("(rule leak)", "web1/leaky:leaky", "ok")]
        assert "by alert rule leak" in restarts[0].detail
        assert len(db.scalars(select(AlertFiring)).all()) == 1
    console(app).engine.dispose()


def test_cpu_percent_is_cpu_seconds_between_two_samples_of_the_same_pid() -> None:
    before = {"now": 100.0, "processes": [
        {"group": "a", "name": "a", "pid": 7, "cpu_seconds": 10.0, "rss_kb": 2048,
         "processes": 1},
        {"group": "b", "name": "b", "pid": 8, "cpu_seconds": 5.0, "rss_kb": 1024,
         "processes": 1}]}
    after = {"now": 102.0, "processes": [
        {"group": "a", "name": "a", "pid": 7, "cpu_seconds": 11.5, "rss_kb": 4096,
         "processes": 2},
        {"group": "b", "name": "b", "pid": 9, "cpu_seconds": 0.1, "rss_kb": 1024,
         "processes": 1},  # restarted between: no CPU figure yet
        {"group": "c", "name": "c", "pid": 0, "cpu_seconds": 0, "rss_kb": 0,
         "processes": 0}]}  # not running: no reading
    found = {r.name: r for r in readings(before, after)}
    assert found["a"].cpu_percent == 75.0 and found["a"].rss_mb == 4.0
    assert found["b"].cpu_percent is None and set(found) == {"a", "b"}
    assert all(r.cpu_percent is None for r in readings(None, after))
