"""#20.1 alert channels through Apprise: a crash on a real cesi-agentd reaches a local JSON,
form and ntfy receiver and a local SMTP sink through Apprise URLs, with the process's state,
exit status, stderr tail and a link to its page; the URLs are sealed at rest and shown back as
scheme and host only; Test reports each channel; and the services that cannot run here
(Slack, Microsoft Teams, PagerDuty, Opsgenie, Discord, Telegram) are checked at the HTTP
boundary: the request Apprise makes."""

from __future__ import annotations

import datetime
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from flask import Flask
from sqlalchemy import select, update

from cesi_like.console.app import create_app, make_poller
from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, AlertRule, Node
from tests.console.test_alerts import Sink, mail  # mail: a local SMTP sink, a fixture
from tests.support.console import settings, token_for
from tests.support.daemons import daemons
from tests.support.ports import closed_url
from tests.support.waiting import wait_for

__all__ = ["mail"]

CRASHER = """
[program:crasher]
command=/bin/sh -c 'echo "disk full on /var" >&2; sleep 1; exit 3'
startsecs=0
autorestart=true
"""


class Receiver:
    """A local HTTP server standing in for a JSON webhook, a form endpoint and an ntfy
    server: it keeps each request's path and body and answers 200."""

    def __init__(self) -> None:
        got: list[tuple[str, bytes]] = []
        self.got = got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                got.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id": "1"}')

            do_PUT = do_POST

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[bytes]:
        return [body for got_path, body in self.got if got_path.startswith(path)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def ntfy_topic(receiver: Receiver) -> list[bytes]:
    """What reached the ntfy server's topic (ntfy takes JSON at its root, the topic in it)."""
    return [body for path, body in receiver.got if path == "/" and b"ops-alerts" in body]


def make(tmp_path: Path) -> Flask:
    return create_app({"CESI_SETTINGS": settings(
        tmp_path, external_url="https://console.example.org/"), "TESTING": True})


def admin(app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(app, 'admin')}"}


def test_a_crash_reaches_every_apprise_channel_with_what_happened(
        tmp_path: Path, receiver: Receiver, mail: tuple[Sink, int]) -> None:
    mails, smtp_port = mail
    app = make(tmp_path)
    urls = [f"json://{receiver.base}/hook", f"form://{receiver.base}/form",
            f"ntfy://{receiver.base}/ops-alerts",
            f"mailto://127.0.0.1:{smtp_port}?from=alerts@example.org&to=ops@example.org"]
    with daemons(tmp_path) as start:
        agent = start(CRASHER, name="agent")
        with database.standalone(app) as db:
            db.add(Node(name="web1", url=agent.url))
            db.commit()
        answer = app.test_client().post("/api/v1/alerts", headers=admin(app), json={
            "name": "crashes", "kind": "crash", "notify": urls})
        assert answer.status_code == 201, answer.get_json()
        # shown back as scheme and host, never whole
        assert answer.get_json()["notify"] == ["json://127.0.0.1", "form://127.0.0.1",
                                               "ntfy://127.0.0.1", "mailto://127.0.0.1"]
        app.config["CESI_POLL_INTERVAL"] = 0.3
        poller = make_poller(app)
        poller.start()
        try:
            wait_for(lambda: len(receiver.at("/hook")) >= 2 and receiver.at("/form")
                     and ntfy_topic(receiver) and len(mails.messages) >= 2, 30,
                     "every channel, and the resolved notice once it runs again")
        finally:
            poller.stop()
    resolved = json.loads(receiver.at("/hook")[1])  # autorestart: it runs again, said once
    assert resolved["type"] == "success" and resolved["title"].startswith(
        "[cesi-like] RESOLVED crashes: resolved: crasher:crasher on web1 is RUNNING again")
    assert b"RESOLVED" in mails.messages[1]
    message = json.loads(receiver.at("/hook")[0])["message"]
    assert "crasher:crasher on web1 exited unexpectedly (exit status 3)" in message
    assert "crasher:crasher on web1: EXITED, exit status 3" in message
    assert "https://console.example.org/nodes/web1/processes/crasher%3Acrasher" in message
    assert "disk full on /var" in message  # the stderr tail
    assert "disk full on /var" in parse_qs(receiver.at("/form")[0].decode())["message"][0]
    ntfy = json.loads(ntfy_topic(receiver)[0])
    assert ntfy["topic"] == "ops-alerts" and "[cesi-like] crashes" in ntfy["title"]
    assert b"disk full on /var" in mails.messages[0]
    with database.standalone(app) as db:
        stored = db.scalar(select(AlertRule.notify))
        assert stored is not None and receiver.base not in stored  # sealed at rest
        delivered = sorted({(e.action, e.result) for e in db.scalars(
            select(ActivityLog).where(ActivityLog.action.like("alert.notify%")))})
    assert delivered == [("alert.notify form://127.0.0.1", "ok"),
                         ("alert.notify json://127.0.0.1", "ok"),
                         ("alert.notify mailto://127.0.0.1", "ok"),
                         ("alert.notify ntfy://127.0.0.1", "ok")]
    console(app).engine.dispose()


def test_test_reports_each_channel_and_bad_urls_are_refused(tmp_path: Path,
                                                            receiver: Receiver) -> None:
    app = make(tmp_path)
    client = app.test_client()
    for notify, error in ((["bogus://x"], "not a URL Apprise can deliver to"),
                          (["json://h/\r\nX: 1"], "notify[0]"), ("json://h", "a list"),
                          ([f"json://{receiver.base}"] * 21, "at most 20")):
        answer = client.post("/api/v1/alerts", headers=admin(app), json={
            "name": "x", "kind": "fatal", "notify": notify})
        assert answer.status_code == 400 and error in answer.get_json()["error"], notify
    down = closed_url().replace("http://", "json://")
    created = client.post("/api/v1/alerts", headers=admin(app), json={
        "name": "both", "kind": "fatal",
        "notify": [f"json://{receiver.base}/hook", down]}).get_json()
    tested = client.post(f"/api/v1/alerts/{created['id']}/test", headers=admin(app)).get_json()
    assert tested["notify json://127.0.0.1"] == "ok"
    assert tested["notify json://127.0.0.1 (2)"].startswith("failed: A Connection error")
    page = client.get("/admin/alerts", headers=admin(app)).get_data(as_text=True)
    assert "json://127.0.0.1" in page and receiver.base not in page
    console(app).engine.dispose()


# what each service's Apprise URL sends, checked at the HTTP boundary (responses intercepts
# the request Apprise makes with `requests`; nothing leaves the machine)
SERVICES = [  # (Apprise URL, where it posts, what the service answers)
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
     "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/", "ok", 200),
    ("workflows://prod-161.westeurope.logic.azure.com/abc123def456/sigSIGsig",  # MS Teams
     "https://prod-161.westeurope.logic.azure.com/workflows/abc123def456/", "", 202),
    ("pagerduty://Ab1cD2eF3gH4iJ5kL6mN@R03C2D3E4F5G6H7I8J9K0L1M2N3O4P5",
     "https://events.pagerduty.com/v2/enqueue", '{"status": "success"}', 202),
    ("opsgenie://a1b2c3d4-e5f6-7890-abcd-ef1234567890",
     "https://api.opsgenie.com/v2/alerts", '{"requestId": "43a29c5c"}', 202),
    ("discord://1234567890/abcdefghijklmnopqrstuvwxyz0123456789",
     "https://discord.com/api/webhooks/1234567890/", "", 204),
    ("tgram://123456789:AABBCCDDEEFFGGHHIIJJKKLLMMNNOOPPQQRR/-1001234567890",
     "https://api.telegram.org/bot123456789:AABBCCDDEEFFGGHHIIJJKKLLMMNNOOPPQQRR/",
     '{"ok": true}', 200),
]


@pytest.mark.parametrize("url, endpoint, answer, status", SERVICES,
                         ids=[s[0].split(":", 1)[0] for s in SERVICES])
def test_hosted_services_get_the_alert_at_their_http_boundary(
        tmp_path: Path, url: str, endpoint: str, answer: str, status: int) -> None:
    app = make(tmp_path)
    client = app.test_client()
    created = client.post("/api/v1/alerts", headers=admin(app), json={
        "name": "paging", "kind": "fatal", "notify": [url]})
    assert created.status_code == 201, created.get_json()
    secret_part = url.split("://", 1)[1].split("/")[-1][:12]
    shown = created.get_json()["notify"][0]
    assert url.startswith(shown.split("://")[0]) and secret_part not in shown
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, re.compile(re.escape(endpoint) + ".*"), body=answer,
                 status=status)
        mock.add_passthru("http://127.0.0.1")  # nothing else may go out
        tested = client.post(f"/api/v1/alerts/{created.get_json()['id']}/test",
                             headers=admin(app)).get_json()
        sent = [call.request for call in mock.calls if call.request.url.startswith(endpoint)]
    assert list(tested.values()) == ["ok"], tested
    assert sent, [call.request.url for call in mock.calls]
    body = sent[0].body.decode() if isinstance(sent[0].body, bytes) else str(sent[0].body)
    assert "test of alert rule paging" in body
    console(app).engine.dispose()


FIXABLE = """
[program:needs-flag]
command=/bin/sh -c 'test -f {flag} || exit 1; exec sleep 1000'
autostart=false
startsecs=1
startretries=0
"""


def test_resolved_is_said_once_when_the_process_runs_again_or_the_node_answers(
        tmp_path: Path, receiver: Receiver) -> None:
    from tests.console.test_alerts import down_for

    app = make(tmp_path)
    flag = tmp_path / "flag"
    client = app.test_client()
    with daemons(tmp_path) as start:
        agent = start(FIXABLE.format(flag=flag), name="agent")
        with database.standalone(app) as db:
            db.add_all([Node(name="web1", url=agent.url),
                        Node(name="web2", url=closed_url())])
            db.commit()
        for kind in ("fatal", "unreachable"):
            assert client.post("/api/v1/alerts", headers=admin(app), json={
                "name": kind, "kind": kind, "unreachable_seconds": 1,
                "notify": [f"json://{receiver.base}/{kind}"]}).status_code == 201
        poller = make_poller(app)
        poller.poll_now()
        start_it = "/api/v1/nodes/web1/processes/needs-flag:needs-flag/start"
        assert client.post(start_it, headers=admin(app)).status_code == 409  # FATAL
        down_for(app, "web2", 5)
        poller.poll_now()
        wait_for(lambda: receiver.at("/fatal") and receiver.at("/unreachable"), 10,
                 "both alerts")
        flag.write_text("")
        assert client.post(start_it, headers=admin(app)).status_code == 200  # runs again
        with database.standalone(app) as db:  # web2 comes back: the agent answers there
            db.execute(update(Node).where(Node.name == "web2").values(url=agent.url))
            db.commit()
        for _ in range(3):
            poller.poll_now()
        wait_for(lambda: len(receiver.at("/fatal")) == 2 and len(receiver.at("/unreachable"))
                 == 2, 10, "both resolved notices")
        for _ in range(2):
            poller.poll_now()
    fatal = [json.loads(body) for body in receiver.at("/fatal")]
    assert [m["type"] for m in fatal] == ["failure", "success"]
    assert fatal[1]["title"].startswith("[cesi-like] RESOLVED fatal: resolved: "
                                        "needs-flag:needs-flag on web1 is RUNNING again")
    down = [json.loads(body) for body in receiver.at("/unreachable")]
    assert [m["type"] for m in down] == ["failure", "success"]
    assert "node web2 answers again" in down[1]["title"]
    with database.standalone(app) as db:
        from cesi_like.console.storage.models import AlertFiring

        assert all(f.resolved_at is not None for f in db.scalars(select(AlertFiring)))
    console(app).engine.dispose()


SETTLES = """
[program:settles]
command=/bin/sh -c 'while [ ! -e {go} ]; do sleep 0.05; done; \
n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; \
test "$n" -ge 3 && exec sleep 1000; sleep 0.3; exit 1'
startsecs=0
autorestart=true
"""


def test_a_flapping_process_that_settles_is_resolved_once_its_window_passes(
        tmp_path: Path, receiver: Receiver) -> None:
    """No more changes come from a process that stopped flapping: its node's answers end the
    alert once the window holds no more starts than the rule allows."""
    from cesi_like.console.storage.models import AlertFiring, ProcessEvent

    app = make(tmp_path)
    with daemons(tmp_path) as start:
        agent = start(SETTLES.format(count=tmp_path / "count", go=tmp_path / "go"),
                      name="agent")
        with database.standalone(app) as db:
            db.add(Node(name="web1", url=agent.url))
            db.commit()
        assert app.test_client().post("/api/v1/alerts", headers=admin(app), json={
            "name": "flaps", "kind": "flapping", "threshold": 2, "window_minutes": 1,
            "notify": [f"json://{receiver.base}/flaps"]}).status_code == 201
        poller = make_poller(app)
        app.config["CESI_POLL_INTERVAL"] = 0.2
        # it flaps only once the console knows the node: its three crashes are then changes
        # the polls see, however late the poller starts on a loaded machine
        poller.poll_now()
        (tmp_path / "go").touch()
        poller.start()
        try:
            wait_for(lambda: receiver.at("/flaps"), 20, "the flapping alert")
            count = tmp_path / "count"
            wait_for(lambda: count.read_text().strip() == "4", 10, "the fourth start")
            agent.wait_state("settles", "RUNNING")  # it settled
            poller.poll_now()
            assert len(receiver.at("/flaps")) == 1  # its starts are still in the window
            with database.standalone(app) as db:  # a minute and more goes by
                for row in [*db.scalars(select(ProcessEvent)), *db.scalars(select(AlertFiring))]:
                    row.time -= datetime.timedelta(minutes=2)
                db.commit()
            wait_for(lambda: len(receiver.at("/flaps")) == 2, 10, "the resolved notice")
            for _ in range(2):
                poller.poll_now()
        finally:
            poller.stop()
    said = [json.loads(body) for body in receiver.at("/flaps")]
    assert [m["type"] for m in said] == ["failure", "success"]
    assert said[1]["title"].startswith(
        "[cesi-like] RESOLVED flaps: resolved: settles:settles on web1 is RUNNING (pid ")
    assert "with 0 starts in the last 1 min" in said[1]["title"]
    with database.standalone(app) as db:
        assert all(f.resolved_at is not None for f in db.scalars(select(AlertFiring)))
    console(app).engine.dispose()
