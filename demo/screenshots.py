"""`make screenshots`: the demo fleet in chromium (Playwright), pictures of its pages in the
light and the dark theme, written to docs/screenshots/ (or the folder given).

It starts `demo/run.py` in a folder of its own on free ports, waits until the fleet shows a
FATAL and a flapping program, queues a bulk restart (so there is a job to show), then visits
the dashboard, the process list, a node, a process with its log and charts, the job, the
alert rules and the phone-sized process list. Chromium comes from Debian (`chromium`) or
PLAYWRIGHT_CHROMIUM; Playwright's own download is never used. CESI_SCREENSHOT_SETTLE sets the
seconds each page is given for its live parts to fill in (2.5; the test, which only checks
that every page is written, gives less)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
PAGES = [  # (file name, path, what to wait for)
    ("dashboard", "/", "h1"),
    ("processes", "/processes", "table.processes"),
    ("node", "/nodes/jobs-1", "table.processes"),
    ("process", "/nodes/web-1/processes/api:api", "pre.logtail[data-stream=stderr]"),
    ("alerts", "/alerts", "h1"),
    ("alert-rules", "/admin/alerts", "h1"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except requests.RequestException:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"screenshots: timed out waiting for {what}")


def chromium() -> str:
    found = os.environ.get("PLAYWRIGHT_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not found:
        raise SystemExit("screenshots: no chromium (apt install chromium)")
    return found


def api_session(run: Path) -> requests.Session:
    made = subprocess.run([sys.executable, "-m", "cesi_like.console.cli", "--config",
                           str(run / "cesi.conf"), "tokens", "create", "admin", "--label",
                           "screenshots"], capture_output=True, text=True, check=True)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {made.stdout.split()[-1]}"
    return session


def shoot(console: str, password: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    settle_ms = float(os.environ.get("CESI_SCREENSHOT_SETTLE", "2.5")) * 1000
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        for theme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 1280, "height": 860},
                                          color_scheme=theme)
            page = context.new_page()
            page.goto(f"{console}/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.click("button.primary")
            page.wait_for_selector("h1")
            for name, path, ready in [*PAGES, ("job", "/jobs", "table")]:
                page.goto(console + path)
                if name == "job":  # the newest job's own page
                    page.locator("main table a").first.click()
                page.wait_for_selector(ready)
                page.wait_for_timeout(settle_ms)  # live parts, stats and log tails fill in
                target = out / f"{name}-{theme}.png"
                page.screenshot(path=target, full_page=True)
                written.append(target)
            phone = browser.new_context(viewport={"width": 390, "height": 844},
                                        color_scheme=theme, storage_state=context.storage_state())
            small = phone.new_page()
            small.goto(f"{console}/processes?environment=production")
            small.wait_for_selector("table.processes")
            small.wait_for_timeout(settle_ms / 2)
            target = out / f"processes-phone-{theme}.png"
            small.screenshot(path=target)
            written.append(target)
            phone.close()
            context.close()
        browser.close()
    return written


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    console = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="cesi-screenshots-") as folder:
        run = Path(folder)
        env = {**os.environ, "CESI_DEMO_DIR": str(run), "CESI_DEMO_PORT": str(port),
               "CESI_DEMO_WEB_PORT": str(free_port())}
        env.pop("CESI_LIKE_CONFIG", None)
        demo = subprocess.Popen([sys.executable, str(ROOT / "demo" / "run.py")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait(lambda: requests.get(f"{console}/login", timeout=5).ok, 60, "the console")
            api = api_session(run)
            wait(lambda: api.get(f"{console}/api/v1/processes", params={"state": "FATAL"},
                                 timeout=5).json(), 30, "the FATAL program")
            # the restart below acts on what the last polls saw: both staging nodes' workers
            wait(lambda: {row["node"] for row in api.get(
                f"{console}/api/v1/processes", params={"environment": "staging",
                                                       "group": "worker"}, timeout=5).json()}
                 == {"web-2", "legacy-1"}, 30, "the staging workers")
            queued = api.post(f"{console}/api/v1/bulk", timeout=10, json={
                "action": "restart", "spec": "worker:*", "environment": "staging"})
            queued.raise_for_status()
            time.sleep(3)  # the flapping program flaps, the job finishes
            written = shoot(console, (run / "admin-password").read_text().strip(), out)
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(90)
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
