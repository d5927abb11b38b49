"""API tokens (#8.3): listed, revoked, expiring, read-only, last-used; revoked by a password
change and a disable; managed through the API, the CLI and the account page."""

from __future__ import annotations

import datetime
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from cesi_like.console.app import create_app
from cesi_like.console.context import console
from cesi_like.console.settings import Settings
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, ApiToken
from tests.support.console import csrf_from, login, token_for

from .test_cli import cesi


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make(app: Flask, user: str, **body: object) -> dict[str, object]:
    made = app.test_client().post("/api/v1/tokens", headers=bearer(token_for(app, user)),
                                  json=body)
    assert made.status_code == 201, made.get_data(as_text=True)
    answer: dict[str, object] = made.get_json()
    return answer


def test_own_tokens_listed_without_secrets_and_revoked(app: Flask) -> None:
    client = app.test_client()
    made = make(app, "viewer", name="grafana", expires_days=30)
    secret = str(made["token"])
    assert made["username"] == "viewer" and made["read_only"] is False and made["expires"]
    mine = client.get("/api/v1/tokens", headers=bearer(secret)).get_json()
    assert [t["name"] for t in mine] == ["grafana", ""]  # and the one make() used
    assert all("token" not in t and "token_hash" not in t for t in mine)
    assert secret not in str(mine)
    assert mine[0]["last_used"] is not None  # the listing itself used it
    # someone else's token: not found for a viewer, revocable by an admin
    other = make(app, "op", name="deploy")
    assert client.delete(f"/api/v1/tokens/{other['id']}", headers=bearer(secret)
                         ).status_code == 404
    everyone = client.get("/api/v1/tokens?all=1", headers=bearer(secret)).get_json()
    assert {t["username"] for t in everyone} == {"viewer"}  # ?all=1 is for admins
    admin = bearer(token_for(app, "admin"))
    assert {"viewer", "op", "admin"} <= {t["username"] for t in client.get(
        "/api/v1/tokens?all=1", headers=admin).get_json()}
    assert client.delete(f"/api/v1/tokens/{other['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/nodes", headers=bearer(str(other["token"]))).status_code == 401
    # revoking one's own
    assert client.delete(f"/api/v1/tokens/{made['id']}", headers=bearer(secret)
                         ).status_code == 204
    assert client.get("/api/v1/nodes", headers=bearer(secret)).status_code == 401
    with database.standalone(app) as db:
        actions = [a.action for a in db.scalars(select(ActivityLog))]
    assert actions.count("token.create") == 2 and actions.count("token.revoke") == 2


def test_read_only_and_expired_tokens(app: Flask) -> None:
    client = app.test_client()
    reader = str(make(app, "admin", name="ro", read_only=True)["token"])
    assert client.get("/api/v1/users", headers=bearer(reader)).status_code == 200
    refused = client.post("/api/v1/environments", headers=bearer(reader),
                          json={"name": "qa"})
    assert refused.status_code == 403 and "read-only" in refused.get_json()["error"]
    assert client.get("/api/v1/environments", headers=bearer(reader)).get_json()[-1][
        "name"] != "qa"
    with database.standalone(app) as db:
        denied = db.scalars(select(ActivityLog).where(ActivityLog.result == "denied")).all()
    assert [(d.action, d.target, d.detail) for d in denied] == [
        ("denied", "POST /api/v1/environments", "read-only token")]
    soon = make(app, "admin", name="soon", expires_days=1)
    assert client.get("/api/v1/nodes", headers=bearer(str(soon["token"]))).status_code == 200
    with database.standalone(app) as db:
        db.execute(update(ApiToken).where(ApiToken.id == soon["id"]).values(
            expires=datetime.datetime(2000, 1, 1)))
        db.commit()
    assert client.get("/api/v1/nodes", headers=bearer(str(soon["token"]))).status_code == 401
    listed = {t["id"]: t for t in client.get("/api/v1/tokens", headers=bearer(reader)
                                             ).get_json()}
    assert listed[soon["id"]]["expired"] is True
    for bad in ({"expires_days": 0}, {"expires_days": "x"}, {"read_only": "yes"},
                {"name": "n" * 65}, {"token": "mine"}):
        answer = client.post("/api/v1/tokens", headers=bearer(token_for(app, "admin")),
                             json=bad)
        assert answer.status_code == 400, bad
    # only admins make tokens for others
    assert client.post("/api/v1/tokens", headers=bearer(token_for(app, "op")),
                       json={"username": "admin"}).status_code == 403
    assert make(app, "admin", username="op")["username"] == "op"


def test_password_change_and_disable_revoke_tokens(app: Flask) -> None:
    client = app.test_client()
    admin = bearer(token_for(app, "admin"))
    first = str(make(app, "op", name="a")["token"])
    assert client.patch("/api/v1/users/op", headers=admin,
                        json={"password": "a new password 1"}).status_code == 200
    assert client.get("/api/v1/nodes", headers=bearer(first)).status_code == 401
    second = str(make(app, "op", name="b")["token"])
    client.patch("/api/v1/users/op", headers=admin, json={"active": False})
    client.patch("/api/v1/users/op", headers=admin, json={"active": True})
    assert client.get("/api/v1/nodes", headers=bearer(second)).status_code == 401
    with database.standalone(app) as db:
        details = [a.detail for a in db.scalars(select(ActivityLog).where(
            ActivityLog.action == "user.update"))]
    # make() made one to make each, so two each time
    assert details == ["password reset, 2 tokens revoked", "disabled, 2 tokens revoked",
                       "enabled"]


def test_account_page_shows_a_new_secret_once(app: Flask, client: FlaskClient) -> None:
    login(client, "viewer")
    page = client.get("/account").get_data(as_text=True)
    assert "No tokens." in page and "Make token" in page
    made = client.post("/account/tokens", data={
        "csrf_token": csrf_from(page), "label": "laptop", "expires_days": "7",
        "read_only": "y"})
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    secret = html.split('aria-label="New token">', 1)[1].split("<", 1)[0]
    assert secret.startswith("cesi_") and "laptop" in html and "read-only" in html
    again = client.get("/account").get_data(as_text=True)
    assert secret not in again and "laptop" in again
    assert app.test_client().get("/api/v1/nodes", headers=bearer(secret)).status_code == 200
    assert client.post("/account/tokens", data={"label": "x"}).status_code == 400  # no CSRF
    bad = client.post("/account/tokens", data={"csrf_token": csrf_from(again),
                                               "expires_days": "0"})
    assert bad.status_code == 200 and "between 1 and 3650" in bad.get_data(as_text=True)
    with database.standalone(app) as db:
        token_id = db.scalar(select(ApiToken.id).where(ApiToken.name == "laptop"))
    revoked = client.post(f"/account/tokens/{token_id}/revoke",
                          data={"csrf_token": csrf_from(again)}, follow_redirects=True)
    assert "revoked" in revoked.get_data(as_text=True)
    assert app.test_client().get("/api/v1/nodes", headers=bearer(secret)).status_code == 401


def test_tokens_from_the_cli(tmp_path: Path) -> None:
    secret = cesi(tmp_path, "tokens", "create", "admin", "--label", "ci", "--read-only",
                  "--expires-days", "3").stdout.strip()
    assert secret.startswith("cesi_")
    listing = cesi(tmp_path, "tokens", "list").stdout
    assert "ci" in listing and "read-only" in listing and secret not in listing
    app = create_app({"CESI_SETTINGS": Settings(database=f"sqlite:///{tmp_path}/cli.db")})
    try:
        client = app.test_client()
        assert client.get("/api/v1/nodes", headers=bearer(secret)).status_code == 200
        assert client.post("/api/v1/environments", headers=bearer(secret),
                           json={"name": "x"}).status_code == 403
        token_id = listing.splitlines()[1].split()[0]
        assert cesi(tmp_path, "tokens", "revoke", token_id).returncode == 0
        assert client.get("/api/v1/nodes", headers=bearer(secret)).status_code == 401
        assert cesi(tmp_path, "tokens", "revoke", token_id).returncode == 1
        assert cesi(tmp_path, "tokens", "create", "ghost").returncode == 1
    finally:
        console(app).engine.dispose()
