"""Console fixtures: an app on its own database with two environments, two nodes (down) and
users of every role, and a test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cesi_like.console.context import console
from cesi_like.console.services.credentials import hash_password
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import Environment, Node, User
from tests.support.console import PASSWORD, login, make_app


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


@pytest.fixture
def login_as(client: FlaskClient) -> Callable[[str], str]:
    return lambda username: login(client, username)
