"""Each role can do exactly what it may (the table of every route and role is in
test_access_table.py), what a refusal records, and what never reaches a page."""

from __future__ import annotations

import os

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Node, User
from tests.support.console import PASSWORD, login, token_for


def test_health_check_needs_no_login_and_tells_nothing(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_health_check_fails_when_the_database_is_gone(app: Flask, client: FlaskClient) -> None:
    console(app).engine.dispose()
    folder = os.path.dirname(app.config["CESI_DATABASE"].removeprefix("sqlite:///"))
    os.rename(folder, folder + ".gone")  # as if the disk or the database server went away
    try:
        response = client.get("/healthz")
    finally:
        os.rename(folder + ".gone", folder)
    assert response.status_code == 503
    assert response.get_json() == {"status": "database unavailable"}


def test_json_clients_get_json_401(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 401 and response.is_json


ADMIN_PAGES = ["/admin/users", "/admin/nodes", "/admin/environments", "/activity/",
               "/admin/users/new", "/admin/nodes/new", "/admin/environments/new"]


@pytest.mark.parametrize("username", ["viewer", "op"])
@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_non_admins_cannot_open_admin_pages(client: FlaskClient, username: str, page: str
                                            ) -> None:
    login(client, username)
    assert client.get(page).status_code == 403


def test_viewer_post_to_admin_endpoint_is_403_and_changes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    token = login(client, "viewer")
    response = client.post("/admin/users/new", data={
        "csrf_token": token, "username": "mallory", "password": "x" * 12, "role": "admin",
        "active": "y"})
    assert response.status_code == 403
    response = client.post("/api/v1/users", json={"username": "mallory",
                           "password": "x" * 12, "role": "admin"},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 403
    with database.standalone(app) as db:
        assert db.scalar(select(User).where(User.username == "mallory")) is None


def test_viewer_cannot_act_on_processes(app: Flask, client: FlaskClient) -> None:
    token = token_for(app, "viewer")
    response = client.post("/api/v1/nodes/web1/processes/web:*/start",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_scoped_operator_sees_and_acts_only_in_scope(app: Flask, client: FlaskClient) -> None:
    token = token_for(app, "devop")
    auth = {"Authorization": f"Bearer {token}"}
    names = [n["name"] for n in client.get("/api/v1/nodes", headers=auth).get_json()]
    assert names == ["dev1"]
    outside = client.post("/api/v1/nodes/web1/processes/x:*/start", headers=auth)
    assert outside.status_code == 404  # no hint that web1 exists
    envs = [e["name"] for e in client.get("/api/v1/environments", headers=auth).get_json()]
    assert envs == ["dev"]
    with database.standalone(app) as db:
        assert not db.scalars(select(ActivityLog).where(
            ActivityLog.action.startswith("process."))).all()


def test_admin_can_do_everything(client: FlaskClient) -> None:
    login(client, "admin")
    for page in ADMIN_PAGES:
        assert client.get(page).status_code == 200, page


def test_node_passwords_never_leave_the_server(app: Flask, client: FlaskClient) -> None:
    with database.standalone(app) as db:
        node = db.scalar(select(Node).where(Node.name == "web1"))
        assert node is not None
        node.password = "node-secret-123"
        node_id = node.id
        db.commit()
    login(client, "admin")
    for page in ("/admin/nodes", f"/admin/nodes/{node_id}", "/", "/api/v1/nodes"):
        assert "node-secret-123" not in client.get(page).get_data(as_text=True), page
    assert PASSWORD not in client.get("/activity/").get_data(as_text=True)


def test_security_headers_on_pages_and_api(client: FlaskClient) -> None:
    for path in ("/login", "/api/v1/nodes"):
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_no_inline_script_built_from_data(app: Flask, client: FlaskClient) -> None:
    """A hostile name in a Delete confirmation is an escaped attribute, never script."""
    hostile = "x'+alert(document.domain)+'"
    with database.standalone(app) as db:
        db.add(Node(name=hostile, url="http://127.0.0.1:1"))
        db.commit()
    login(client)
    for path in ("/admin/nodes", "/admin/users", "/admin/environments", "/activity/", "/"):
        html = client.get(path).get_data(as_text=True)
        assert "onsubmit" not in html and "onclick" not in html and "<script>" not in html
    html = client.get("/admin/nodes").get_data(as_text=True)
    assert 'data-confirm="Delete node x&#39;+alert(document.domain)+&#39;?"' in html


def test_denied_requests_are_recorded(app: Flask, client: FlaskClient) -> None:
    """#8.11: a 403 is activity too."""
    login(client, "viewer")
    assert client.get("/admin/users").status_code == 403
    headers = {"Authorization": f"Bearer {token_for(app, 'op')}"}
    assert app.test_client().delete("/api/v1/users/viewer", headers=headers).status_code == 403
    with database.standalone(app) as db:
        denied = [(e.username, e.target, e.result) for e in db.scalars(
            select(ActivityLog).where(ActivityLog.action == "denied"))]
    assert ("viewer", "GET /admin/users", "denied") in denied
    assert ("op", "DELETE /api/v1/users/viewer", "denied") in denied


def test_admins_are_never_limited_to_environments(app: Flask, client: FlaskClient) -> None:
    """#8.9: one meaning everywhere: an admin manages the whole console. The rules refuse to
    scope an admin, and a row that has a scope anyway (older data) is read as unscoped by the
    API, the pages and the activity log alike."""
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    refused = client.post("/api/v1/users", headers=admin, json={
        "username": "boss", "password": "boss password", "role": "admin",
        "environments": ["dev"]})
    assert refused.status_code == 400 and "whole console" in refused.get_json()["error"]
    promoted = client.patch("/api/v1/users/devop", headers=admin, json={"role": "admin"})
    assert promoted.status_code == 400  # devop has environments: drop them first
    assert client.patch("/api/v1/users/devop", headers=admin, json={
        "role": "admin", "environments": []}).status_code == 200
    with database.standalone(app) as db:  # an admin scoped by older data
        from cesi_like.console.storage.models import Environment

        legacy = db.scalar(select(User).where(User.username == "devop"))
        dev = db.scalar(select(Environment).where(Environment.name == "dev"))
        assert legacy is not None and dev is not None
        legacy.scope = [dev]
        db.commit()
    scoped = {"Authorization": f"Bearer {token_for(app, 'devop')}"}
    assert client.patch("/api/v1/nodes/web1", headers=scoped,
                        json={"notes": "prod node"}).status_code == 200
    names = {n["name"] for n in client.get("/api/v1/nodes", headers=scoped).get_json()}
    assert names == {"web1", "dev1"}
    login(client, "devop")
    assert client.get("/nodes/web1").status_code == 200
    assert client.get("/activity/").status_code == 200
