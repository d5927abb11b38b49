"""Logging in and out: CSRF, rate limits, hashing, stable sessions, safe redirects."""

from __future__ import annotations

import datetime
import re
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, Setting, User
from tests.support.console import PASSWORD, csrf_from, fresh_database, login, make_app


def test_login_logout_and_activity(app: Flask, client: FlaskClient) -> None:
    token = login(client, "op")
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    with database.standalone(app) as db:
        actions = [e.action for e in db.scalars(select(ActivityLog).order_by(ActivityLog.id))]
    assert actions[-2:] == ["login", "logout"]


def test_post_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    login(client, "admin")
    response = client.post("/admin/users/new", data={
        "username": "eve", "password": "x" * 12, "role": "viewer"})
    assert response.status_code == 400
    response = client.post("/api/v1/users", json={"username": "eve", "password": "x" * 12})
    assert response.status_code == 400 and response.is_json
    with database.standalone(app) as db:
        assert db.scalar(select(User).where(User.username == "eve")) is None


def test_login_without_csrf_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302  # still logged out


def test_wrong_password_then_rate_limit(app: Flask, client: FlaskClient) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    for _ in range(5):
        response = client.post("/login", data={"username": "op", "password": "nope",
                                               "csrf_token": token})
        assert response.status_code == 401
        assert "Unknown user or wrong password." in response.get_data(as_text=True)
    response = client.post("/login", data={"username": "op", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 429  # even the right password waits now
    assert "Too many failed logins" in response.get_data(as_text=True)
    other = app.test_client()  # another user from the same address is not locked out yet
    login(other, "viewer")


def test_passwords_are_hashed_and_never_logged(scrypt: None, app: Flask, tmp_path: Path
                                               ) -> None:
    """With the console's own hash (the suite's other tests use a cheap one)."""
    with database.standalone(app) as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        assert admin.password_hash.startswith("scrypt:") and PASSWORD not in admin.password_hash
    data = (tmp_path / "console.db").read_bytes()
    assert PASSWORD.encode() not in data


def test_sessions_survive_a_second_app_instance(tmp_path: Path) -> None:
    """Two workers (two app objects) on one database accept each other's sessions."""
    first, second = make_app(tmp_path), make_app(tmp_path)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    with database.standalone(first) as db:
        assert db.get(Setting, "secret_key") is not None
    client = first.test_client()
    login(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = second.test_client()
    other.set_cookie("session", cookie.value)
    assert other.get("/admin/users").status_code == 200


def test_password_change_ends_other_sessions(app: Flask) -> None:
    mine, elsewhere = app.test_client(), app.test_client()
    token = login(mine, "op")
    login(elsewhere, "op")
    response = mine.post("/account/password", data={
        "csrf_token": token, "current": PASSWORD, "new": "a new secret 123",
        "confirm": "a new secret 123"})
    assert response.status_code == 302
    assert mine.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302


def test_wrong_current_password_rerenders(client: FlaskClient) -> None:
    token = login(client, "op")
    response = client.post("/account/password", data={
        "csrf_token": token, "current": "wrong", "new": "a new secret 123",
        "confirm": "a new secret 123"})
    assert response.status_code == 200
    assert "That is not your current password." in response.get_data(as_text=True)


def test_next_only_redirects_within_the_site(client: FlaskClient) -> None:
    for target, expected in (("/admin/users", "/admin/users"), ("https://evil.example/", "/"),
                             ("//evil.example/x", "/"), ("/\\evil.example", "/")):
        token = csrf_from(client.get("/login").get_data(as_text=True))
        response = client.post(f"/login?next={target}", data={
            "username": "admin", "password": PASSWORD, "csrf_token": token})
        assert response.headers["Location"] == expected, target
        client.post("/logout", data={"csrf_token": csrf_from(
            client.get("/account/password").get_data(as_text=True))})


def test_session_cookie_flags(client: FlaskClient) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": token, "remember": "y"})
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" not in session


def test_session_cookie_is_secure_over_https(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/login", base_url="https://console.example")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/login", base_url="https://console.example", data={
        "username": "admin", "password": PASSWORD, "csrf_token": token})
    session = next(c for c in response.headers.getlist("Set-Cookie")
                   if c.startswith("session="))
    assert "Secure" in session


def test_first_start_without_password_prints_a_random_one(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cesi_like.console.app import create_app
    from cesi_like.console.settings import Settings

    url = fresh_database(tmp_path, "x.db")
    app = create_app({"CESI_SETTINGS": Settings(database=url)})
    printed = capsys.readouterr().err
    assert "created user 'admin' with password" in printed
    password = printed.split("password '")[1].split("'")[0]
    login(app.test_client(), "admin", password)
    app2 = create_app({"CESI_SETTINGS": Settings(database=url)})
    assert capsys.readouterr().err == ""  # only once
    for each in (app, app2):
        console(each).engine.dispose()


def test_many_failures_from_one_address_are_limited(app: Flask) -> None:
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    for number in range(20):  # different user names, one address
        client.post("/login", data={"username": f"guess{number}", "password": "x",
                                    "csrf_token": token})
    response = client.post("/login", data={"username": "viewer", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 429


def test_api_with_a_session_needs_the_csrf_header(app: Flask, client: FlaskClient) -> None:
    token = login(client)
    body = {"name": "qa", "nodes": []}
    assert client.post("/api/v1/environments", json=body).status_code == 400
    created = client.post("/api/v1/environments", json=body, headers={"X-CSRFToken": token})
    assert created.status_code == 201


def _remembered(app: Flask, username: str) -> tuple[FlaskClient, FlaskClient]:
    """A browser logged in with "remember me", and a second client holding copies of its
    cookies (what an attacker who saved them would have)."""
    browser = app.test_client()
    token = csrf_from(browser.get("/login").get_data(as_text=True))
    browser.post("/login", data={"username": username, "password": PASSWORD, "remember": "y",
                                 "csrf_token": token})
    saved = app.test_client()
    _copy_cookies(browser, saved)
    assert saved.get("/").status_code == 200
    return browser, saved


def _copy_cookies(source: FlaskClient, target: FlaskClient) -> None:
    for name in ("session", "remember_token"):
        cookie = source.get_cookie(name)
        if cookie is not None:
            target.set_cookie(name, cookie.value)


def test_a_deleted_users_cookie_never_logs_in_as_a_new_user(app: Flask) -> None:
    """#8.1: SQLite reuses a deleted user's id; the old cookie must not fit the new user."""
    from cesi_like.console.services.credentials import hash_password

    _, saved = _remembered(app, "viewer")
    with database.standalone(app) as db:
        old = db.scalar(select(User).where(User.username == "viewer"))
        assert old is not None
        old_id = old.id
        db.delete(old)
        db.commit()
        db.add(User(id=old_id, username="newadmin", role="admin",
                    password_hash=hash_password(PASSWORD)))
        db.commit()
    replay = app.test_client()
    _copy_cookies(saved, replay)
    assert replay.get("/").status_code == 302  # to /login: neither cookie fits
    assert replay.get("/admin/users").status_code == 302


def test_logout_ends_the_session_on_the_server(app: Flask) -> None:
    """#8.2: a session or remember cookie saved before logout is dead after it."""
    browser, saved = _remembered(app, "op")
    token = csrf_from(browser.get("/account/password").get_data(as_text=True))
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    _copy_cookies(saved, replay)
    assert replay.get("/").status_code == 302
    only_remember = app.test_client()
    remember = saved.get_cookie("remember_token")
    assert remember is not None
    only_remember.set_cookie("remember_token", remember.value)
    assert only_remember.get("/").status_code == 302


def test_remember_cookie_lasts_14_days_and_is_secure_behind_a_trusted_proxy(
    tmp_path: Path
) -> None:
    """#8.10: Secure when the request is https (directly, or per a trusted proxy's
    X-Forwarded-Proto), and a two-week life by default (was a year)."""
    from cesi_like.console.app import create_app
    from cesi_like.console.settings import Settings

    https = {"X-Forwarded-Proto": "https", "Referer": "https://localhost/login"}
    for proxies, headers, secure in ((0, {}, False), (1, https, True), (0, https, False)):
        app = create_app({"CESI_SETTINGS": Settings(
            database=fresh_database(tmp_path, f"r{proxies}{secure}.db"), admin_password=PASSWORD,
            trusted_proxies=proxies), "TESTING": True})
        client = app.test_client()
        token = csrf_from(client.get("/login", headers=headers).get_data(as_text=True))
        cookie = client.get_cookie("session")
        assert cookie is not None
        client.set_cookie("session", cookie.value)  # the proxy's hop to us is plain http
        response = client.post("/login", headers=headers, data={
            "username": "admin", "password": PASSWORD, "remember": "y", "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
        remember = next(c for c in response.headers.getlist("Set-Cookie")
                        if c.startswith("remember_token="))
        assert ("; Secure" in remember) is secure, remember
        session = next(c for c in response.headers.getlist("Set-Cookie")
                       if c.startswith("session="))
        assert ("Secure" in session) is secure
        expires = re.search(r"Expires=([^;]+)", remember)
        assert expires is not None
        left = parsedate_to_datetime(expires.group(1)) - datetime.datetime.now(datetime.UTC)
        assert datetime.timedelta(days=13) < left <= datetime.timedelta(days=14)
        console(app).engine.dispose()
