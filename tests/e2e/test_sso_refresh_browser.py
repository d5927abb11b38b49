"""Re-checks that ask the OpenID provider without the user: with `offline_access`, the
refresh token from the sign-in (in chromium, through the provider's login and consent pages)
is kept sealed, and a due check, from a page or an API token, trades it at the provider's
token endpoint (node-oidc-provider, which spends each refresh token once). A moved group
changes the role at once; a forged answer confirms nothing; a user the provider no longer
knows is disabled, logged out, and their tokens revoked, without signing in again."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.docs import ini_example
from tests.support.oidc import CLIENT_SECRET, Provider, oidc_provider
from tests.support.ports import free_port
from tests.support.served import needs_chromium, serve_console

from .test_sso_browser import (  # noqa: F401 (packages and browser are fixtures)
    ADMIN_PASSWORD,
    account,
    browser,
    check_due,
    packages,
    sign_in_at_provider,
    start,
)

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def offline(packages: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
            ) -> Iterator[tuple[str, Provider, Path]]:
    """The console (gunicorn) with docs/sso.md's refresh-token example, and the provider."""
    folder = tmp_path_factory.mktemp("sso-offline")
    console_url = f"http://127.0.0.1:{free_port()}"
    with oidc_provider(packages, folder / "provider", console_url, refresh=True) as provider:
        example = ini_example("sso.md", "Refresh tokens: re-checks without the user")
        assert "offline_access" in example and "prompt = consent" in example
        config = "\n".join([
            "[cesi]", "poll_interval = 5", "[environment:staging]", "members =",
            example.replace("https://sso.example.org/realms/example/.well-known/"
                            "openid-configuration", provider.discovery_url),
            f"client_secret = {CLIENT_SECRET}", ""])
        with serve_console(folder, ADMIN_PASSWORD, config, workers=3,
                           port=int(console_url.rsplit(":", 1)[1])) as url:
            yield url, provider, folder / "e2e.db"


def refresh_token_of(database: Path, username: str) -> str | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT sso_refresh FROM users WHERE username = ?",
                         (username,)).fetchone()
    return None if row is None else row[0]


def test_the_provider_is_asked_without_the_user_and_its_no_ends_sessions_and_tokens(
        offline: tuple[str, Provider, Path], browser: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    console, provider, database = offline
    provider.accounts({"rita": ["web"]})
    page = browser.new_page()
    start(page, console)
    sign_in_at_provider(page, "rita")
    expect(page.locator("h1")).to_have_text("Dashboard")
    first = refresh_token_of(database, "rita")
    assert first is not None and first.startswith("fernet:")  # sealed at rest
    page.goto(f"{console}/account")
    page.fill("input[name=label]", "deploys")
    page.click("text=Make token")
    secret = page.get_by_label("New token").inner_text().strip()

    def api() -> int:
        return requests.get(f"{console}/api/v1/nodes", timeout=10,
                            headers={"Authorization": f"Bearer {secret}"}).status_code

    # moved at the provider; the token's next calls after the check falls due, made at once
    # by three workers, ask it once: the provider takes a spent refresh token used again as
    # theft and revokes the grant
    provider.accounts({"rita": ["ops"]})
    check_due(database, "rita")
    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(lambda _: api(), range(12))) == [200] * 12
    assert account(database, "rita") == ("oidc", "admin", True, [])
    second = refresh_token_of(database, "rita")
    assert second is not None and second != first  # the spent token's successor kept
    # the page's own check asks the provider too, and the page stays (no trip to it)
    check_due(database, "rita")
    page.goto(f"{console}/processes")
    expect(page).to_have_url(f"{console}/processes")
    expect(page.locator("h1")).to_have_text("Processes")
    third = refresh_token_of(database, "rita")
    assert third not in (first, second)

    # an answer whose ID token does not verify (signed with a key not in the provider's
    # JWKS) confirms nothing: the token is refused and the session ends, the account stays;
    # the refresh token that came with it is kept (the provider spent the one before)
    provider.tamper("signature")
    check_due(database, "rita")
    assert api() == 401
    assert account(database, "rita") == ("oidc", "admin", True, [])
    assert refresh_token_of(database, "rita") not in (first, second, third)
    provider.tamper("")
    check_due(database, "rita")
    assert api() == 200  # the kept refresh token works

    # gone from the provider: the next check disables the account, ends the session and
    # revokes the token, with nobody signing in
    provider.accounts({})
    check_due(database, "rita")
    assert api() == 401
    assert account(database, "rita") == ("oidc", "admin", False, [])
    assert refresh_token_of(database, "rita") is None
    page.goto(f"{console}/processes")
    expect(page).to_have_url(re.compile(rf"^{re.escape(console)}/login"))
    with sqlite3.connect(database) as db:
        details = [d for (d,) in db.execute(
            "SELECT detail FROM activity_log WHERE username = 'rita' AND action IN "
            "('login', 'logout', 'user.update') ORDER BY id")]
    assert details[:2] == ["via oidc (Keycloak); created, role=operator; environments staging",
                           "from the provider: role admin, environments all"]
    assert details[2].startswith("the provider could not confirm the session: the "
                                 "provider's answer could not be used"), details
    assert details[3:] == [
        "disabled by oidc: the provider refused its refresh token; 1 tokens revoked"]
