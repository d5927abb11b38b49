"""#9.9 the agent's own web page, against supervisord 4.3's page for the same config: the same
rows, states and actions; every action a POST carrying the run's token (supervisord's GET
links act from any site the user visits); behind the same authentication; escaped."""

from __future__ import annotations

import html.parser
import re
import urllib.parse
from typing import Any

import pytest
import requests

from tests.support.daemons import StartDaemon
from tests.support.waiting import wait_for

from .test_reliability import free_port

PROGRAMS = """
[program:web]
command=sleep 1000
startsecs=0

[program:idle]
command=sleep 1000
autostart=false

[program:done]
command=/bin/sh -c "echo finished; exit 0"
startsecs=0
autorestart=false
exitcodes=0

[program:x<b>]
command=/bin/sh -c "echo '<script>alert(1)</script>'; exec sleep 1000"
startsecs=0
"""


class Rows(html.parser.HTMLParser):
    """(state, name, action labels) of each row of a status page, supervisord's or ours."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, list[str]]] = []
        self._cells: list[str] = []
        self._labels: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._cells, self._labels = [], []
        elif tag == "td":
            self._cells.append("")
        elif tag in ("a", "button") and len(self._cells) == 4:
            if ("class", "hidden") not in attrs:  # supervisord's placeholder for no action
                self._in = tag
                self._labels.append("")
        elif tag == "a" and len(self._cells) == 3:
            self._in = "name"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("a", "button"):
            self._in = None
        elif tag == "tr" and len(self._cells) == 4:
            labels = [label.strip() for label in self._labels if label.strip()]
            self.rows.append((self._cells[0].strip(), self._cells[2].strip(), labels))

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data
        if self._in in ("a", "button") and self._labels:
            self._labels[-1] += data


def page(url: str, auth: Any = ("u", "p")) -> str:
    answer = requests.get(url, auth=auth, timeout=10)
    answer.raise_for_status()
    return answer.text


def inet(port: int) -> str:
    return f"[inet_http_server]\nport=127.0.0.1:{port}\nusername=u\npassword=p\n"


@pytest.fixture
def pair(start_daemon: StartDaemon) -> dict[str, str]:
    """Base URLs of a supervisord and an agent with the same programs, all settled."""
    urls = {}
    for kind in ("supervisord", "agent"):
        port = free_port()
        daemon = start_daemon(PROGRAMS + inet(port), kind=kind)
        wait_for(lambda d=daemon: d.state("done") == "EXITED" and d.state("web") == "RUNNING")  # type: ignore[misc]
        urls[kind] = f"http://127.0.0.1:{port}"
    return urls


def test_the_same_table_as_supervisords(pair: dict[str, str]) -> None:
    tables = {}
    for kind, url in pair.items():
        parser = Rows()
        parser.feed(page(f"{url}/"))
        tables[kind] = parser.rows
    assert tables["agent"] == tables["supervisord"], tables
    assert ("running", "web", ["Restart", "Stop", "Clear Log", "Tail -f Stdout",
                               "Tail -f Stderr"]) in tables["agent"]
    assert ("stopped", "idle", ["Start", "Clear Log", "Tail -f Stdout",
                                "Tail -f Stderr"]) in tables["agent"]
    for kind, url in pair.items():  # the tail page shows the end of the stdout log
        assert "finished" in page(f"{url}/tail.html?processname=done"), kind


def test_actions_are_posts_with_the_runs_token(pair: dict[str, str]) -> None:
    url = pair["agent"]
    status = page(f"{url}/index.html")
    token = re.search(r'name="token" value="([^"]+)"', status).group(1)  # type: ignore[union-attr]
    # supervisord's GET link stops the program; ours shows the page and does nothing
    assert requests.get(f"{url}/index.html?processname=web&action=stop", auth=("u", "p"),
                        timeout=10).status_code == 200
    assert row_state(url, "web") == "running"
    for form, headers in (({"action": "stop", "processname": "web"}, {}),  # no token
                          ({"action": "stop", "processname": "web", "token": "x" * 32}, {}),
                          ({"action": "stop", "processname": "web", "token": token},
                           {"Origin": "https://evil.example"})):
        refused = requests.post(f"{url}/index.html", data=form, headers=headers,
                                auth=("u", "p"), timeout=10, allow_redirects=False)
        assert refused.status_code == 403, form
    assert row_state(url, "web") == "running"
    assert requests.post(f"{url}/index.html", data={"action": "stop", "processname": "web",
                                                    "token": token},
                         timeout=10).status_code == 401  # the same authentication
    assert requests.post(f"{url}/index.html", data={f"f{n}": "x" for n in range(20)},
                         auth=("u", "p"), timeout=10).status_code == 400
    done = requests.post(f"{url}/index.html", data={"action": "stop", "processname": "web",
                                                    "token": token}, auth=("u", "p"),
                         timeout=30, allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"] == \
        "index.html?message=Process+web+stopped"
    assert row_state(url, "web") == "stopped"
    shown = page(f"{url}/{done.headers['Location']}")
    assert '<div class="status_msg" role="status">Process web stopped</div>' in shown
    for action, spec, message in (("start", "web", "Process web started"),
                                  ("start", "web", "ERROR: Process web: already started"),
                                  ("restart", "web", "Process web restarted"),
                                  ("clearlog", "done", "Log for done cleared"),
                                  ("stop", "nope", "No such process named nope")):
        answer = requests.post(f"{url}/", data={"action": action, "processname": spec,
                                                "token": token}, auth=("u", "p"),
                               timeout=30, allow_redirects=False)
        assert answer.status_code == 303, action
        assert urllib.parse.unquote_plus(answer.headers["Location"]) == \
            f"index.html?message={message}"
    headers = requests.get(f"{url}/", auth=("u", "p"), timeout=10).headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def row_state(url: str, name: str) -> str:
    parser = Rows()
    parser.feed(page(f"{url}/"))
    return next(state for state, row_name, _ in parser.rows if row_name == name)


def test_node_text_is_escaped(pair: dict[str, str]) -> None:
    url = pair["agent"]
    status = page(f"{url}/")
    assert "x&lt;b&gt;" in status and "<b>" not in status
    tail = page(f"{url}/tail.html?processname=x%3Cb%3E")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in tail and "<script>" not in tail
    assert "No file for" not in tail


def test_served_on_the_unix_socket_too(start_daemon: StartDaemon) -> None:
    from .test_transport import raw

    daemon = start_daemon(PROGRAMS)
    status, headers, body = raw(daemon, "GET", "/")
    assert status == 200 and headers["Content-Type"] == "text/html;charset=utf-8"
    assert b">web</a>" in body
    assert raw(daemon, "GET", "/stylesheets/cesi-agentd.css")[0] == 200
    assert raw(daemon, "DELETE", "/")[0] == 405
