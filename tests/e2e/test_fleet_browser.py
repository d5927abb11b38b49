"""The fleet pages in a real browser against a real cesi-agentd, with the poller running inside
gunicorn: a process stopped behind the console's back shows without a reload, Stop and Start
work from the page, the log tail follows new lines, and a hostile node's names stay inert."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.daemons import daemons, program
from tests.support.hostile import hostile_node
from tests.support.served import launch, log_in, needs_chromium, serve_console

pytestmark = needs_chromium

PASSWORD = "fleet admin pw"
PROGRAMS = f"""
[program:web]
command=sleep 1000
startsecs=0

[program:ticker]
command={program("ticker.py")}
startsecs=0
"""


def test_live_fleet_actions_and_log(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with daemons(tmp_path) as start, hostile_node("xss") as hostile:
        agent = start(PROGRAMS, name="agent")
        config = (f"[cesi]\npoll_interval = 0.5\nnode_timeout = 2\n"
                  f"[node:local]\nurl = {agent.url}\n[node:evil]\nurl = {hostile}\n")
        with serve_console(tmp_path, PASSWORD, config) as console, sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
            log_in(page, console, PASSWORD)
            expect(page.locator("h1")).to_have_text("Dashboard")

            page.goto(f"{console}/processes?node=local")
            row = page.locator("tr", has_text="web")
            expect(row).to_contain_text("RUNNING", timeout=10_000)
            page.screenshot(path=shots / "processes.png", full_page=True)
            # behind the console's back, as with supervisorctl: no reload on our side
            agent.rpc().stopProcess("web")
            expect(row).to_contain_text("STOPPED", timeout=5_000)

            row.get_by_role("button", name="Start").click()
            expect(page.locator(".flash.success")).to_contain_text("web:web ok")
            expect(row).to_contain_text("RUNNING")
            row.get_by_role("button", name="Stop").click()  # confirms first
            expect(row).to_contain_text("STOPPED")
            assert dialogs == ["Stop web:web on local?"]
            assert agent.info("web")["statename"] == "STOPPED"

            page.goto(f"{console}/nodes/local/processes/ticker:ticker")
            tail = page.locator("pre.logtail[data-stream=stdout]")
            expect(tail).to_contain_text("tick", timeout=10_000)
            first = max(int(n) for n in re.findall(r"tick (\d+)", tail.inner_text()))
            expect(tail).to_contain_text(f"tick {first + 5}", timeout=10_000)
            resources = page.locator("[data-stats] tbody tr")
            expect(resources).to_have_count(1)  # this process only, CPU from two samples
            expect(resources).to_contain_text(re.compile(r"ticker:ticker.*\d+\.\d %.*MB"),
                                              timeout=10_000)
            expect(resources.locator("svg.spark polyline")).to_have_count(2)
            page.screenshot(path=shots / "process.png", full_page=True)

            page.goto(f"{console}/nodes/evil")
            expect(page.locator("table.processes")).to_contain_text("<script>alert(1)</script>")
            # a node without per-process stats says so instead of failing
            expect(page.locator("[data-stats-status]")).not_to_have_text("sampling…",
                                                                         timeout=10_000)
            page.goto(f"{console}/")
            page.screenshot(path=shots / "dashboard.png", full_page=True)
            assert dialogs == ["Stop web:web on local?"]  # nothing from the hostile node ran
            browser.close()
    for name in ("processes", "process", "dashboard"):
        assert (shots / f"{name}.png").stat().st_size > 5000
