"""Login limits (#8.4): atomic across workers, per (user, address) and per address so nobody
can lock a user out, with backoff; unknown users cost a password check; CSRF rotates at login."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from cesi_like.console.context import console
from cesi_like.console.services import credentials
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import User
from tests.support.console import PASSWORD, csrf_from, fresh_database

A = {"REMOTE_ADDR": "10.0.0.1"}
B = {"REMOTE_ADDR": "10.0.0.2"}


def attempt(client: FlaskClient, username: str, password: str, where: dict[str, str]
            ) -> tuple[int, str]:
    token = csrf_from(client.get("/login", environ_base=where).get_data(as_text=True))
    answer = client.post("/login", environ_base=where, data={
        "username": username, "password": password, "csrf_token": token})
    return answer.status_code, answer.headers.get("Retry-After", "")


def test_an_attacker_locks_only_their_own_address(app: Flask) -> None:
    attacker, owner = app.test_client(), app.test_client()
    for _ in range(5):
        assert attempt(attacker, "admin", "guess", A)[0] == 401
    status, retry = attempt(attacker, "admin", PASSWORD, A)
    assert status == 429 and int(retry) > 800  # the rest of the 15-minute window
    assert attempt(owner, "admin", PASSWORD, B)[0] == 302  # the admin, from elsewhere


def test_failures_back_off(tmp_path: Path) -> None:
    from cesi_like.console.app import create_app
    from cesi_like.console.settings import Settings

    app = create_app({"CESI_SETTINGS": Settings(
        database=fresh_database(tmp_path), admin_password=PASSWORD,
        login_backoff=30.0), "TESTING": True})
    try:
        client = app.test_client()
        assert attempt(client, "admin", "typo", A)[0] == 401
        status, retry = attempt(client, "admin", PASSWORD, A)  # at once: too soon
        assert status == 429 and 1 <= int(retry) <= 31
        assert attempt(client, "admin", PASSWORD, B)[0] == 302
    finally:
        console(app).engine.dispose()


def test_unknown_and_disabled_users_cost_a_password_check(
        scrypt: None, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str] = []
    real = credentials.check_password_hash

    def counting(stored: str, password: str) -> bool:
        checks.append(stored)
        return real(stored, password)

    monkeypatch.setattr(credentials, "check_password_hash", counting)
    client = app.test_client()
    with database.standalone(app) as db:
        db.execute(update(User).where(User.username == "op").values(active=False))
        db.commit()
    for username, where in (("nobody", A), ("op", B), ("viewer", {"REMOTE_ADDR": "10.9.9.9"})):
        checks.clear()
        assert attempt(client, username, "wrong password", where)[0] == 401
        assert len(checks) == 1 and checks[0].startswith("scrypt:"), username


def test_the_csrf_token_changes_at_login(client: FlaskClient) -> None:
    before = csrf_from(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"username": "admin", "password": PASSWORD,
                                       "csrf_token": before}).status_code == 302
    # a token planted before the login does not work after it
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    after = csrf_from(client.get("/account/password").get_data(as_text=True))
    assert after != before
    assert client.post("/logout", data={"csrf_token": after}).status_code == 302


def test_parallel_wrong_logins_get_at_most_the_limit_of_checks(tmp_path: Path) -> None:
    """100 wrong logins at once through two gunicorn workers: at most login_limit password
    checks; the real user still logs in from another address meanwhile."""
    from tests.support.served import serve_console

    with serve_console(tmp_path, "the admin pw 1",
                       "[cesi]\ntrusted_proxies = 1\nlogin_backoff = 0\n") as base:
        statuses: list[int] = []
        lock = threading.Lock()

        def guess() -> None:
            session = requests.Session()
            where = {"X-Forwarded-For": "10.6.6.6"}
            page = session.get(f"{base}/login", headers=where, timeout=60).text
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
            assert token is not None
            answer = session.post(f"{base}/login", headers=where, allow_redirects=False,
                                  timeout=60, data={"csrf_token": token.group(1),
                                                    "username": "admin", "password": "guess"})
            with lock:
                statuses.append(answer.status_code)

        threads = [threading.Thread(target=guess) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        owner = requests.Session()
        where = {"X-Forwarded-For": "10.7.7.7"}
        page = owner.get(f"{base}/login", headers=where, timeout=60).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token is not None
        real = owner.post(f"{base}/login", headers=where, allow_redirects=False, timeout=60,
                          data={"csrf_token": token.group(1), "username": "admin",
                                "password": "the admin pw 1"})
    with sqlite3.connect(tmp_path / "e2e.db") as db:
        checked = db.execute("SELECT count(*) FROM activity_log WHERE action = 'login.failed'"
                             ).fetchone()[0]
        refused = db.execute("SELECT count(*) FROM activity_log WHERE action = "
                             "'login.refused'").fetchone()[0]
    assert statuses.count(401) == checked <= 5, statuses
    assert statuses.count(429) == refused == 100 - checked
    assert real.status_code == 302
