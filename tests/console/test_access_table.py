"""#17: every page and API route, for every kind of caller, answers what the one access
policy says: one row per route, and a route without a row fails. Outside a scoped user's
environments everything is 404; a viewer may read, an operator act, an admin administer; a
read-only token only reads; an anonymous caller is sent to log in (pages) or told 401 (API).

The nodes point at a closed port, so an action that passes the rules fails at the node (502,
or 409 with per-target errors): the status says the rules let it through."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text

from cesi_like.console.context import console
from cesi_like.console.services.credentials import hash_password, new_token
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import (
    AlertRule,
    ApiToken,
    Environment,
    Job,
    Node,
    NodeStatus,
    User,
    utcnow,
)
from tests.support.console import PASSWORD, csrf_from, make_app

ROLES = ("anonymous", "viewer", "scoped_viewer", "operator", "scoped_operator", "read_only",
         "admin")

# method and endpoint: the status for anonymous, viewer, scoped viewer, operator, scoped
# operator, read-only token (an admin's), admin. The scoped users' environment is dev; the
# node, job, environment and group each route is called with belong to prod. A 502 or a 409:
# the rules let the call through to the node, which is not there; 400, 200 on a POST form or
# a 302 after one: through to the input checks.
TABLE = """
POST activity.clear            302  403  403  403  403  403  302
GET activity.index             302  403  403  403  403  200  200
POST admin.environment_delete  302  403  403  403  403  403  302
GET admin.environment_edit     302  403  403  403  403  200  200
POST admin.environment_edit    302  403  403  403  403  403  200
GET admin.environment_new      302  403  403  403  403  200  200
POST admin.environment_new     302  403  403  403  403  403  200
GET admin.environments         302  403  403  403  403  200  200
POST admin.node_delete         302  403  403  403  403  403  302
GET admin.node_edit            302  403  403  403  403  200  200
POST admin.node_edit           302  403  403  403  403  403  200
GET admin.node_new             302  403  403  403  403  200  200
POST admin.node_new            302  403  403  403  403  403  200
POST admin.node_test           302  403  403  403  403  403  302
GET admin.nodes                302  403  403  403  403  200  200
POST admin.user_delete         302  403  403  403  403  403  302
GET admin.user_edit            302  403  403  403  403  200  200
POST admin.user_edit           302  403  403  403  403  403  200
GET admin.user_new             302  403  403  403  403  200  200
POST admin.user_new            302  403  403  403  403  403  200
GET admin.users                302  403  403  403  403  200  200
POST alerts.delete             302  403  403  403  403  403  302
GET alerts.edit                302  403  403  403  403  200  200
POST alerts.edit               302  403  403  403  403  403  200
GET alerts.index               302  403  403  403  403  200  200
POST alerts.index              302  403  403  403  403  403  200
POST alerts.switch             302  403  403  403  403  403  302
POST alerts.test               302  403  403  403  403  403  302
POST api.cancel_job            401  403  404  200  404  403  200
POST api.config_apply          401  403  404  502  404  403  502
GET api.config_diff            401  403  404  502  404  502  502
POST api.create_alert          401  403  403  403  403  403  400
POST api.create_environment    401  403  403  403  403  403  400
POST api.create_node           401  403  403  403  403  403  400
POST api.create_token          401  201  201  201  201  403  201
POST api.create_user           401  403  403  403  403  403  400
DELETE api.delete_alert        401  403  403  403  403  403  204
DELETE api.delete_environment  401  403  403  403  403  403  204
DELETE api.delete_node         401  403  403  403  403  403  204
DELETE api.delete_user         401  403  403  403  403  403  204
GET api.list_alerts            401  403  403  403  403  200  200
GET api.list_environments      401  200  200  200  200  200  200
GET api.list_jobs              401  200  200  200  200  200  200
GET api.list_nodes             401  200  200  200  200  200  200
GET api.list_processes         401  200  200  200  200  200  200
GET api.list_tokens            401  200  200  200  200  200  200
GET api.list_users             401  403  403  403  403  200  200
GET api.node_history           401  200  404  200  404  200  200
GET api.node_main_log          401  403  404  403  404  502  502
GET api.node_stats             401  502  404  502  404  502  502
GET api.openapi                401  200  200  200  200  200  200
GET api.preview_alert          401  403  403  403  403  200  200
POST api.process_action        401  403  404  502  404  403  502
GET api.process_history        401  200  404  200  404  200  200
GET api.process_log            401  502  404  502  404  502  502
GET api.process_log_download   401  502  404  502  404  502  502
DELETE api.revoke_token        401  204  404  404  404  403  204
GET api.show_job               401  200  404  200  404  200  200
POST api.start_bulk            401  403  403  400  400  403  400
POST api.start_rollout         401  403  403  400  400  403  400
PATCH api.update_alert         401  403  403  403  403  403  400
POST api.test_alert            401  403  403  403  403  403  200
PATCH api.update_environment   401  403  403  403  403  403  200
PUT api.update_environment     401  403  403  403  403  403  200
PATCH api.update_node          401  403  403  403  403  403  200
PUT api.update_node            401  403  403  403  403  403  200
PATCH api.update_user          401  403  403  403  403  403  200
PUT api.update_user            401  403  403  403  403  403  200
GET auth.account               302  200  200  200  200  200  200
GET auth.login                 200  302  302  302  302  302  302
POST auth.login                400  302  302  302  302  400  302
POST auth.logout               302  302  302  302  302  403  302
GET auth.password              302  200  200  200  200  200  200
POST auth.password             302  200  200  200  200  403  200
POST auth.token_create         302  200  200  200  200  403  200
POST auth.token_revoke         302  302  404  404  404  403  302
POST fleet.act                 302  403  404  302  404  403  302
POST fleet.bulk_action         302  403  403  302  302  403  302
GET fleet.dashboard            302  200  200  200  200  200  200
GET fleet.group                302  200  404  200  404  200  200
GET fleet.node                 302  200  404  200  404  200  200
GET fleet.node_config          302  403  404  200  404  200  200
POST fleet.node_config         302  403  404  302  404  403  302
GET fleet.node_log             302  403  404  403  404  200  200
GET fleet.process              302  200  404  200  404  200  200
GET fleet.processes            302  200  200  200  200  200  200
GET fleet.search               302  200  200  200  200  200  200
GET health.healthz             200  200  200  200  200  200  200
POST jobs.cancel               302  403  404  302  404  403  302
GET jobs.index                 302  200  200  200  200  200  200
GET jobs.new_rollout           302  403  403  200  200  200  200
POST jobs.new_rollout          302  403  403  200  200  403  200
GET jobs.show                  302  200  404  200  404  200  200
GET metrics.metrics            401  200  200  200  200  200  200
GET sso.oidc_callback          404  404  404  404  404  404  404
GET sso.oidc_login             404  404  404  404  404  404  404
GET api.list_problems          401  200  200  200  200  200  200
GET api.list_silences          401  200  200  200  200  200  200
GET problems.index             302  200  200  200  200  200  200
POST api.ack_problem           401  403  403  404  404  403  404
POST api.create_silence        401  403  403  400  400  403  400
DELETE api.end_silence         401  403  403  404  404  403  404
PUT api.node_maintenance       401  403  403  400  404  403  400
POST problems.ack              302  403  403  404  404  403  404
POST problems.end              302  403  403  404  404  403  404
POST problems.silence          302  403  403  302  302  403  302
POST problems.maintenance      302  403  403  302  404  403  302
GET static                     200  200  200  200  200  200  200
"""

# what each path parameter stands for (see `_seed`); `<name>` is the prod environment in
# the environments' routes, the prod node web1 elsewhere
VALUES = {"name": "web1", "spec": "web:web", "action": "restart", "group": "web",
          "firing_id": "4242", "silence_id": "4242",
          "username": "viewer", "filename": "style.css"}


@dataclass
class Caller:
    """How a role calls: its session cookie and CSRF token, or its headers."""

    cookie: str | None = None
    csrf: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """The app, its ids, each role's way in, and the database every call starts from."""

    app: Flask
    ids: dict[str, int]
    callers: dict[str, Caller] = field(default_factory=dict)
    template: Path = Path()


def rows() -> dict[tuple[str, str], dict[str, int]]:
    table = {}
    for line in TABLE.strip().splitlines():
        method, endpoint, *codes = line.split()
        assert len(codes) == len(ROLES), line
        table[(method, endpoint)] = dict(zip(ROLES, map(int, codes), strict=True))
    return table


def routes(app: Flask) -> dict[tuple[str, str], str]:
    """(method, endpoint) -> rule, for every route of the app."""
    return {(method, rule.endpoint): rule.rule for rule in app.url_map.iter_rules()
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}


def concrete(rule: str, ids: dict[str, int]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "name" and rule.startswith("/api/v1/environments/"):
            return "prod"
        return str(ids[name]) if name in ids else VALUES[name]
    return re.sub(r"<(?:[^:<>]+:)?(\w+)>", value, rule)


def _seed(app: Flask) -> dict[str, int]:
    with database.standalone(app) as db:
        prod, dev = Environment(name="prod", description=""), Environment(name="dev",
                                                                          description="")
        web1 = Node(name="web1", url="http://127.0.0.1:1", environments=[prod])
        db.add_all([prod, dev, web1, Node(name="dev1", url="http://127.0.0.1:1",
                                          environments=[dev])])
        users = {}
        for name, role, scope in (("viewer", "viewer", []), ("devviewer", "viewer", [dev]),
                                  ("op", "operator", []), ("devop", "operator", [dev])):
            users[name] = User(username=name, role=role, scope=scope,
                               password_hash=hash_password(PASSWORD))
            db.add(users[name])
        db.flush()
        _, digest = new_token()
        token = ApiToken(user_id=users["viewer"].id, token_hash=digest, name="viewer's")
        rule = AlertRule(name="fatals", kind="fatal", webhook_url="http://127.0.0.1:1/hook")
        job = Job(kind="rolling-restart", state="queued", user_id=users["op"].id,
                  title="restart web", spec=json.dumps(
                      {"environment": "prod", "group": "web", "batch_size": 1, "pause": 0,
                       "keep_going": False}),
                  steps=json.dumps([{"node": "web1", "state": "pending", "detail": ""}]),
                  message="", created=utcnow(), updated=utcnow())
        db.add_all([token, rule, job])
        db.flush()
        for node, group in ((web1.id, "web"), (db.scalar(select(Node.id).where(
                Node.name == "dev1")), "api")):
            db.add(NodeStatus(node_id=node, state="online", since=utcnow(),
                              polled_at=utcnow(), last_ok=utcnow(), process_count=1,
                              processes=json.dumps([{
                                  "name": group, "group": group, "description": "pid 7",
                                  "start": 1, "stop": 0, "now": 2, "state": 20,
                                  "statename": "RUNNING", "spawnerr": "", "exitstatus": 0,
                                  "pid": 7}])))
        db.commit()
        return {"token_id": token.id, "rule_id": rule.id, "job_id": job.id,
                "user_id": users["viewer"].id, "node_id": web1.id, "env_id": prod.id}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("access")
    app = make_app(folder)
    found = World(app, _seed(app))
    for role, username in (("viewer", "viewer"), ("scoped_viewer", "devviewer"),
                           ("operator", "op"), ("scoped_operator", "devop"),
                           ("admin", "admin")):
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                             "csrf_token": csrf_from(page)})
        assert answer.status_code == 302
        token = csrf_from(client.get("/account/password").get_data(as_text=True))
        cookie = client.get_cookie("session")
        assert cookie is not None
        found.callers[role] = Caller(cookie.value, token, {"X-CSRFToken": token})
    with database.standalone(app) as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        secret, digest = new_token()
        db.add(ApiToken(user_id=admin.id, token_hash=digest, read_only=True))
        db.commit()
    found.callers["read_only"] = Caller(headers={"Authorization": f"Bearer {secret}"})
    found.callers["anonymous"] = Caller()
    # what every route starts from: this database, with these logins in it
    with console(app).engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    console(app).engine.dispose()
    found.template = folder / "template.db"
    shutil.copy(folder / "console.db", found.template)
    yield found
    console(app).engine.dispose()


def _restore(found: World) -> None:
    console(found.app).engine.dispose()
    database_file = found.template.parent / "console.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{database_file}{suffix}").unlink(missing_ok=True)
    shutil.copy(found.template, database_file)


def call(found: World, role: str, method: str, path: str) -> int:
    """One request as `role`, from the template database and a fresh client (a call may
    change the data, or log the role out)."""
    _restore(found)
    caller = found.callers[role]
    client = found.app.test_client()
    if caller.cookie is not None:
        client.set_cookie("session", caller.cookie)
    if path.startswith("/api/"):
        answer = client.open(path, method=method, headers=caller.headers,
                             json={} if method in ("POST", "PUT", "PATCH") else None)
    else:
        answer = client.open(path, method=method, headers=caller.headers,
                             data={"csrf_token": caller.csrf} if method == "POST" else None)
    return answer.status_code


def test_every_route_has_a_row(world: World) -> None:
    missing = sorted(set(routes(world.app)) - set(rows()))
    stale = sorted(set(rows()) - set(routes(world.app)))
    assert not missing, "routes without a row in TABLE:\n" + "\n".join(
        f"{method} {endpoint}" for method, endpoint in missing)
    assert not stale, f"rows for routes that do not exist: {stale}"


@pytest.mark.parametrize(("method", "endpoint"), sorted(rows()), ids=" ".join)
def test_route_answers_each_role_as_the_policy_says(world: World, method: str,
                                                    endpoint: str) -> None:
    path = concrete(routes(world.app)[(method, endpoint)], world.ids)
    seen = {role: call(world, role, method, path) for role in ROLES}
    assert seen == rows()[(method, endpoint)], f"{method} {path}"
