"""Every way a node can misbehave, against `cesi-like serve` (gunicorn, 2 workers): every page
and API call answers 2xx/4xx (502 for a call that had to reach the hostile node), calls that
reach a node answer within node_timeout + LOAD_ROOM (timed one at a time; far below the 20 s
of the slowest headers or the endless drip that a call with no overall deadline would wait
out), the workers' memory does
not grow by 20 MB over three more rounds four calls at a time, and nothing a node sends
reaches a page unescaped."""

from __future__ import annotations

import contextlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.support.hostile import MODES, XSS, hostile_node
from tests.support.procfs import children, rss_kb
from tests.support.waiting import LOAD_ROOM, wait_for

from .test_sessions_http import csrf, log_in

ADMIN = "hostile admin pw"
NODE_TIMEOUT = 0.5
STALLED = NODE_TIMEOUT + LOAD_ROOM


def workers(master: int) -> list[int]:
    """gunicorn's worker processes (not the poller processes it also started)."""
    result = []
    for pid in children(master):
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if b"poll" not in handle.read().split(b"\0"):
                result.append(pid)
    return result


def test_hostile_nodes_cannot_stall_crash_or_bloat_the_console(tmp_path: Path) -> None:
    from tests.support.served import serve_console

    with contextlib.ExitStack() as stack:
        urls = {mode: stack.enter_context(hostile_node(mode)) for mode in MODES}
        config = (f"[cesi]\npoll_interval = 0.5\nnode_timeout = {NODE_TIMEOUT}\n"
                  "login_backoff = 0\n"
                  + "".join(f"[node:{mode}]\nurl = {url}\n" for mode, url in urls.items()))
        base = stack.enter_context(serve_console(tmp_path, ADMIN, config))
        started = re.search(r"\[(\d+)\] \[INFO\] Starting gunicorn",
                            (tmp_path / "gunicorn.log").read_text())
        assert started is not None
        master = int(started.group(1))
        admin = log_in(base, "admin", ADMIN)
        headers = {"X-CSRFToken": csrf(admin, base)}

        def states() -> dict[str, str]:
            nodes = admin.get(f"{base}/api/v1/nodes", timeout=30).json()
            return {n["name"]: n["state"] for n in nodes}

        wait_for(lambda: "unknown" not in states().values(), timeout=30,
                 what="every hostile node to be polled")
        assert states()["xss"] == "online" and states()["drip"] == "hung"

        calls: list[tuple[str, str, bool]] = [  # method, path, reaches a node
            ("GET", "/", False), ("GET", "/processes", False),
            ("GET", "/processes?q=script&sort=state", False), ("GET", "/groups/g", False),
            ("GET", "/api/v1/nodes", False), ("GET", "/api/v1/processes", False)]
        for mode in MODES:
            calls += [("GET", f"/nodes/{mode}", False),
                      ("GET", f"/nodes/{mode}/processes/g:p", False),
                      ("GET", f"/nodes/{mode}/log", False),
                      ("GET", f"/api/v1/nodes/{mode}/processes/g:p/log", True),
                      ("GET", f"/api/v1/nodes/{mode}/log", True),
                      ("POST", f"/api/v1/nodes/{mode}/processes/g:p/stop", True),
                      ("GET", f"/api/v1/nodes/{mode}/stats", True),
                      ("GET", f"/api/v1/nodes/{mode}/config", True),
                      ("GET", f"/nodes/{mode}/config", True),
                      ("POST", f"/api/v1/nodes/{mode}/config/apply", True),
                      ("GET", f"/api/v1/nodes/{mode}/history", False),
                      ("GET", f"/api/v1/nodes/{mode}/processes/g:p/history", False)]

        def call(browser: requests.Session, method: str, path: str, reaches: bool,
                 timed: bool) -> None:
            began = time.monotonic()
            answer = browser.request(method, f"{base}{path}", headers=headers, timeout=30)
            took = time.monotonic() - began
            assert answer.status_code < 500 or (reaches and answer.status_code == 502), \
                (path, answer.status_code, answer.text[:300])
            if reaches and timed:
                assert took < STALLED, (path, took)
            if "text/html" in answer.headers.get("Content-Type", ""):
                assert XSS not in answer.text, path

        # one call at a time, each timed (imports, caches and pools warm up meanwhile)
        for method, path, reaches in calls:
            call(admin, method, path, reaches, timed=True)
        # then three rounds four calls at a time, for what the workers keep
        before = {pid: rss_kb(pid) for pid in workers(master)}
        browsers = []
        for _ in range(4):
            browsers.append(requests.Session())
            browsers[-1].cookies.update(admin.cookies)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda job: call(browsers[job[0] % 4], *job[1], timed=False),
                          enumerate(calls * 3)))
        after = {pid: rss_kb(pid) for pid in before}
        grown = {pid: (after[pid] - before[pid]) / 1024 for pid in before}
        assert before and all(mb < 20 for mb in grown.values()), grown
