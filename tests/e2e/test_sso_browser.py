"""Signing in with a real OpenID Connect provider (node-oidc-provider, run by Node.js), the
whole way in chromium: the console's button, the provider's login and consent pages, the
callback; groups to role and environments, a changed group at the next login, logout ending
the provider's session too; and the attacks and failures that must get nobody in: a tampered
`state`, a code used twice, an ID token for another client, an expired one, a forged
signature."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.support import npm
from tests.support.docs import ini_example
from tests.support.oidc import CLIENT_SECRET, PACKAGE, Provider, oidc_provider
from tests.support.ports import free_port
from tests.support.served import launch, log_in, needs_chromium, serve_console

pytestmark = needs_chromium

ADMIN_PASSWORD = "sso admin pw"


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return npm.install(tmp_path_factory.mktemp("oidc-npm"), PACKAGE)


@pytest.fixture(scope="module")
def fleet(packages: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[str, Provider, Path]]:
    """The console (gunicorn) and the provider, each knowing the other."""
    folder = tmp_path_factory.mktemp("sso")
    console_url = f"http://127.0.0.1:{free_port()}"
    with oidc_provider(packages, folder / "provider", console_url) as provider:
        # docs/sso.md's Keycloak example, pointed at this provider
        keycloak = ini_example("sso.md", "Keycloak")
        assert "client_id = cesi-like" in keycloak
        config = "\n".join([
            "[cesi]", "poll_interval = 5", "[environment:staging]", "members =",
            "[environment:production]", "members =",
            keycloak.replace("https://sso.example.org/realms/example/.well-known/"
                             "openid-configuration", provider.discovery_url),
            f"client_secret = {CLIENT_SECRET}", ""])
        assert provider.discovery_url in config
        with serve_console(folder, ADMIN_PASSWORD, config, workers=1,
                           port=int(console_url.rsplit(":", 1)[1])) as url:
            yield url, provider, folder / "e2e.db"


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = launch(playwright)
        yield found
        found.close()


def account(database: Path, username: str) -> tuple[str, str, bool, list[str]] | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT id, source, role, active FROM users WHERE username = ?",
                         (username,)).fetchone()
        if row is None:
            return None
        scope = [name for (name,) in db.execute(
            "SELECT e.name FROM environments e JOIN user_environments u ON "
            "u.environment_id = e.id WHERE u.user_id = ? ORDER BY e.name", (row[0],))]
    return row[1], row[2], bool(row[3]), scope


def sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's development pages: its login form, then its consent page."""
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button.login-submit")
    page.wait_for_load_state()
    if page.locator("button.login-submit", has_text="Continue").count():
        page.click("button.login-submit")


def start(page: Any, console: str) -> None:
    page.goto(f"{console}/login")
    page.get_by_role("link", name="Log in with Keycloak").click()


def authorization_url(page: Any, console: str) -> str:
    """Where the console sends this browser to sign in (its state and nonce now in the
    browser's session cookie), without going there."""
    answer = page.request.get(f"{console}/login/oidc", max_redirects=0)
    assert answer.status == 302
    return str(answer.headers["location"])


def failure(page: Any) -> str:
    return str(page.locator(".flash.error").inner_text())


def test_sign_in_maps_groups_and_logout_ends_the_providers_session(
        fleet: tuple[str, Provider, Path], browser: Any) -> None:
    from playwright.sync_api import expect

    console, provider, database = fleet
    provider.accounts({"olivia": ["web", "unmapped"]})
    page = browser.new_page()
    start(page, console)
    expect(page).to_have_url(re.compile(rf"^{re.escape(provider.issuer)}/"))
    sign_in_at_provider(page, "olivia")
    expect(page.locator("h1")).to_have_text("Dashboard")
    assert account(database, "olivia") == ("oidc", "operator", True, ["staging"])

    # moved to another group at the provider: the next login brings the new role
    provider.accounts({"olivia": ["ops"]})
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name=re.compile("Yes, sign me out")).click()  # the provider's
    expect(page).to_have_url(re.compile(rf"^{re.escape(console)}/login"))
    start(page, console)
    expect(page.locator("input[name=login]")).to_be_visible()  # its session ended too
    sign_in_at_provider(page, "olivia")
    expect(page.locator("h1")).to_have_text("Dashboard")
    assert account(database, "olivia") == ("oidc", "admin", True, [])

    with __import__("sqlite3").connect(database) as db:
        details = [d for (d,) in db.execute("SELECT detail FROM activity_log WHERE username = "
                                            "'olivia' AND action = 'login' ORDER BY id")]
    assert details == ["via oidc (Keycloak); created, role=operator; environments staging",
                       "via oidc (Keycloak); role operator->admin; environments all"]


def check_due(database: Path, username: str) -> None:
    """As if `sso_recheck_minutes` had gone by since the account was last confirmed."""
    with sqlite3.connect(database) as db:
        db.execute("UPDATE users SET sso_checked_at = '2000-01-01 00:00:00' WHERE username = ?",
                   (username,))


def test_a_due_check_signs_in_again_without_a_page_while_the_provider_knows_the_user(
        fleet: tuple[str, Provider, Path], browser: Any) -> None:
    """The page that was open comes back by itself, with the groups read afresh; once the
    provider's own session is gone, the login page says the session ended."""
    from playwright.sync_api import expect

    console, provider, database = fleet
    provider.accounts({"sam": ["web"]})
    context = browser.new_context()
    page = context.new_page()
    start(page, console)
    sign_in_at_provider(page, "sam")
    expect(page.locator("h1")).to_have_text("Dashboard")
    page.goto(f"{console}/processes")
    provider.accounts({"sam": ["ops"]})  # moved meanwhile
    check_due(database, "sam")
    page.reload()
    expect(page).to_have_url(f"{console}/processes")
    expect(page.locator("h1")).to_have_text("Processes")
    assert account(database, "sam") == ("oidc", "admin", True, [])

    # the provider forgets the browser (its cookies only): asked silently, it says so
    console_cookies = [c for c in context.cookies() if not c["name"].startswith("_")]
    assert console_cookies and len(console_cookies) < len(context.cookies())
    context.clear_cookies()
    context.add_cookies(console_cookies)
    check_due(database, "sam")
    page.reload()
    expect(page).to_have_url(re.compile(rf"^{re.escape(console)}/login/oidc/callback"))
    assert "Your session has ended: sign in with Keycloak again." in failure(page)
    with sqlite3.connect(database) as db:
        details = [d for (d,) in db.execute("SELECT detail FROM activity_log WHERE username = "
                                            "'sam' AND action LIKE 'log%' ORDER BY id")]
    assert details == ["via oidc (Keycloak); created, role=operator; environments staging",
                       "oidc session over: sign in again to be checked",
                       "via oidc (Keycloak); role operator->admin; environments all",
                       "oidc session over: sign in again to be checked"]
    context.close()


def test_no_mapped_group_is_told_so(fleet: tuple[str, Provider, Path], browser: Any) -> None:
    console, provider, database = fleet
    provider.accounts({"nadia": ["others"]})
    page = browser.new_page()
    start(page, console)
    sign_in_at_provider(page, "nadia")
    assert "not in a group that may use this console" in failure(page)
    assert account(database, "nadia") is None


def test_a_tampered_state_gets_nobody_in(fleet: tuple[str, Provider, Path],
                                         browser: Any) -> None:
    console, provider, database = fleet
    provider.accounts({"tamara": ["web"]})
    page = browser.new_page()

    # the state the console sent along is changed on its way through the provider
    authorize = authorization_url(page, console)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    query["state"] = "forged" + query["state"][6:]
    page.goto(f"{authorize.split('?')[0]}?{urlencode(query)}")
    sign_in_at_provider(page, "tamara")
    assert "Sign-in with Keycloak failed" in failure(page)
    assert "state" in failure(page).lower()
    page.goto(f"{console}/")
    assert "/login" in page.url
    assert account(database, "tamara") is None


def test_a_code_used_twice_gets_nobody_in(fleet: tuple[str, Provider, Path],
                                          browser: Any) -> None:
    from playwright.sync_api import expect

    console, provider, _database = fleet
    provider.accounts({"rita": ["web"]})
    first = browser.new_context().new_page()
    callbacks: list[str] = []
    first.on("request", lambda r: callbacks.append(r.url) if "/oidc/callback?" in r.url
             else None)
    start(first, console)
    sign_in_at_provider(first, "rita")
    expect(first.locator("h1")).to_have_text("Dashboard")
    used_code = parse_qs(urlsplit(callbacks[-1]).query)["code"][0]

    # another browser starts its own sign-in, and presents the code the first one used
    thief = browser.new_context().new_page()
    state = parse_qs(urlsplit(authorization_url(thief, console)).query)["state"][0]
    thief.goto(f"{console}/login/oidc/callback?"
               f"{urlencode({'code': used_code, 'state': state})}")
    assert "Sign-in with Keycloak failed" in failure(thief)
    assert "grant" in failure(thief).lower()  # the provider's invalid_grant
    thief.goto(f"{console}/")
    assert "/login" in thief.url


@pytest.mark.parametrize("mode, says", [("audience", "aud"), ("expired", "expired"),
                                        ("signature", "signature")])
def test_an_id_token_for_another_client_expired_or_forged_gets_nobody_in(
        fleet: tuple[str, Provider, Path], browser: Any, mode: str, says: str) -> None:
    console, provider, database = fleet
    user = f"mallory-{mode}"
    provider.accounts({user: ["ops"]})
    provider.tamper(mode)
    try:
        page = browser.new_page()
        start(page, console)
        sign_in_at_provider(page, user)
        message = failure(page)
    finally:
        provider.tamper("")
    assert "Sign-in with Keycloak failed" in message and says in message.lower()
    assert account(database, user) is None


def test_local_admin_still_logs_in_beside_the_provider(fleet: tuple[str, Provider, Path],
                                                       browser: Any) -> None:
    from playwright.sync_api import expect

    console, _provider, _database = fleet
    page = browser.new_page()
    log_in(page, console, ADMIN_PASSWORD)
    expect(page.locator("h1")).to_have_text("Dashboard")
