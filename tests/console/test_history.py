"""#10.4 history: per-process counts over 1 h / 24 h / 7 d and node reachability from the
poller's records, through real polls of real nodes and from records placed in time; pruning
after history_days."""

from __future__ import annotations

import datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from cesi_like.console.app import make_poller
from cesi_like.console.context import console
from cesi_like.console.services import history
from cesi_like.console.services import snapshot as fleet
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import (
    AlertFiring,
    AlertRule,
    Job,
    Node,
    NodeEvent,
    ProcessEvent,
    utcnow,
)
from cesi_like.supervisor_rpc.states import ProcessState as S
from tests.support.console import make_app, token_for
from tests.support.daemons import Daemon, daemons
from tests.support.waiting import wait_for

from .test_metrics import metrics_app, nodes  # the fixtures, shared

__all__ = ["metrics_app", "nodes"]

NOW = datetime.datetime(2026, 11, 25, 12, 0)


def ago(**delta: float) -> datetime.datetime:
    return NOW - datetime.timedelta(**delta)


def test_reachability_from_node_state_changes(metrics_app: Flask) -> None:
    with database.standalone(metrics_app) as db:
        db.add_all([NodeEvent(time=ago(hours=2), node="x", to_state="online"),
                    NodeEvent(time=ago(minutes=30), node="x", from_state="online",
                              to_state="unreachable", reason="refused"),
                    NodeEvent(time=ago(minutes=15), node="x", from_state="unreachable",
                              to_state="online")])
        db.commit()
        found = history.node_reachability(db, "x", "online", ago(minutes=15), NOW)
    assert found["for_seconds"] == 900
    # the last hour: 15 of 60 minutes unreachable; longer windows count since the first record
    assert found["online_percent"] == {"1h": 75.0, "24h": 87.5, "7d": 87.5}
    assert [change["to"] for change in found["changes"]] == ["online", "unreachable", "online"]


def test_process_counts_per_window(metrics_app: Flask) -> None:
    def event(when: datetime.datetime, from_state: int | None, to_state: int,
              exitstatus: int = 0) -> ProcessEvent:
        return ProcessEvent(time=when, node="x", group="web", name="web", from_state=from_state,
                            to_state=to_state, pid=1, exitstatus=exitstatus)

    with database.standalone(metrics_app) as db:
        db.add_all([
            event(ago(days=3), None, S.RUNNING),  # first seen: not a start
            event(ago(days=2), S.RUNNING, S.EXITED, 1),  # crash
            event(ago(days=2), S.EXITED, S.RUNNING),  # start
            event(ago(hours=5), S.RUNNING, S.EXITED, 0),  # a clean exit: not a crash
            event(ago(hours=5), S.EXITED, S.STARTING),
            event(ago(hours=5), S.STARTING, S.BACKOFF),  # failed start: crash
            event(ago(minutes=10), S.BACKOFF, S.FATAL),  # crash and FATAL
            event(ago(minutes=5), S.FATAL, S.RUNNING),  # start
        ])
        db.commit()
        counts = history.process_counts(db, "x", "web", "web", NOW)
    assert counts == {"1h": {"starts": 1, "crashes": 1, "fatals": 1},
                      "24h": {"starts": 1, "crashes": 2, "fatals": 1},
                      "7d": {"starts": 2, "crashes": 3, "fatals": 1}}


def test_prune_keeps_what_is_recent_and_unfinished(metrics_app: Flask) -> None:
    now = utcnow()
    with database.standalone(metrics_app) as db:
        db.add_all([NodeEvent(time=now - datetime.timedelta(days=40), node="x",
                              to_state="online"),
                    NodeEvent(time=now - datetime.timedelta(days=1), node="x",
                              to_state="online"),
                    ProcessEvent(time=now - datetime.timedelta(days=31), node="x", group="g",
                                 name="n", to_state=S.RUNNING),
                    Job(kind="rolling-restart", state="succeeded", title="old", spec="{}",
                        finished=now - datetime.timedelta(days=35)),
                    Job(kind="rolling-restart", state="running", title="long", spec="{}",
                        created=now - datetime.timedelta(days=35))])
        rule = AlertRule(name="r", kind="fatal")
        db.add(rule)
        db.flush()
        old = now - datetime.timedelta(days=40)
        db.add_all([AlertFiring(rule_id=rule.id, subject="ended", time=old,
                                resolved_at=now - datetime.timedelta(days=39)),
                    AlertFiring(rule_id=rule.id, subject="still open", time=old),
                    AlertFiring(rule_id=rule.id, subject="ended lately", time=old,
                                resolved_at=now - datetime.timedelta(days=1))])
        db.commit()
    poller = make_poller(metrics_app)
    assert poller.prune() == {"process_events": 1, "node_events": 1, "jobs": 1,
                              "alert_firings": 1}
    with database.standalone(metrics_app) as db:
        assert [job.title for job in db.scalars(select(Job))] == ["long"]
        assert sorted(db.scalars(select(AlertFiring.subject))) == ["ended lately", "still open"]


def test_history_from_real_polls(metrics_app: Flask, nodes: list[Daemon]) -> None:
    poller = make_poller(metrics_app)
    poller.poll_now()
    headers = {"Authorization": f"Bearer {token_for(metrics_app, 'admin')}"}
    client = metrics_app.test_client()
    assert client.post("/api/v1/nodes/sup/processes/web:web/restart",
                       headers=headers).status_code == 200
    poller.poll_now()
    down = client.get("/api/v1/nodes/down/history", headers=headers).get_json()
    assert down["state"] == "unreachable" and down["changes"][0]["to"] == "unreachable"
    assert down["online_percent"]["1h"] == 0.0
    web = client.get("/api/v1/nodes/sup/processes/web:web/history", headers=headers)
    assert web.get_json()["counts"]["1h"]["starts"] == 1
    assert client.get("/api/v1/nodes/sup/processes/web:*/history",
                      headers=headers).status_code == 400
    from tests.support.console import login

    login(client)
    page = client.get("/nodes/sup/processes/web:web").get_data(as_text=True)
    assert "<h2>History</h2>" in page and "Crashes" in page
    assert "online 1h: 100.00 %" in client.get("/nodes/sup").get_data(as_text=True)


def test_a_crash_repaired_between_two_polls(tmp_path: Path) -> None:
    """A program that crashes and is restarted by autorestart between two polls: the agent's
    change feed lists both, so the console counts the crash (exit status 3, at its time),
    also when the next poll is another poller's (a takeover goes on from the stored token);
    from supervisord's snapshot the console can only see a restart under a new pid."""
    marker = tmp_path / "crashed-once"
    programs = (f"[program:flaky]\ncommand=/bin/sh -c 'test -e {marker}-%(ENV_KIND)s || "
                f"{{ touch {marker}-%(ENV_KIND)s; exit 3; }}; exec sleep 1000'\n"
                "startsecs=0\nautostart=false\nautorestart=unexpected\n")
    (tmp_path / "daemons").mkdir()
    with daemons(tmp_path / "daemons") as start:
        agent = start(programs.replace("%(ENV_KIND)s", "agent"), name="agent")
        sup = start(programs.replace("%(ENV_KIND)s", "sup"), kind="supervisord", name="sup")
        app = make_app(tmp_path)
        with database.standalone(app) as db:
            db.add_all([Node(name="agent", url=agent.url), Node(name="sup", url=sup.url)])
            db.commit()
        poller = make_poller(app)
        poller.poll_now()  # the first poll: a full answer and a token
        for daemon in (agent, sup):
            daemon.rpc().startProcess("flaky:flaky")
            wait_for(lambda d=daemon: Path(f"{marker}-{d.dir.name}").exists()  # type: ignore[misc]
                     and d.info("flaky:flaky")["statename"] == "RUNNING"
                     and d.info("flaky:flaky")["description"].startswith("pid"))
        first_pid = {d.dir.name: d.info("flaky:flaky")["pid"] for d in (agent, sup)}
        make_poller(app).poll_now()  # another poller: another console process, or host
        with database.standalone(app) as db:
            counts = {name: history.process_counts(db, name, "flaky", "flaky")["1h"]
                      for name in ("agent", "sup")}
            crash = db.scalar(select(ProcessEvent).where(
                ProcessEvent.node == "agent", ProcessEvent.to_state == S.EXITED))
            changes = [(e.from_state, e.to_state) for e in reversed(
                fleet.state_changes(db, "agent", "flaky", "flaky"))]
        console(app).engine.dispose()
    assert counts["agent"] == {"starts": 2, "crashes": 1, "fatals": 0}
    assert counts["sup"] == {"starts": 1, "crashes": 0, "fatals": 0}  # the limitation
    assert crash is not None and crash.exitstatus == 3 and crash.pid not in (0, first_pid["agent"])
    assert changes == [(None, S.STOPPED), (S.STOPPED, S.STARTING), (S.STARTING, S.RUNNING),
                       (S.RUNNING, S.EXITED), (S.EXITED, S.STARTING), (S.STARTING, S.RUNNING)]
