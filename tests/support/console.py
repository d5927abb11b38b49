"""The console in-process for tests: an app on its own copy of a migrated database, logins
through the real form, tokens.

Migrating a database takes a third of a second; copying the session's migrated template takes
a millisecond, so every app starts from a copy (`fresh_database`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.app import create_app
from cesi_like.console.services.credentials import new_token
from cesi_like.console.settings import Settings
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ApiToken, User

PASSWORD = "correct horse battery"
_template: list[Path] = []  # the session's migrated database (see `make_template`)


def make_template(folder: Path) -> None:
    """Migrate an empty database once (per session, per test worker)."""
    path = folder / "template.db"
    database.upgrade(f"sqlite:///{path}")
    _template[:] = [path]


def fresh_database(folder: Path, name: str = "console.db") -> str:
    """A copy of the migrated template in `folder` (made if missing); its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(_template[0], folder / name)
    return f"sqlite:///{folder / name}"


def settings(folder: Path, **values: Any) -> Settings:
    """The console's settings for a test: its own database, the test admin password, no
    backoff between logins (tested on its own: tests log in and out quickly)."""
    return Settings(**{"database": fresh_database(folder), "admin_password": PASSWORD,
                       "node_timeout": 2.0, "login_backoff": 0.0, **values})


def make_app(folder: Path, **extra: Any) -> Flask:
    return create_app({"CESI_SETTINGS": settings(folder), "TESTING": True,
                       "CESI_AUTO_MIGRATE": False, **extra})


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


def token_for(app: Flask, username: str, read_only: bool = False) -> str:
    """A new API token of `username` (its secret)."""
    with database.standalone(app) as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None
        token, digest = new_token()
        db.add(ApiToken(user_id=user.id, token_hash=digest, read_only=read_only))
        db.commit()
    return token


def bearer(app: Flask, username: str = "admin") -> dict[str, str]:
    """Headers that authenticate as `username` with a fresh token."""
    return {"Authorization": f"Bearer {token_for(app, username)}"}
