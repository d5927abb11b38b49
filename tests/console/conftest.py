"""Console fixtures: an app on a fresh SQLite file, a test client, users of every role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cesi_like.console.app import create_app
from cesi_like.console.context import console
from cesi_like.console.services.credentials import hash_password, new_token
from cesi_like.console.settings import Settings
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import Environment, Node, User

PASSWORD = "correct horse battery"


def make_app(tmp_path: Path, **extra: Any) -> Flask:
    # no backoff between logins here (tested on its own): tests log in and out quickly
    settings = Settings(database=f"sqlite:///{tmp_path / 'console.db'}",
                        admin_password=PASSWORD, node_timeout=2.0, login_backoff=0.0)
    return create_app({"CESI_SETTINGS": settings, "TESTING": True, **extra})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    with database.standalone(app) as db:
        prod = Environment(name="prod", description="")
        dev = Environment(name="dev", description="")
        db.add_all([prod, dev])
        db.add(Node(name="web1", url="http://127.0.0.1:1", environments=[prod]))
        db.add(Node(name="dev1", url="http://127.0.0.1:1", environments=[dev]))
        for name, role, scope in (("op", "operator", []), ("viewer", "viewer", []),
                                  ("devop", "operator", [dev])):
            db.add(User(username=name, role=role, password_hash=hash_password(PASSWORD),
                        scope=scope))
        db.commit()
    yield app
    console(app).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


TOKEN_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                      r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = TOKEN_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def login(client: FlaskClient, username: str = "admin", password: str = PASSWORD) -> str:
    """Log in through the real form; returns a CSRF token valid for this session."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_from(client.get("/account/password").get_data(as_text=True))


@pytest.fixture
def login_as(client: FlaskClient) -> Callable[[str], str]:
    return lambda username: login(client, username)


def token_for(app: Flask, username: str) -> str:
    from sqlalchemy import select

    from cesi_like.console.storage.models import ApiToken

    with database.standalone(app) as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None
        token, digest = new_token()
        db.add(ApiToken(user_id=user.id, token_hash=digest))
        db.commit()
    return token
