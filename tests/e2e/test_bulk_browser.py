"""#10.1 in a real browser: tick processes on the fleet-wide list (the ticks survive a live
refresh of the table), restart them on every node at once from the bulk form, and watch the
job's per-node results arrive, against two real cesi-agentd."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.daemons import daemons
from tests.support.served import launch, log_in, needs_chromium, serve_console

pytestmark = needs_chromium

PASSWORD = "bulk admin pw"
PROGRAMS = """
[program:web]
command=sleep 1000
process_name=%(program_name)s_%(process_num)s
numprocs=2
startsecs=0

[program:side]
command=sleep 1000
startsecs=0
"""


def test_tick_rows_and_restart_them_everywhere(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with daemons(tmp_path) as start:
        agents = [start(PROGRAMS, name=f"agent{index}") for index in (1, 2)]
        before = [{i["name"]: i["pid"] for i in agent.rpc().getAllProcessInfo()}
                  for agent in agents]
        config = ("[cesi]\npoll_interval = 0.5\n"
                  + "".join(f"[node:web{index}]\nurl = {agent.url}\n"
                            for index, agent in enumerate(agents, 1)))
        with serve_console(tmp_path, PASSWORD, config) as console, sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            log_in(page, console, PASSWORD)
            page.goto(f"{console}/processes")
            table = page.locator("[data-live] table")
            expect(table.locator("tbody tr")).to_have_count(6, timeout=10_000)
            page.check("input[value='web1/web:web_0']")
            page.check("input[value='web2/web:web_1']")
            # a change behind the console's back refreshes the table: the ticks stay
            agents[0].rpc().stopProcess("side:side")
            expect(table.locator("tr", has_text="side").first).to_contain_text(
                "STOPPED", timeout=10_000)
            expect(page.locator("input[value='web1/web:web_0']")).to_be_checked()
            expect(page.locator("input[value='web2/web:web_1']")).to_be_checked()
            expect(page.locator("input[value='web1/web:web_1']")).not_to_be_checked()
            page.select_option("select[name=action]", "restart")
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("button[value=selected]")
            expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
            expect(page.locator(".flash.success")).to_contain_text("Bulk action queued")
            expect(page.locator("[data-job-state]")).to_have_text("succeeded", timeout=30_000)
            steps = page.locator("[data-job-steps]")
            expect(steps.locator("tr", has_text="web1")).to_contain_text("web:web_0: ok")
            expect(steps.locator("tr", has_text="web2")).to_contain_text("web:web_1: ok")
            page.screenshot(path=tmp_path / "bulk.png", full_page=True)
            browser.close()
        after = [{i["name"]: i["pid"] for i in agent.rpc().getAllProcessInfo()}
                 for agent in agents]
    assert after[0]["web_0"] != before[0]["web_0"] and after[1]["web_1"] != before[1]["web_1"]
    assert after[0]["web_1"] == before[0]["web_1"] and after[1]["web_0"] == before[1]["web_0"]
