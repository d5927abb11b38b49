"""The console's admin pages in a real browser (Debian's chromium driven by Playwright), served
by gunicorn exactly as `cesi-like serve` runs it. Screenshots land in the test's tmp dir."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.served import launch, needs_chromium, serve_console

pytestmark = needs_chromium

ADMIN_PASSWORD = "browser admin pw"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[str]:
    with serve_console(tmp_path, ADMIN_PASSWORD) as url:
        yield url


def test_admin_and_viewer_journeys(console: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{console}/admin/users")
        expect(page).to_have_url(re.compile(r"/login\?next=/admin/users"))
        page.screenshot(path=shots / "login.png")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button.primary")
        expect(page.locator("h1")).to_have_text("Users")

        page.click("text=Add user")
        page.fill("input[name=username]", "carol")
        page.fill("input[name=password]", "carol password 1")
        page.select_option("select[name=role]", "viewer")
        page.click("button.primary")
        expect(page.locator(".flash.success")).to_contain_text("User carol created.")
        page.get_by_role("link", name="carol", exact=True).click()
        page.select_option("select[name=role]", "operator")
        page.click("button.primary")
        expect(page.locator("tr", has_text="carol")).to_contain_text("operator")
        page.screenshot(path=shots / "users.png", full_page=True)

        page.goto(f"{console}/admin/environments/new")
        page.fill("input[name=name]", "production")
        page.fill("textarea[name=description]", "the real thing")
        page.click("button.primary")
        expect(page.locator(".flash.success")).to_contain_text("Environment production added.")

        page.goto(f"{console}/admin/nodes/new")
        page.fill("input[name=name]", "web-1")
        page.fill("input[name=url]", "http://127.0.0.1:1")
        page.fill("input[name=password]", "node secret 9")
        page.select_option("select[name=environments]", label="production")
        page.click("button.primary")
        expect(page.locator("tr", has_text="web-1")).to_contain_text("production")
        assert "node secret 9" not in page.content()
        page.screenshot(path=shots / "nodes.png", full_page=True)
        page.goto(f"{console}/")
        expect(page.locator("article", has_text="web-1")).to_contain_text("unreachable")
        page.screenshot(path=shots / "dashboard.png", full_page=True)
        page.goto(f"{console}/activity/")
        expect(page.locator("table")).to_contain_text("node.create")
        page.screenshot(path=shots / "activity.png", full_page=True)

        page.goto(f"{console}/admin/users/new")
        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", "vera password 1")
        page.select_option("select[name=role]", "viewer")
        page.click("button.primary")
        page.click("text=Log out")

        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", "vera password 1")
        page.click("button.primary")
        expect(page.locator("h1")).to_have_text("Dashboard")
        expect(page.locator("nav")).not_to_contain_text("Users")
        expect(page.locator("article", has_text="web-1")).to_be_visible()
        page.screenshot(path=shots / "viewer.png", full_page=True)
        page.goto(f"{console}/admin/users")
        expect(page.locator("h1")).to_contain_text("403")
        browser.close()
    for name in ("login", "users", "nodes", "dashboard", "activity", "viewer"):
        assert (shots / f"{name}.png").stat().st_size > 5000


def test_hostile_text_is_inert_and_tokens_on_the_account_page(console: str) -> None:
    """#8.5 in a real browser: markup and quote tricks in free text stay text, the delete
    confirmation shows them as data and nothing else runs; #8.3: a token made on the account
    page is shown once, and revoked there."""
    from playwright.sync_api import expect, sync_playwright

    hostile = "x'+alert(document.domain)+'<img src=x onerror=alert(2)><script>alert(3)</script>"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        response = page.goto(f"{console}/login")
        assert response is not None
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"].split("script-src")[1]
        assert headers["x-frame-options"] == "DENY"
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button.primary")
        page.goto(f"{console}/admin/environments/new")
        page.fill("input[name=name]", "evil")
        page.fill("textarea[name=description]", hostile)
        page.click("button.primary")
        page.goto(f"{console}/admin/nodes/new")
        page.fill("input[name=name]", "n1")
        page.fill("input[name=url]", "http://127.0.0.1:1")
        page.fill("textarea[name=notes]", hostile)
        page.click("button.primary")
        page.goto(f"{console}/admin/environments")
        expect(page.locator("table")).to_contain_text(hostile)  # shown as text
        page.get_by_role("button", name="Delete").first.click()
        expect(page.locator(".flash.success")).to_contain_text("Environment evil deleted.")
        assert dialogs == ["Delete environment evil?"]  # the confirmation, nothing else

        page.goto(f"{console}/account")
        page.fill("input[name=label]", "from the browser")
        page.check("input[name=read_only]")
        page.click("text=Make token")
        secret = page.get_by_label("New token").inner_text().strip()
        assert secret.startswith("cesi_")
        page.goto(f"{console}/account")
        assert secret not in page.content()
        row = page.locator("tr", has_text="from the browser")
        expect(row).to_contain_text("read-only")
        row.get_by_role("button", name="Revoke").click()
        expect(page.locator(".flash.success")).to_contain_text("revoked")
        expect(page.locator("table")).not_to_contain_text("from the browser")
        assert dialogs[-1].startswith("Revoke token")
        browser.close()
