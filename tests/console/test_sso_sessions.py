"""Single sign-on rules that need no directory or provider: an OpenID session ends after
`sso_recheck_minutes`, local logins can be switched off (but not for local admins), and the
login limits cover OpenID callbacks."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from cesi_like.console.app import create_app
from cesi_like.console.context import console
from cesi_like.console.services.credentials import hash_password
from cesi_like.console.services.sso import NO_PASSWORD
from cesi_like.console.sso.config import OidcSettings
from cesi_like.console.sso.groups import parse_rules
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, User, utcnow
from tests.support.console import PASSWORD, csrf_from, settings
from tests.support.ports import closed_url


def oidc_settings() -> OidcSettings:
    """A provider that is down: nothing here gets as far as asking it anything useful."""
    return OidcSettings(f"{closed_url()}/.well-known/openid-configuration", "cesi-like",
                        "secret", parse_rules("ops -> admin"), name="Test ID", timeout=2)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"CESI_SETTINGS": settings(
        tmp_path, oidc=oidc_settings(), login_methods="oidc", sso_recheck_minutes=15,
        login_limit_per_address=3),
        "TESTING": True, "CESI_AUTO_MIGRATE": False})
    with database.standalone(app) as db:
        db.add_all([User(username="olivia", source="oidc", role="operator",
                         password_hash=NO_PASSWORD, sso_checked_at=utcnow()),
                    User(username="viewer", role="viewer",
                         password_hash=hash_password(PASSWORD))])
        db.commit()
    yield app
    console(app).engine.dispose()


def test_an_oidc_session_ends_after_the_recheck_interval(app: Flask) -> None:
    client = app.test_client()
    with database.standalone(app) as db:
        olivia = db.scalar(select(User).where(User.username == "olivia"))
        assert olivia is not None
        session_id = olivia.get_id()
    with client.session_transaction() as session:  # as the callback leaves it
        session["_user_id"] = session_id
        session["_fresh"] = True
    assert client.get("/").status_code == 200
    with database.standalone(app) as db:
        olivia = db.scalar(select(User).where(User.username == "olivia"))
        assert olivia is not None
        olivia.sso_checked_at = utcnow() - datetime.timedelta(minutes=16)
        db.commit()
    answer = client.get("/processes")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    # the login page asks the provider again, without a page, for the page that was open
    answer = client.get(answer.headers["Location"])
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login/oidc?next=/processes&silent=1"
    assert client.get("/login").status_code == 200  # once: then the page itself
    with database.standalone(app) as db:
        entry = db.scalars(select(ActivityLog).order_by(ActivityLog.id.desc())).first()
        assert entry is not None
        assert (entry.action, entry.username) == ("logout", "olivia")
        assert "sign in again" in entry.detail
        olivia = db.scalar(select(User).where(User.username == "olivia"))
        assert olivia is not None and olivia.active  # not disabled: only asked again


def test_with_local_logins_off_only_local_admins_use_a_password(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "Log in with Test ID" in page
    answer = client.post("/login", data={"username": "viewer", "password": PASSWORD,
                                         "csrf_token": csrf_from(page)})
    assert answer.status_code == 403
    assert "Local accounts cannot log in here" in answer.get_data(as_text=True)
    answer = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                         "csrf_token": csrf_from(page)})
    assert answer.status_code == 302  # the break-glass admin


def test_an_sso_account_has_no_password_to_use_or_change(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    for password in (NO_PASSWORD, "", "anything at all"):
        answer = client.post("/login", data={"username": "olivia", "password": password,
                                             "csrf_token": csrf_from(page)})
        assert answer.status_code in (200, 401)
        assert client.get("/").status_code == 302


def test_login_limits_cover_the_oidc_callback(app: Flask) -> None:
    client = app.test_client()
    statuses = [client.get("/login/oidc/callback?code=stolen&state=guess").status_code
                for _ in range(4)]
    assert statuses[:3] == [401, 401, 401] and statuses[3] == 429
    assert client.get("/login/oidc").status_code == 503  # the provider is down: said so
