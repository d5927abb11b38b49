"""The console as people use it every day (#21), in chromium against a real cesi-agentd: the
search box and `/`, the keyboard sheet and shortcuts, the typed confirmation of a big stop,
a phone-sized screen, the dark theme and its toggle, the log viewer's find and wrap with
stdout and stderr side by side; and axe-core on every page, light and dark, with no serious
or critical violation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemons import daemons, program
from tests.support.served import launch, log_in, needs_chromium, serve_console

pytestmark = needs_chromium

PASSWORD = "ui admin pw"
PROGRAMS = f"""
[program:worker]
command=sleep 1000
process_name=%(program_name)s_%(process_num)d
numprocs=11
startsecs=0

[program:ticker]
command={program("ticker.py")}
startsecs=0
"""


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    folder = tmp_path_factory.mktemp("ui")
    with daemons(folder) as start:
        agent = start(PROGRAMS, name="agent")
        config = (f"[cesi]\npoll_interval = 0.5\nnode_timeout = 2\nstats_interval = 0.5\n"
                  f"[node:local]\nurl = {agent.url}\n"
                  f"[environment:production]\nmembers = local\n")
        with serve_console(folder, PASSWORD, config) as url:
            yield url, agent


@pytest.fixture
def page(console: tuple[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    url, _agent = console
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        found = context.new_page()
        log_in(found, url, PASSWORD)
        expect(found.locator("h1")).to_have_text("Dashboard")
        yield found
        browser.close()


def test_search_from_anywhere_with_slash(console: tuple[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    url, _agent = console
    page.goto(f"{url}/nodes/local")
    # search reads the poller's snapshot: wait until it holds the node's processes
    expect(page.locator("table.processes tbody tr")).to_have_count(12, timeout=15_000)
    page.wait_for_load_state("load")
    page.keyboard.press("/")
    expect(page.locator("input[data-search]")).to_be_focused()
    page.keyboard.type("work")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=work"))
    expect(page.locator("#found-groups + ul")).to_contain_text("worker")
    expect(page.locator("#found-processes ~ table tbody tr")).to_have_count(11)
    page.locator("input[data-search]").fill("loc")
    page.keyboard.press("Enter")
    expect(page.locator("#found-nodes + table")).to_contain_text("local")
    page.locator("input[data-search]").fill("nothing-like-it")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_contain_text("Nothing in your fleet")


def test_keyboard_shortcuts_and_their_sheet(page: Any) -> None:
    from playwright.sync_api import expect

    page.wait_for_load_state("load")
    page.keyboard.press("?")
    sheet = page.locator("dialog[data-shortcuts]")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text("next / previous row")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    page.keyboard.press("g")
    page.keyboard.press("p")
    expect(page).to_have_url(re.compile(r"/processes$"))
    expect(page.locator("table.processes tbody tr")).to_have_count(12, timeout=10_000)
    page.wait_for_load_state("load")
    rows = page.locator("table.processes tbody tr")
    first, second = (rows.nth(n).locator("td[data-label=Process] a").inner_text()
                     for n in (0, 1))
    page.keyboard.press("j")
    page.keyboard.press("j")
    current = page.locator("table.processes tr.current")
    expect(current).to_have_count(1)
    expect(current.locator("td[data-label=Process]")).to_have_text(second)
    page.wait_for_timeout(1200)  # a live refresh of the table keeps the current row
    expect(current.locator("td[data-label=Process]")).to_have_text(second)
    page.keyboard.press("k")
    expect(current.locator("td[data-label=Process]")).to_have_text(first)
    page.keyboard.press("o")
    expect(page).to_have_url(re.compile(r"/nodes/local/processes/"))
    expect(page.locator("h1")).to_contain_text(first.split(":")[-1])
    page.wait_for_load_state("load")
    page.keyboard.press("g")
    page.keyboard.press("d")
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_a_big_stop_asks_for_the_node_name_and_says_what_it_touches(
        console: tuple[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    url, agent = console
    page.on("dialog", lambda dialog: dialog.accept())  # the browser's own confirm() first
    page.goto(f"{url}/nodes/local")
    expect(page.locator("table.processes")).to_contain_text("RUNNING", timeout=10_000)
    page.get_by_role("button", name="Stop all").click()
    expect(page.locator("h1")).to_have_text("Confirm: stop 12 processes")
    expect(page.locator("main table")).to_contain_text("local")
    expect(page.locator("main table")).to_contain_text("12")
    page.fill("#confirm", "loca")
    page.get_by_role("button", name="Stop 12 processes").click()
    expect(page.locator(".flash.error")).to_contain_text("loca is not it.")
    assert agent.info("worker:worker_0")["statename"] == "RUNNING"  # nothing happened
    page.fill("#confirm", "local")
    page.get_by_role("button", name="Stop 12 processes").click()
    expect(page.locator(".flash.success")).to_contain_text("stop on local")
    assert agent.info("worker:worker_0")["statename"] == "STOPPED"
    page.get_by_role("button", name="Start all", exact=True).click()
    expect(page.locator(".flash.success")).to_contain_text("start on local")


ROW_EDGES = """() => {
  const row = document.querySelector("table.processes tbody tr");
  const edges = (element) => {
    if (!element) return null;
    const box = element.getBoundingClientRect();
    return [box.left, box.right];
  };
  const stop = [...row.querySelectorAll("button")].find((b) => b.textContent.trim() === "Stop");
  return {state: row.querySelector("td[data-label=State]").textContent.trim(),
          State: edges(row.querySelector("td[data-label=State]")),
          Pid: edges(row.querySelector("td[data-label=Pid]")), Stop: edges(stop)};
}"""


def test_a_phone_sees_state_and_actions_of_every_process(console: tuple[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _agent = console
    with sync_playwright() as playwright:
        browser = launch(playwright)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True).new_page()
        log_in(phone, url, PASSWORD)
        phone.goto(f"{url}/processes?group=ticker")
        expect(phone.locator("table.processes tbody tr").first).to_contain_text(
            "RUNNING", timeout=10_000)
        # measured in one script: the live refresh replaces the rows every interval, so
        # elements found in one call may be gone by the next
        edges = phone.evaluate(ROW_EDGES)
        assert edges["state"] == "RUNNING", edges
        for part in ("State", "Pid", "Stop"):  # each fully on the screen, none cut off
            assert edges[part] is not None and edges[part][0] >= 0, edges
            assert edges[part][1] <= 390, edges
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()


def test_dark_theme_from_the_system_and_the_toggle_remembered(console: tuple[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _agent = console
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_context(color_scheme="dark").new_page()
        log_in(page, url, PASSWORD)
        html = page.locator("html")
        expect(html).to_have_attribute("data-theme", "dark")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(18, 21, 27)"
        page.get_by_role("button", name="Switch between the light and dark theme").click()
        expect(html).to_have_attribute("data-theme", "light")
        page.reload()
        expect(html).to_have_attribute("data-theme", "light")  # the choice beats the system's
        page.keyboard.press("t")
        expect(html).to_have_attribute("data-theme", "dark")
        browser.close()


def test_the_log_viewer_finds_wraps_and_shows_both_streams(console: tuple[str, Any],
                                                           page: Any) -> None:
    from playwright.sync_api import expect

    url, _agent = console
    page.goto(f"{url}/nodes/local/processes/ticker:ticker")
    stdout = page.locator("pre.logtail[data-stream=stdout]")
    expect(stdout).to_contain_text("tick", timeout=10_000)
    expect(page.locator("pre.logtail[data-stream=stderr]")).to_be_visible()
    page.fill("input[data-log-find]", "tick")
    expect(stdout.locator("mark").first).to_have_text("tick")
    expect(page.locator("[data-log-status]")).to_contain_text(re.compile(r"\d+ match"))
    page.get_by_role("button", name="Wrap").click()
    expect(stdout).to_have_class(re.compile(r"\bnowrap\b"))
    page.fill("input[data-log-find]", "")
    expect(stdout.locator("mark")).to_have_count(0)


PAGES = ["/", "/processes", "/nodes/local", "/nodes/local/processes/ticker:ticker",
         "/groups/worker", "/search?q=work", "/jobs", "/jobs/new", "/account",
         "/admin/users", "/admin/nodes", "/admin/environments", "/admin/alerts", "/activity",
         "/alerts",
         "/nodes/local/log"]


def test_the_process_page_draws_an_hour_of_memory_and_the_state_timeline(
        console: tuple[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    url, _agent = console
    page.goto(f"{url}/nodes/local/processes/ticker:ticker")
    page.wait_for_timeout(1500)  # the sampler has stored a few samples
    page.reload()
    status = page.locator("[data-charts-status]")
    expect(status).to_contain_text(re.compile(r"^1h: \d+ memory and \d+ CPU samples"),
                                   timeout=15_000)
    memory = int(re.search(r"(\d+) memory", status.inner_text()).group(1))  # type: ignore[union-attr]
    assert memory >= 2
    expect(page.locator("[data-chart=memory] canvas").first).to_be_visible()
    expect(page.locator("[data-chart=cpu] canvas").first).to_be_visible()
    band = page.locator("[data-timeline] svg rect.t-RUNNING")
    expect(band.first).to_be_attached()
    page.get_by_role("button", name="24h").click()
    expect(status).to_contain_text("24h:")
    expect(page.get_by_role("button", name="24h")).to_have_attribute("aria-pressed", "true")
    page.goto(f"{url}/nodes/local")  # the node's: all its processes, and its reachability
    expect(page.locator("[data-charts-status]")).to_contain_text(
        re.compile(r"^1h: \d+ memory and \d+ CPU samples \(all its processes\)"),
        timeout=15_000)
    expect(page.locator("[data-chart=memory] canvas").first).to_be_visible()


def serious(axe: Any, page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(800)  # live parts, stats and log tails filled in (they never idle)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in axe.run(page).response["violations"]
            if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_violation_on_any_page(
        console: tuple[str, Any], scheme: str) -> None:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    url, _agent = console
    axe = Axe()
    found: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_context(color_scheme=scheme).new_page()
        page.goto(f"{url}/login")
        found["/login"] = serious(axe, page)
        log_in(page, url, PASSWORD)
        for path in PAGES:
            page.goto(url + path)
            found[path] = serious(axe, page)
        page.goto(f"{url}/nodes/local")  # the typed confirmation page
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Restart all").click()
        found["confirm"] = serious(axe, page)
        browser.close()
    problems = {path: bad for path, bad in found.items() if bad}
    assert not problems, "\n".join(f"{path}: {bad}" for path, bad in problems.items())


def tab_to(page: Any, selector: str, presses: int = 60) -> None:
    """Press Tab until `selector` has the focus, as a keyboard-only user would."""
    seen = []
    for _ in range(presses):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        seen.append(page.evaluate("document.activeElement.outerHTML.slice(0, 60)"))
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}: {seen}")


def test_keyboard_only_login_search_filter_and_action(console: tuple[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, agent = console
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # Enter on the browser's confirm
        page.goto(f"{url}/login")
        tab_to(page, "input[name=username]")
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text("Dashboard")
        page.wait_for_load_state("load")  # console.js (deferred) listens for keys

        page.keyboard.press("/")
        expect(page.locator("input[data-search]")).to_be_focused()
        page.keyboard.type("ticker")
        page.keyboard.press("Enter")
        expect(page.locator("#found-processes ~ table")).to_contain_text("ticker")

        page.goto(f"{url}/processes")
        tab_to(page, "form.filters input[name=q]")
        page.keyboard.type("ticker")
        page.keyboard.press("Enter")
        rows = page.locator("table.processes tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("RUNNING", timeout=10_000)
        pid = agent.info("ticker")["pid"]
        tab_to(page, "table.processes button[title^='Restart']")
        page.wait_for_timeout(1200)  # live refreshes swap the table: the focus stays put
        assert page.evaluate("document.activeElement.title").startswith("Restart")
        page.keyboard.press("Enter")
        expect(page.locator(".flash.success")).to_contain_text("restart on local")
        assert agent.info("ticker")["pid"] != pid
        browser.close()
