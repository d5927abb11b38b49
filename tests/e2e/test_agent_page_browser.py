"""#9.9 in a real browser: the agent's own page at http://host:port/, logged in with the
[inet_http_server] user as supervisord's is: Stop, Start, the process's tail page, Restart All,
with supervisord's messages; no JavaScript needed (it is turned off here)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.agent.test_reliability import free_port
from tests.support.daemons import daemons
from tests.support.served import launch, needs_chromium

pytestmark = needs_chromium

PROGRAMS = """
[program:web]
command=/bin/sh -c "echo serving; exec sleep 1000"
startsecs=0

[program:worker]
command=sleep 1000
startsecs=0
"""


def test_drive_the_agents_page(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    with daemons(tmp_path) as start, sync_playwright() as pw:
        agent = start(PROGRAMS + f"[inet_http_server]\nport=127.0.0.1:{port}\n"
                      "username=admin\npassword=agent pw\n")
        browser = launch(pw)
        context = browser.new_context(java_script_enabled=False, http_credentials={
            "username": "admin", "password": "agent pw"})
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        row = page.locator("tr", has_text="web")
        expect(row.locator(".statusrunning")).to_have_text("running")
        row.get_by_role("button", name="Stop").click()
        expect(page.locator(".status_msg")).to_have_text("Process web stopped")
        expect(page).to_have_url(re.compile(r"/index\.html\?message="))
        expect(page.locator("tr", has_text="web").locator(".statusnominal")).to_have_text(
            "stopped")
        assert agent.info("web")["statename"] == "STOPPED"
        page.locator("tr", has_text="web").get_by_role("button", name="Start").click()
        expect(page.locator(".status_msg")).to_have_text("Process web started")
        page.get_by_role("link", name="web", exact=True).click()
        expect(page.locator("pre")).to_contain_text("serving")
        page.get_by_role("link", name="Status").click()
        pids = {name: agent.info(name)["pid"] for name in ("web", "worker")}
        page.get_by_role("button", name="Restart All").click()
        expect(page.locator(".status_msg")).to_contain_text("All restarted at")
        assert all(agent.info(name)["pid"] != pid for name, pid in pids.items())
        page.screenshot(path=tmp_path / "agent-page.png", full_page=True)
        browser.close()
