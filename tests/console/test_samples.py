"""#20.5 the stored history: raw samples for an hour, minute means for a day, ten-minute means
for history_days, each chart reading one resolution, with the state changes of its range."""

from __future__ import annotations

import datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cesi_like.console.services import samples
from cesi_like.console.services.thresholds import Reading
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ProcessEvent, ProcessSample
from cesi_like.supervisor_rpc.states import ProcessState
from tests.support.console import token_for

T0 = datetime.datetime(2026, 12, 7, 10, 0, 0)


def counts(app: Flask) -> dict[int, int]:
    with database.standalone(app) as db:
        return dict(db.execute(select(ProcessSample.step, func.count()).group_by(
            ProcessSample.step)).all())


def test_rollup_keeps_each_resolution_as_long_as_its_chart_needs(app: Flask) -> None:
    series = samples.Series()
    with database.standalone(app) as db:
        for second in range(0, 2 * 3600, 10):  # two hours of samples every 10 s
            cpu = 10.0 if second % 20 == 0 else 30.0
            samples.add(db, series, "web1",
                        [Reading("web", "web", 7, 100.0 + second / 3600, cpu)],
                        T0 + datetime.timedelta(seconds=second))
        db.commit()
        made = samples.rollup(db, 30, now=T0 + datetime.timedelta(hours=2))
    assert made == {"minutes": 120, "ten_minutes": 12}
    assert counts(app) == {0: 360, 60: 120, 600: 12}  # the older hour of raw rows is gone
    with database.standalone(app) as db:
        minute = db.scalars(select(ProcessSample).where(ProcessSample.step == 60).order_by(
            ProcessSample.time)).first()
        assert minute is not None and minute.time == T0 and minute.cpu == 20.0
        # nothing is rolled up twice, and a day later only the ten-minute means are left
        assert samples.rollup(db, 30, now=T0 + datetime.timedelta(hours=2)) == {
            "minutes": 0, "ten_minutes": 0}
        samples.rollup(db, 30, now=T0 + datetime.timedelta(days=1, hours=3))
    assert counts(app) == {600: 12}


def test_the_api_gives_a_chart_its_resolution_and_the_state_timeline(
        app: Flask, client: FlaskClient) -> None:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    series = samples.Series()
    with database.standalone(app) as db:
        for second in range(0, 600, 10):
            samples.add(db, series, "web1", [Reading("web", "web", 7, 50.0, 5.0)],
                        now - datetime.timedelta(seconds=600 - second))
        for ago, before, after, status in ((7200, None, ProcessState.RUNNING, 0),
                                           (300, ProcessState.RUNNING, ProcessState.EXITED, 3),
                                           (299, ProcessState.EXITED, ProcessState.STARTING, 0),
                                           (298, ProcessState.STARTING, ProcessState.RUNNING,
                                            0)):
            db.add(ProcessEvent(time=now - datetime.timedelta(seconds=ago), node="web1",
                                group="web", name="web", from_state=before, to_state=after,
                                pid=7, exitstatus=status))
        db.commit()
    headers = {"Authorization": f"Bearer {token_for(app, 'viewer')}"}
    url = "/api/v1/nodes/web1/processes/web:web/history"
    memory = client.get(f"{url}?metric=memory&range=1h", headers=headers).get_json()
    assert len(memory["points"]) == 60 and memory["points"][0][1] == 50.0
    assert [s[1] for s in memory["states"]] == ["RUNNING", "EXITED", "STARTING", "RUNNING"]
    assert memory["states"][1][2] == 3  # the crash's exit status, for its mark
    cpu = client.get(f"{url}?metric=cpu&range=24h", headers=headers).get_json()
    assert cpu["step"] == 60 and cpu["points"] == []  # minute means: none rolled up yet
    for query, error in (("metric=disk&range=1h", "metric"), ("metric=cpu&range=1y", "range")):
        answer = client.get(f"{url}?{query}", headers=headers)
        assert answer.status_code == 400 and error in answer.get_json()["error"]
    devop = {"Authorization": f"Bearer {token_for(app, 'devop')}"}
    assert client.get(f"{url}?metric=cpu&range=1h", headers=devop).status_code == 404


def test_a_node_chart_sums_its_processes_and_draws_its_reachability(
        app: Flask, client: FlaskClient) -> None:
    from cesi_like.console.storage.models import NodeEvent

    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    series = samples.Series()
    with database.standalone(app) as db:
        for ago in (30, 20, 10):
            samples.add(db, series, "web1", [Reading("web", "web_0", 7, 10.0, 1.0),
                                             Reading("web", "web_1", 8, 20.0, 2.5)],
                        now - datetime.timedelta(seconds=ago))
        db.add_all([NodeEvent(time=now - datetime.timedelta(seconds=25), node="web1",
                              from_state="online", to_state="unreachable", reason="x"),
                    NodeEvent(time=now - datetime.timedelta(seconds=15), node="web1",
                              from_state="unreachable", to_state="online", reason="")])
        db.commit()
    headers = {"Authorization": f"Bearer {token_for(app, 'viewer')}"}
    url = "/api/v1/nodes/web1/history"
    memory = client.get(f"{url}?metric=memory&range=1h", headers=headers).get_json()
    assert [p[1] for p in memory["points"]] == [30.0, 30.0, 30.0]
    cpu = client.get(f"{url}?metric=cpu&range=1h", headers=headers).get_json()
    assert [p[1] for p in cpu["points"]] == [3.5, 3.5, 3.5]
    assert [s[1] for s in memory["states"]] == ["UNREACHABLE", "ONLINE"]
    assert "online_percent" in client.get(url, headers=headers).get_json()  # as before


def test_metrics_show_each_process_latest_sample_in_scope(app: Flask,
                                                          client: FlaskClient) -> None:
    series = samples.Series()
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    with database.standalone(app) as db:
        for ago, rss in ((20, 10.0), (10, 12.0)):
            samples.add(db, series, "web1", [Reading("web", "web", 7, rss, 4.0)],
                        now - datetime.timedelta(seconds=ago))
            samples.add(db, series, "dev1", [Reading("api", "api", 8, 5.0, 1.0)],
                        now - datetime.timedelta(seconds=ago))
        db.commit()
    text = client.get("/metrics", headers={
        "Authorization": f"Bearer {token_for(app, 'devop')}"}).get_data(as_text=True)
    assert 'cesi_process_memory_bytes{group="api",name="api",node="dev1"} 5.24288e+06' in text
    assert 'cesi_process_cpu_percent{group="api",name="api",node="dev1"} 1.0' in text
    assert 'node="web1"' not in text.split("cesi_process_memory_bytes", 1)[1].split(
        "# HELP", 1)[0]  # prod is not the dev operator's
    admin = client.get("/metrics", headers={
        "Authorization": f"Bearer {token_for(app, 'admin')}"}).get_data(as_text=True)
    assert 'cesi_process_memory_bytes{group="web",name="web",node="web1"} 1.2582912e+07' \
        in admin
