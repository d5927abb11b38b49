"""Typed confirmation (#21.3): a stop, restart or signal of more than `confirm_over` processes,
or of any process of a protected environment, needs the node's (or the environment's) name;
the API answers 428 with what it touches, the page asks with the same form, the CLI takes
--confirm. What is confirmed goes on (to a node that is down here: 502 / the node's error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import Environment, Node, NodeStatus, utcnow
from tests.support.console import token_for


def snapshot(app: Flask, node_name: str, groups: dict[str, int]) -> None:
    """The poller's word on a node: `groups` with that many processes each."""
    processes = [{"name": f"{group}_{n}", "group": group, "description": "", "start": 1,
                  "stop": 0, "now": 2, "state": 20, "statename": "RUNNING", "spawnerr": "",
                  "exitstatus": 0, "pid": 7 + n} for group, count in groups.items()
                 for n in range(count)]
    with database.standalone(app) as db:
        node = db.scalar(select(Node).where(Node.name == node_name))
        assert node is not None
        db.merge(NodeStatus(node_id=node.id, state="online", since=utcnow(), polled_at=utcnow(),
                            last_ok=utcnow(), process_count=len(processes),
                            processes=json.dumps(processes)))
        db.commit()


@pytest.fixture
def fleet(app: Flask) -> Flask:
    """prod (protected): web1 and web2 with 3 web processes each; dev: dev1 with 12 workers
    and 2 web."""
    with database.standalone(app) as db:
        prod = db.scalar(select(Environment).where(Environment.name == "prod"))
        assert prod is not None
        prod.protected = True
        db.add(Node(name="web2", url="http://127.0.0.1:1", environments=[prod]))
        db.commit()
    snapshot(app, "web1", {"web": 3})
    snapshot(app, "web2", {"web": 3})
    snapshot(app, "dev1", {"worker": 12, "web": 2})
    return app


def api(client: FlaskClient, secret: str, path: str, payload: dict | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1{path}", json=payload or {},
                       headers={"Authorization": f"Bearer {secret}"})


def test_the_api_answers_428_with_what_a_protected_action_touches(fleet: Flask,
                                                                  client: FlaskClient) -> None:
    secret = token_for(fleet, "op")
    answer = api(client, secret, "/nodes/web1/processes/web:web_0/restart")
    assert answer.status_code == 428
    assert answer.json["confirm"] == "web1"
    assert answer.json["touches"] == {"web1": 1} and answer.json["protected"] == ["prod"]
    assert "in protected prod" in answer.json["error"]
    wrong = api(client, secret, "/nodes/web1/processes/web:web_0/restart", {"confirm": "prod"})
    assert wrong.status_code == 428 and "'prod' is not it" in wrong.json["error"]
    done = api(client, secret, "/nodes/web1/processes/web:web_0/restart", {"confirm": "web1"})
    assert done.status_code == 502  # asked the node, which is down here
    # starting asks nothing, even in a protected environment
    assert api(client, secret, "/nodes/web1/processes/web:*/start").status_code == 502


def test_more_than_confirm_over_processes_need_the_name(fleet: Flask,
                                                        client: FlaskClient) -> None:
    secret = token_for(fleet, "op")
    assert api(client, secret, "/nodes/dev1/processes/web:*/stop").status_code == 502  # 2
    answer = api(client, secret, "/nodes/dev1/processes/*/signal", {"signal": "HUP"})
    assert answer.status_code == 428
    assert answer.json["touches"] == {"dev1": 14} and answer.json["protected"] == []
    assert api(client, secret, "/nodes/dev1/processes/*/signal",
               {"signal": "HUP", "confirm": "dev1"}).status_code == 502


def test_bulk_and_rolling_restarts_ask_once_for_the_environment(fleet: Flask,
                                                                client: FlaskClient) -> None:
    secret = token_for(fleet, "op")
    bulk = {"action": "restart", "spec": "web:*", "environment": "prod"}
    answer = api(client, secret, "/bulk", bulk)
    assert answer.status_code == 428
    assert answer.json["confirm"] == "prod"
    assert answer.json["touches"] == {"web1": 3, "web2": 3}
    assert "(web1: 3, web2: 3)" in answer.json["error"]
    assert api(client, secret, "/bulk", {**bulk, "confirm": "prod"}).status_code == 202

    rollout = {"environment": "prod", "group": "web"}
    assert api(client, secret, "/rollouts", rollout).status_code == 428
    assert api(client, secret, "/rollouts", {**rollout, "confirm": "prod"}).status_code == 202

    # nodes without a shared environment: the number of processes is the word
    mixed = {"action": "stop", "targets": [{"node": "dev1", "spec": "*"},
                                           {"node": "web1", "spec": "web:*"}]}
    answer = api(client, secret, "/bulk", mixed)
    assert answer.status_code == 428 and answer.json["confirm"] == "17"


def test_the_page_asks_with_the_same_form_and_goes_on_with_the_name(
        fleet: Flask, client: FlaskClient, login_as) -> None:  # type: ignore[no-untyped-def]
    csrf = login_as("op")
    form = {"csrf_token": csrf, "next": "/nodes/dev1"}
    page = client.post("/nodes/dev1/processes/*/stop", data=form)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Type <strong>dev1</strong> to confirm" in html
    assert "<td>dev1</td><td>14</td>" in html
    assert 'name="next" value="/nodes/dev1"' in html  # the form, posted again
    again = client.post("/nodes/dev1/processes/*/stop", data={**form, "confirm": "dev"})
    assert "dev is not it." in again.get_data(as_text=True)
    done = client.post("/nodes/dev1/processes/*/stop", data={**form, "confirm": "dev1"})
    assert done.status_code == 302  # on to the node (down here: the flash says so)


def test_the_cli_takes_confirm(fleet: Flask, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from cesi_like.console import cli

    database_url = fleet.config["CESI_DATABASE"]
    conf = tmp_path / "cesi.conf"
    conf.write_text(f"[cesi]\ndatabase = {database_url}\nnode_timeout = 1\n")
    assert cli.main(["--config", str(conf), "ctl", "web1", "stop", "web:*"]) == 1
    assert "type web1 to confirm" in capsys.readouterr().err
    assert cli.main(["--config", str(conf), "ctl", "web1", "stop", "web:*",
                     "--confirm", "web1"]) == 1
    assert "web1 is" in capsys.readouterr().err  # the node is down: it was asked
