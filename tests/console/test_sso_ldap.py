"""Logging in with a real OpenLDAP directory (Debian's slapd, see tests/support/slapd.py):
search then bind and direct bind, StartTLS and ldaps:// with the certificate verified, groups
by a group search and by memberOf, groups mapped to a role and environments, the directory's
changes taking effect at the next login or session check, and a directory that is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.app import create_app
from cesi_like.console.context import console
from cesi_like.console.settings import Settings
from cesi_like.console.sso.config import read_ldap
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, ApiToken, Environment, User
from tests.support.console import PASSWORD, csrf_from, login, settings, token_for
from tests.support.docs import ini_section
from tests.support.ports import closed_url
from tests.support.slapd import (
    BASE,
    PASSWORDS,
    SERVICE_PASSWORD,
    Directory,
    needs_slapd,
    slapd,
)

pytestmark = needs_slapd

@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    with slapd(tmp_path_factory.mktemp("ldap")) as running:
        yield running


def ldap_values(directory: Directory, **extra: str) -> dict[str, str]:
    """docs/sso.md's OpenLDAP example (search then bind over StartTLS, groups by search,
    disabled accounts filtered out), with this directory's address and CA."""
    values = ini_section("sso.md", "OpenLDAP", "ldap")
    assert values["url"] == "ldap://ldap.example.org"
    return {**values, "url": directory.url, "ca_file": str(directory.ca_file),
            "bind_password": SERVICE_PASSWORD, **extra}


def make_app(folder: Path, directory: Directory, **extra: Any) -> Flask:
    def fail(key: str, why: str) -> Exception:
        return AssertionError(f"{key}: {why}")

    ldap = read_ldap(ldap_values(directory, **extra.pop("ldap", {})), fail)
    base: Settings = settings(folder, ldap=ldap, **extra)
    app = create_app({"CESI_SETTINGS": base, "TESTING": True, "CESI_AUTO_MIGRATE": False})
    with database.standalone(app) as db:
        db.add_all([Environment(name="staging", description=""),
                    Environment(name="production", description="")])
        db.commit()
    return app


@pytest.fixture
def app(tmp_path: Path, directory: Directory) -> Iterator[Flask]:
    app = make_app(tmp_path, directory)
    yield app
    console(app).engine.dispose()


def post_login(client: FlaskClient, username: str, password: str) -> Any:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


def account(app: Flask, username: str) -> User | None:
    with database.standalone(app) as db:
        user = db.scalar(select(User).where(User.username == username))
        if user is not None:
            _ = user.scope  # loaded before the session closes
        return user


def activity(app: Flask, action: str) -> list[tuple[str, str, str]]:
    with database.standalone(app) as db:
        return [(e.username, e.result, e.detail) for e in db.scalars(
            select(ActivityLog).where(ActivityLog.action == action).order_by(ActivityLog.id))]


def test_search_then_bind_over_starttls_maps_groups_to_role_and_environments(
        app: Flask) -> None:
    client = app.test_client()
    answer = post_login(client, "bob", PASSWORDS["bob"])
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert client.get("/").status_code == 200
    bob = account(app, "bob")
    assert bob is not None
    assert (bob.source, bob.role, [e.name for e in bob.scope]) == ("ldap", "operator",
                                                                   ["staging"])
    assert bob.password_hash == "!"
    assert activity(app, "login") == [
        ("bob", "ok", "via ldap; created, role=operator; environments staging")]

    # several groups: the highest role and the union of environments
    assert post_login(app.test_client(), "erin", PASSWORDS["erin"]).status_code == 302
    erin = account(app, "erin")
    assert erin is not None
    assert (erin.role, [e.name for e in erin.scope]) == ("operator", ["production", "staging"])
    assert post_login(app.test_client(), "alice", PASSWORDS["alice"]).status_code == 302
    alice = account(app, "alice")
    assert alice is not None and (alice.role, alice.scope) == ("admin", [])


@pytest.mark.parametrize("username, password", [
    ("bob", "not bob's"), ("nobody", "whatever pw"), ("carol", PASSWORDS["carol"]),
    ("bob", ""), ("*", "x"), ("bob)(uid=*", PASSWORDS["bob"]), ("b*", PASSWORDS["bob"])])
def test_wrong_password_unknown_disabled_or_injected_names_get_nobody_in(
        app: Flask, username: str, password: str) -> None:
    client = app.test_client()
    answer = post_login(client, username, password)
    assert answer.status_code in (200, 401)  # an empty password does not pass the form
    if answer.status_code == 401:
        assert "Unknown user or wrong password." in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert account(app, username) is None


def test_a_user_in_no_mapped_group_is_told_so(app: Flask) -> None:
    answer = post_login(app.test_client(), "dave", PASSWORDS["dave"])
    assert answer.status_code == 403
    assert "not in a group that may use this console" in answer.get_data(as_text=True)
    assert account(app, "dave") is None
    assert activity(app, "login.failed")[-1][:2] == ("dave", "denied")


def test_moving_to_another_group_changes_the_role_at_the_next_login(
        app: Flask, directory: Directory) -> None:
    assert post_login(app.test_client(), "frank", PASSWORDS["frank"]).status_code == 302
    directory.move("frank", "web", "readers")
    try:
        assert post_login(app.test_client(), "frank", PASSWORDS["frank"]).status_code == 302
        frank = account(app, "frank")
        assert frank is not None
        assert (frank.role, [e.name for e in frank.scope]) == ("viewer", ["production"])
        assert "role operator->viewer" in activity(app, "login")[-1][2]
    finally:
        directory.move("frank", "readers", "web")


def test_disabled_in_the_directory_ends_the_session_and_the_tokens(
        tmp_path: Path, directory: Directory) -> None:
    app = make_app(tmp_path, directory, sso_recheck_minutes=1e-6)  # confirm at every request
    client = app.test_client()
    assert post_login(client, "grace", PASSWORDS["grace"]).status_code == 302
    assert client.get("/").status_code == 200
    secret = token_for(app, "grace")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert app.test_client().get("/api/v1/nodes", headers=bearer).status_code == 200
    directory.disable("grace")
    answer = client.get("/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    grace = account(app, "grace")
    assert grace is not None and not grace.active and grace.disabled_by == "ldap"
    with database.standalone(app) as db:
        assert db.scalar(select(ApiToken).where(ApiToken.user_id == grace.id)) is None
    assert app.test_client().get("/api/v1/nodes", headers=bearer).status_code == 401
    assert post_login(app.test_client(), "grace", PASSWORDS["grace"]).status_code == 401
    assert "disabled by ldap" in activity(app, "user.update")[-1][2]


def test_moved_while_logged_in_takes_effect_at_the_session_check(
        tmp_path: Path, directory: Directory) -> None:
    app = make_app(tmp_path, directory, sso_recheck_minutes=1e-6)
    client = app.test_client()
    assert post_login(client, "erin", PASSWORDS["erin"]).status_code == 302
    directory.move("erin", "web", "others")
    try:
        assert client.get("/").status_code == 200  # still in readers: a viewer of production
        erin = account(app, "erin")
        assert erin is not None
        assert (erin.role, [e.name for e in erin.scope]) == ("viewer", ["production"])
    finally:
        directory.move("erin", "others", "web")


def test_an_admins_disable_sticks_whatever_the_directory_says(app: Flask) -> None:
    assert post_login(app.test_client(), "bob", PASSWORDS["bob"]).status_code == 302
    admin = app.test_client()
    csrf = login(admin)
    bob = account(app, "bob")
    assert bob is not None
    answer = admin.post(f"/admin/users/{bob.id}", data={
        "csrf_token": csrf, "username": "bob", "role": "operator", "password": ""})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    bob = account(app, "bob")
    assert bob is not None and not bob.active and bob.disabled_by == "admin"
    answer = post_login(app.test_client(), "bob", PASSWORDS["bob"])
    assert answer.status_code == 403
    assert "disabled in this console" in answer.get_data(as_text=True)


def test_a_local_account_keeps_its_name_and_password(app: Flask) -> None:
    """A directory user can never sign in as the local account of the same name."""
    with database.standalone(app) as db:
        from cesi_like.console.services.credentials import hash_password

        db.add(User(username="erin", role="viewer", password_hash=hash_password(PASSWORD)))
        db.commit()
    assert post_login(app.test_client(), "erin", PASSWORDS["erin"]).status_code == 401
    assert post_login(app.test_client(), "erin", PASSWORD).status_code == 302
    erin = account(app, "erin")
    assert erin is not None and erin.source == "local"


def test_login_limits_apply_to_directory_logins(tmp_path: Path, directory: Directory) -> None:
    app = make_app(tmp_path, directory, login_limit=3)
    client = app.test_client()
    for _ in range(3):
        assert post_login(client, "bob", "wrong").status_code == 401
    answer = post_login(client, "bob", PASSWORDS["bob"])
    assert answer.status_code == 429 and "Retry-After" in answer.headers


@pytest.mark.parametrize("variant", ["ldaps", "direct bind with memberOf"])
def test_ldaps_and_direct_bind(tmp_path: Path, directory: Directory, variant: str) -> None:
    if variant == "ldaps":
        ldap = {"url": directory.ldaps_url, "start_tls": "false"}
    else:  # no service account: the user's own bind reads their entry and its memberOf
        ldap = {"bind_dn": "", "bind_password": "", "user_base": "", "group_base": "",
                "user_dn_template": f"uid={{username}},ou=people,{BASE}"}
    app = make_app(tmp_path, directory, ldap=ldap)
    assert post_login(app.test_client(), "erin", PASSWORDS["erin"]).status_code == 302
    erin = account(app, "erin")
    assert erin is not None and erin.role == "operator"
    assert [e.name for e in erin.scope] == ["production", "staging"]
    assert post_login(app.test_client(), "erin", "wrong").status_code == 401


@pytest.mark.parametrize("problem", ["down", "untrusted certificate"])
def test_a_directory_that_cannot_be_asked_is_a_clear_message_and_local_admin_still_logs_in(
        tmp_path: Path, directory: Directory, problem: str) -> None:
    if problem == "down":
        ldap = {"url": closed_url().replace("http", "ldap"), "start_tls": "false"}
    else:  # the system's CAs do not know the test CA: the certificate is not verified
        ldap = {"ca_file": ""}
    app = make_app(tmp_path, directory, ldap=ldap)
    answer = post_login(app.test_client(), "bob", PASSWORDS["bob"])
    assert answer.status_code == 503
    page = answer.get_data(as_text=True)
    assert "The directory could not be reached" in page
    assert "Local accounts can still log in." in page
    assert account(app, "bob") is None
    assert post_login(app.test_client(), "admin", PASSWORD).status_code == 302
    assert activity(app, "login.failed")[-1][:2] == ("bob", "failed")
