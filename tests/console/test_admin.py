"""Admin pages: users, nodes, environments, the last-admin rule, and the activity log."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Environment, Node, User
from tests.support.console import PASSWORD, csrf_from, login, token_for


def ids(app: Flask, model: type, name: str) -> int:
    with database.standalone(app) as db:
        column = model.username if model is User else model.name  # type: ignore[attr-defined]
        item = db.scalar(select(model).where(column == name))
        assert item is not None
        return int(item.id)


def test_create_user_then_change_role_and_scope(app: Flask, client: FlaskClient) -> None:
    token = login(client)
    dev = ids(app, Environment, "dev")
    response = client.post("/admin/users/new", data={
        "csrf_token": token, "username": "carol", "password": "carols password",
        "role": "viewer", "scope": [str(dev)], "active": "y"})
    assert response.status_code == 302
    carol = ids(app, User, "carol")
    response = client.post(f"/admin/users/{carol}", data={
        "csrf_token": token, "username": "carol", "password": "", "role": "operator",
        "active": "y"})
    assert response.status_code == 302
    with database.standalone(app) as db:
        user = db.get(User, carol)
        assert user is not None and user.role == "operator" and user.scope == []
        log = [(e.action, e.target, e.detail) for e in db.scalars(select(ActivityLog))]
    assert ("user.create", "carol", "role=viewer") in log
    assert ("user.update", "carol", "role viewer->operator, environments all") in log


def test_bad_user_form_rerenders_with_messages(client: FlaskClient) -> None:
    token = login(client)
    response = client.post("/admin/users/new", data={
        "csrf_token": token, "username": "bad name!", "password": "short", "role": "viewer"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Letters, digits" in page and "between 8 and 256 characters" in page
    response = client.post("/admin/users/new", data={
        "csrf_token": token, "username": "op", "password": "long enough pw", "role": "viewer"})
    assert "That username is taken." in response.get_data(as_text=True)


def test_last_admin_cannot_be_demoted_disabled_or_deleted(app: Flask, client: FlaskClient
                                                          ) -> None:
    token = login(client)
    admin = ids(app, User, "admin")
    for data in ({"role": "viewer", "active": "y"}, {"role": "admin"}):
        response = client.post(f"/admin/users/{admin}", data={
            "csrf_token": token, "username": "admin", "password": "", **data})
        assert "last active admin" in response.get_data(as_text=True)
    response = client.post(f"/admin/users/{admin}/delete", data={"csrf_token": token},
                           follow_redirects=True)
    assert "last active admin" in response.get_data(as_text=True)
    with database.standalone(app) as db:
        user = db.get(User, admin)
        assert user is not None and user.role == "admin" and user.active
    # with a second admin, the first may go
    op = ids(app, User, "op")
    client.post(f"/admin/users/{op}", data={"csrf_token": token, "username": "op",
                                            "role": "admin", "active": "y"})
    client.post(f"/admin/users/{admin}", data={"csrf_token": token, "username": "admin",
                                               "role": "viewer", "active": "y"})
    with database.standalone(app) as db:
        assert db.get(User, admin).role == "viewer"  # type: ignore[union-attr]


def test_disabling_a_user_ends_their_sessions(app: Flask, client: FlaskClient) -> None:
    victim = app.test_client()
    login(victim, "viewer")
    token = login(client)
    viewer = ids(app, User, "viewer")
    client.post(f"/admin/users/{viewer}", data={"csrf_token": token, "username": "viewer",
                                                "role": "viewer"})
    assert victim.get("/").status_code == 302


def test_nodes_and_environments(app: Flask, client: FlaskClient) -> None:
    token = login(client)
    prod = ids(app, Environment, "prod")
    response = client.post("/admin/nodes/new", data={
        "csrf_token": token, "name": "db1", "url": "http://10.0.0.9:9001", "username": "u",
        "password": "node-pass-1", "environments": [str(prod)], "enabled": "y"})
    assert response.status_code == 302
    db1 = ids(app, Node, "db1")
    page = client.get(f"/admin/nodes/{db1}").get_data(as_text=True)
    assert "node-pass-1" not in page and "password set" in client.get(
        "/admin/nodes").get_data(as_text=True)
    # saving without a password keeps the stored one
    client.post(f"/admin/nodes/{db1}", data={
        "csrf_token": token, "name": "db1", "url": "http://10.0.0.9:9002", "username": "u",
        "enabled": "y"})
    with database.standalone(app) as db:
        node = db.get(Node, db1)
        assert node is not None and node.password is not None
        # sealed at rest, opened only with the node key
        assert "node-pass-1" not in node.password and node.password.startswith("fernet:")
        assert console(app).secrets.decrypt(node.password) == "node-pass-1"
        assert node.url.endswith(":9002") and node.environments == []
    response = client.post("/admin/nodes/new", data={
        "csrf_token": token, "name": "x", "url": "ftp://nope"})
    assert "Use http://host:port" in response.get_data(as_text=True)
    response = client.post("/admin/environments/new", data={
        "csrf_token": token, "name": "staging", "nodes": [str(db1)]})
    assert response.status_code == 302
    staging = ids(app, Environment, "staging")
    client.post(f"/admin/environments/{staging}/delete", data={"csrf_token": token})
    client.post(f"/admin/nodes/{db1}/delete", data={"csrf_token": token})
    with database.standalone(app) as db:
        assert db.get(Node, db1) is None and db.get(Environment, staging) is None


def test_test_connection_reports_unreachable(app: Flask, client: FlaskClient) -> None:
    token = login(client)
    web1 = ids(app, Node, "web1")
    page = client.post(f"/admin/nodes/{web1}/test", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "web1: unreachable" in page


def test_activity_filters_pagination_and_clear(app: Flask, client: FlaskClient) -> None:
    login(client)
    login(app.test_client(), "op")
    page = client.get("/activity/?user=op").get_data(as_text=True)
    assert "<td>op</td>" in page and "<td>admin</td>" not in page
    assert "Ignored since" in client.get("/activity/?since=yesterday",
                                          follow_redirects=True).get_data(as_text=True)
    token = csrf_from(client.get("/activity/").get_data(as_text=True))
    client.post("/activity/clear", data={"csrf_token": token})
    with database.standalone(app) as db:
        entries = db.scalars(select(ActivityLog)).all()
    assert [e.action for e in entries] == ["activity.clear"]


def test_activity_file(tmp_path, client: FlaskClient, app: Flask) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "activity.log"
    app.config["CESI_ACTIVITY_LOG"] = str(path)
    login(client, "op", PASSWORD)
    assert " op " in path.read_text() and " login " in path.read_text()


@pytest.mark.parametrize("field,value,why", [
    ("url", "http://user:pw@10.0.0.9:9001", "credentials"),
    ("username", "u\x01", "control characters"),
    ("notes", "ok\x00no", "control characters"),
    ("ca_file", "x" * 600, "longer than 512"),
])
def test_forms_and_api_refuse_the_same_input(app: Flask, client: FlaskClient, field: str,
                                             value: str, why: str) -> None:
    """#8.6: one validation for the admin form and the API: same refusal, nothing stored."""
    token = login(client)
    form = {"csrf_token": token, "name": "same", "url": "http://10.0.0.9:9001",
            "enabled": "y", field: value}
    page = client.post("/admin/nodes/new", data=form)
    assert page.status_code == 200 and why in page.get_data(as_text=True)
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    api = app.test_client().post("/api/v1/nodes", headers=admin, json={
        "name": "same", "url": "http://10.0.0.9:9001", field: value})
    assert api.status_code == 400 and why in api.get_json()["error"]
    with database.standalone(app) as db:
        assert db.scalar(select(Node).where(Node.name == "same")) is None


def test_unknown_api_fields_are_refused(app: Flask, client: FlaskClient) -> None:
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    typo = client.post("/api/v1/nodes", headers=admin,
                       json={"name": "t1", "url": "http://10.0.0.9:9001", "pasword": "x"})
    assert typo.status_code == 400 and "unknown fields: pasword" in typo.get_json()["error"]
    made = client.post("/api/v1/nodes", headers=admin,
                       json={"name": "t1", "url": "http://10.0.0.9:9001", "password": "pw"})
    assert made.status_code == 201
    # what GET shows can be sent back as it is
    again = client.put("/api/v1/nodes/t1", headers=admin, json=made.get_json())
    assert again.status_code == 200 and again.get_json()["has_password"] is True
