"""#10.2 in a real browser: start a rolling restart from the group page's form and watch its
steps turn from pending to done without reloading, against two real cesi-agentd, with the
job run by the console's own runners inside gunicorn."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.daemons import daemons
from tests.support.served import launch, log_in, needs_chromium, serve_console

pytestmark = needs_chromium

PASSWORD = "rollout admin pw"
PROGRAMS = """
[program:web]
command=sleep 1000
process_name=%(program_name)s_%(process_num)s
numprocs=2
startsecs=1
"""


def test_start_a_rolling_restart_and_watch_it_finish(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with daemons(tmp_path) as start:
        agents = [start(PROGRAMS, name=f"agent{index}") for index in (1, 2)]
        before = [{i["name"]: i["pid"] for i in agent.rpc().getAllProcessInfo()}
                  for agent in agents]
        config = ("[cesi]\npoll_interval = 0.5\n"
                  + "".join(f"[node:web{index}]\nurl = {agent.url}\n"
                            for index, agent in enumerate(agents, 1))
                  + "[environment:prod]\nmembers = web1, web2\n")
        with serve_console(tmp_path, PASSWORD, config) as console, sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            log_in(page, console, PASSWORD)
            page.goto(f"{console}/processes?group=web")
            expect(page.locator("table")).to_contain_text("RUNNING", timeout=10_000)

            page.goto(f"{console}/rollouts/new?group=web")
            expect(page.locator("input[name=group]")).to_have_value("web")
            page.fill("input[name=group]", "nosuch")
            page.click("button.primary")  # a bad form comes back with the message
            expect(page.locator(".error")).to_contain_text("runs a group 'nosuch'")
            page.fill("input[name=group]", "web")
            page.fill("input[name=pause]", "1")
            page.click("button.primary")
            expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
            expect(page.locator(".flash.success")).to_contain_text("Rolling restart queued")
            page.screenshot(path=shots / "queued.png", full_page=True)
            steps = page.locator("[data-job-steps]")
            # the live fragment shows the progress without a reload, to the end
            expect(page.locator("[data-job-state]")).to_have_text("succeeded", timeout=60_000)
            expect(steps.locator("tr", has_text="web1")).to_contain_text("done")
            expect(steps.locator("tr", has_text="web2")).to_contain_text("done")
            expect(page.locator("[data-job-message]")).to_have_text("2 nodes restarted")
            page.screenshot(path=shots / "succeeded.png", full_page=True)
            page.click("text=Jobs")
            expect(page.locator("table")).to_contain_text("restart web on 2 nodes of prod")
            browser.close()
        after = [{i["name"]: i["pid"] for i in agent.rpc().getAllProcessInfo()}
                 for agent in agents]
        for old, new in zip(before, after, strict=True):
            assert all(new[name] != old[name] for name in old)
