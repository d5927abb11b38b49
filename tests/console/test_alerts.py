"""#10.5 alerts against real nodes: a flapping program on cesi-agentd alerts exactly once per
window to a real webhook server (HMAC-signed) and a real SMTP sink (aiosmtpd), with its
stderr tail; a node down for long enough alerts once per episode; a hanging webhook never
holds up the poller; rules are admin-only and checked."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select, update

from cesi_like.console.app import create_app, make_poller
from cesi_like.console.context import console
from cesi_like.console.services import alerts
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import (
    ActivityLog,
    AlertFiring,
    AlertRule,
    Node,
    NodeStatus,
    ProcessEvent,
    utcnow,
)
from cesi_like.console.workers import alerts as delivery
from cesi_like.supervisor_rpc.states import ProcessState
from tests.support.console import PASSWORD, settings, token_for
from tests.support.daemons import daemons
from tests.support.ports import free_port
from tests.support.waiting import wait_for

PROGRAMS = """
[program:flappy]
command=/bin/sh -c 'echo "boom from flappy" >&2; sleep 0.3; exit 1'
startsecs=0
autorestart=true

[program:steady]
command=sleep 1000
startsecs=0
"""


class Webhook:
    """A real HTTP server that keeps what it is sent (and may answer slowly)."""

    def __init__(self, delay: float = 0.0) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received
        self.arrived = threading.Event()  # a request came (answered or not)
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrived.set()
                time.sleep(delay)
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def mail() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def hook() -> Iterator[Webhook]:
    server = Webhook()
    yield server
    server.close()


def make(tmp_path: Path, smtp_port: int) -> Flask:
    return create_app({"CESI_SETTINGS": settings(
        tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_from="alerts@example.org"),
        "TESTING": True})


def starts(app: Flask, name: str) -> int:
    """How often the poller has seen the process come up."""
    with database.standalone(app) as db:
        return len(db.scalars(select(ProcessEvent).where(
            ProcessEvent.name == name, ProcessEvent.to_state == ProcessState.RUNNING)).all())


def firings(app: Flask) -> int:
    """The alerts fired so far (each is delivered once)."""
    with database.standalone(app) as db:
        return len(db.scalars(select(AlertFiring)).all())


def down_for(app: Flask, node: str, seconds: float) -> None:
    """As if the node had been failing for `seconds` already (instead of waiting them)."""
    with database.standalone(app) as db:
        found = db.scalar(select(Node).where(Node.name == node))
        assert found is not None
        db.execute(update(NodeStatus).where(NodeStatus.node_id == found.id).values(
            since=utcnow() - datetime.timedelta(seconds=seconds)))
        db.commit()


def rule(app: Flask, **fields: Any) -> dict[str, Any]:
    answer = app.test_client().post("/api/v1/alerts", json=fields, headers={
        "Authorization": f"Bearer {token_for(app, 'admin')}"})
    assert answer.status_code == 201, answer.get_json()
    created: dict[str, Any] = answer.get_json()
    return created


def test_flapping_alerts_once_per_window_by_webhook_and_email(
        tmp_path: Path, hook: Webhook, mail: tuple[Sink, int]) -> None:
    sink, smtp_port = mail
    app = make(tmp_path, smtp_port)
    with daemons(tmp_path) as start:
        agent = start(PROGRAMS, name="agent")
        with database.standalone(app) as db:
            db.add(Node(name="web1", url=agent.url))
            db.commit()
        created = rule(app, name="flaps", kind="flapping", threshold=2, window_minutes=1,
                       webhook_url=hook.url, webhook_secret="s3cret", email_to="ops@example.org")
        assert created["has_webhook_secret"] is True and "webhook_secret" not in created
        app.config["CESI_POLL_INTERVAL"] = 0.3
        poller = make_poller(app)
        poller.start()
        try:
            wait_for(lambda: hook.received and sink.messages, 30, "the alert")
            seen = starts(app, "flappy")
            wait_for(lambda: starts(app, "flappy") >= seen + 3, 30, "three more flaps seen")
        finally:
            poller.stop()
        assert firings(app) == 1  # it kept flapping: still one alert in the window
        assert len(hook.received) == 1 and len(sink.messages) == 1
    headers, body = hook.received[0]
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Cesi-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert (payload["rule"], payload["kind"], payload["node"], payload["process"]) == (
        "flaps", "flapping", "web1", "flappy")
    assert "boom from flappy" in payload["stderr_tail"]
    email = message_from_bytes(sink.messages[0])
    assert email["To"] == "ops@example.org" and "flappy" in email["Subject"]
    assert "boom from flappy" in email.get_payload()
    with database.standalone(app) as db:
        delivered = {(e.action, e.result) for e in db.scalars(
            select(ActivityLog).where(ActivityLog.action.like("alert.%")))}
    assert {("alert.webhook", "ok"), ("alert.email", "ok"), ("alert.create", "ok")} <= delivered
    console(app).engine.dispose()


def test_unreachable_node_alerts_once_per_episode(tmp_path: Path, hook: Webhook,
                                                  mail: tuple[Sink, int]) -> None:
    app = make(tmp_path, mail[1])
    with database.standalone(app) as db:
        db.add(Node(name="gone", url=f"http://127.0.0.1:{free_port()}"))
        db.commit()
    rule(app, name="down", kind="unreachable", unreachable_seconds=1, webhook_url=hook.url)
    poller = make_poller(app)
    poller.poll_now()  # down since now: not yet for a second
    assert firings(app) == 0
    down_for(app, "gone", 2)
    poller.poll_now()
    poller.poll_now()
    assert firings(app) == 1  # once per episode
    wait_for(lambda: hook.received, 10, "the alert")
    assert len(hook.received) == 1
    assert "node gone is unreachable" in json.loads(hook.received[0][1])["text"]
    console(app).engine.dispose()


def test_a_hanging_webhook_does_not_hold_the_poller(tmp_path: Path, mail: tuple[Sink, int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "TIMEOUT", 0.5)  # the retries, quicker than in production
    slow = Webhook(delay=30)
    app = make(tmp_path, mail[1])
    try:
        with database.standalone(app) as db:
            db.add(Node(name="gone", url=f"http://127.0.0.1:{free_port()}"))
            db.commit()
        rule(app, name="down", kind="unreachable", unreachable_seconds=1, webhook_url=slow.url)
        poller = make_poller(app)
        poller.poll_now()
        down_for(app, "gone", 2)
        for _ in range(5):  # the alert fires on the first; the webhook hangs meanwhile
            poller.poll_now()
        # the polls are over while the delivery is still trying (three tries of 0.5 s with
        # 1 and 2 s between them): they never waited on it
        assert slow.arrived.wait(10), "the webhook was never called"
        with database.standalone(app) as db:
            assert db.scalar(select(ActivityLog).where(
                ActivityLog.action == "alert.webhook")) is None
        with database.standalone(app) as db:
            wait_for(lambda: db.scalar(select(ActivityLog).where(
                ActivityLog.action == "alert.webhook")), 20, "the failed delivery recorded")
            entry = db.scalar(select(ActivityLog).where(ActivityLog.action == "alert.webhook"))
            assert entry is not None and entry.result == "failed"
            assert "failed after 3 tries" in entry.detail
    finally:
        slow.server.server_close()
        console(app).engine.dispose()


def test_rules_are_checked_admin_only_and_testable(tmp_path: Path, hook: Webhook,
                                                   mail: tuple[Sink, int]) -> None:
    app = make(tmp_path, mail[1])
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    client = app.test_client()
    for body, error in (({"name": "x", "kind": "sometimes", "webhook_url": hook.url}, "kind"),
                        ({"name": "x", "kind": "fatal"}, "give webhook_url, email_to"),
                        ({"name": "x", "kind": "fatal", "webhook_url": "ftp://h"},
                         "webhook_url"),
                        ({"name": "x", "kind": "flapping", "threshold": 0,
                          "webhook_url": hook.url}, "threshold"),
                        ({"name": "x", "kind": "fatal", "email_to": "a@b\nBcc: c@d"},
                         "email_to"),
                        ({"name": "x y", "kind": "fatal", "webhook_url": hook.url}, "name"),
                        ({"name": "x", "kind": "fatal", "webhook_url": hook.url, "x": 1},
                         "unknown fields"),
                        ({"name": "x", "kind": "fatal", "webhook_url": hook.url,
                          "environment": "prdo"}, "there is no environment 'prdo'"),
                        ({"name": "x", "kind": "fatal", "webhook_url": hook.url,
                          "node": "ghost"}, "there is no node 'ghost'")):
        answer = client.post("/api/v1/alerts", json=body, headers=admin)
        assert answer.status_code == 400 and error in answer.get_json()["error"], body
    created = rule(app, name="fatal", kind="fatal", webhook_url=hook.url,
                   email_to="ops@example.org")
    tested = client.post(f"/api/v1/alerts/{created['id']}/test", headers=admin)
    assert tested.get_json() == {"webhook": "ok", "email": "ok"}
    assert json.loads(hook.received[0][1])["text"] == "test of alert rule fatal"
    assert len(mail[0].messages) == 1
    from cesi_like.console.services.credentials import hash_password
    from cesi_like.console.storage.models import User

    with database.standalone(app) as db:
        db.add(User(username="op", role="operator", password_hash=hash_password(PASSWORD)))
        db.commit()
    operator = {"Authorization": f"Bearer {token_for(app, 'op')}"}
    assert client.get("/api/v1/alerts", headers=operator).status_code == 403
    assert client.post(f"/api/v1/alerts/{created['id']}/test",
                       headers=operator).status_code == 403
    assert client.delete(f"/api/v1/alerts/{created['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/alerts", headers=admin).get_json() == []
    console(app).engine.dispose()


def test_the_alerts_page_adds_tests_and_deletes(tmp_path: Path, hook: Webhook,
                                                mail: tuple[Sink, int]) -> None:
    from tests.support.console import csrf_from, login

    app = make(tmp_path, mail[1])
    client = app.test_client()
    login(client)
    page = client.get("/admin/alerts").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "name": "crashes", "kind": "crash",
            "threshold": 3, "window_minutes": 10, "unreachable_seconds": 60,
            "environment": "", "group": "", "node": "", "enabled": "y",  # as a browser sends
            "duration_seconds": 60, "action": "none"}
    refused = client.post("/admin/alerts", data=form).get_data(as_text=True)
    assert "give webhook_url, email_to or notify" in refused  # the form comes back, says why
    answer = client.post("/admin/alerts", data={**form, "webhook_url": hook.url,
                                                "webhook_secret": "s3cret-signing-key"})
    assert answer.status_code == 302
    page = client.get("/admin/alerts").get_data(as_text=True)
    assert "crashes" in page and "(signed)" in page and "s3cret-signing-key" not in page
    with database.standalone(app) as db:
        rule_id = db.scalars(select(AlertRule.id)).one()
    client.post(f"/admin/alerts/{rule_id}/test", data={"csrf_token": csrf_from(page)})
    assert "Test webhook: ok" in client.get("/admin/alerts").get_data(as_text=True)
    assert len(hook.received) == 1
    client.post(f"/admin/alerts/{rule_id}/delete", data={"csrf_token": csrf_from(page)})
    assert "No alert rules yet." in client.get("/admin/alerts").get_data(as_text=True)
    console(app).engine.dispose()


def test_a_rule_turned_off_keeps_its_settings_and_stays_quiet(
        tmp_path: Path, hook: Webhook, mail: tuple[Sink, int]) -> None:
    from tests.support.console import csrf_from, login

    app = make(tmp_path, mail[1])
    created = rule(app, name="fatals", kind="fatal", webhook_url=hook.url)
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    client = app.test_client()
    url = f"/api/v1/alerts/{created['id']}"
    for body in ({}, {"enabled": "no"}, {"enabled": False, "kind": "sometimes"}):
        assert client.patch(url, json=body, headers=admin).status_code == 400, body
    off = client.patch(url, json={"enabled": False}, headers=admin)
    assert off.status_code == 200 and off.get_json() == {**created, "enabled": False}
    fatal = ProcessEvent(time=utcnow(), node="n", group="g", name="p",
                         from_state=ProcessState.BACKOFF, to_state=ProcessState.FATAL, pid=0,
                         exitstatus=0)
    with database.standalone(app) as db:
        assert alerts.evaluate(db, [fatal], []) == []  # off: quiet
    login(client)
    page = client.get("/admin/alerts").get_data(as_text=True)
    assert "Turn on" in page
    assert client.post(f"/admin/alerts/{created['id']}/enabled", data={
        "csrf_token": csrf_from(page), "enabled": "1"}).status_code == 302
    with database.standalone(app) as db:
        assert [a.rule for a in alerts.evaluate(db, [fatal], [])] == ["fatals"]
        actions = [entry.action for entry in db.scalars(select(ActivityLog).where(
            ActivityLog.action.like("alert.%")).order_by(ActivityLog.id))]
    assert actions == ["alert.create", "alert.disable", "alert.enable"]
    console(app).engine.dispose()


BROKEN = """
[program:broken]
command=/bin/false
autostart=false
startsecs=1
startretries=0
"""


@pytest.mark.parametrize("kind", ["agent", "supervisord"])
def test_a_fatal_caused_by_an_action_alerts(tmp_path: Path, hook: Webhook,
                                            mail: tuple[Sink, int], kind: str) -> None:
    """#17.1: the action's re-poll stored FATAL without judging the rules, and the poller's
    next answer showed nothing new, so no alert came, ever. Every stored answer is judged
    now, whoever polled."""
    app = make(tmp_path, mail[1])
    with daemons(tmp_path) as start:
        node = start(BROKEN, kind=kind, name="node")
        with database.standalone(app) as db:
            db.add(Node(name="web1", url=node.url))
            db.commit()
        rule(app, name="fatals", kind="fatal", webhook_url=hook.url)
        poller = make_poller(app)
        poller.poll_now()
        answer = app.test_client().post(
            "/api/v1/nodes/web1/processes/broken:broken/start",
            headers={"Authorization": f"Bearer {token_for(app, 'admin')}"})
        assert answer.status_code == 409  # it could not be started
        assert node.state("broken") == "FATAL"
        poller.poll_now()  # the poller sees FATAL again: nothing new to it
        wait_for(lambda: hook.received, 10, "the FATAL alert")
        poller.poll_now()
    payload = json.loads(hook.received[0][1])
    assert (payload["rule"], payload["node"], payload["process"]) == ("fatals", "web1",
                                                                      "broken")
    assert "entered FATAL" in payload["text"]
    with database.standalone(app) as db:
        assert [e.result for e in db.scalars(select(ActivityLog).where(
            ActivityLog.action == "alert.webhook"))] == ["ok"]
    console(app).engine.dispose()


@pytest.mark.parametrize("field", ["email_to", "webhook_url", "name", "group"])
@pytest.mark.parametrize("bad", ["\x00", "\u2028", "\r", "\n", "\x1b"])
def test_header_like_fields_refuse_control_and_line_separators(
        tmp_path: Path, hook: Webhook, mail: tuple[Sink, int], field: str, bad: str) -> None:
    """#17.7: a NUL or a U+2028 in email_to was stored, and a rule with a CR made Test
    answer 500 (the mail library refused the header)."""
    app = make(tmp_path, mail[1])
    body = {"name": "r", "kind": "fatal", "webhook_url": hook.url, "email_to": "a@b.org"}
    body[field] = f"{body.get(field, 'web')}{bad}x"
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    answer = app.test_client().post("/api/v1/alerts", json=body, headers=admin)
    assert answer.status_code == 400, answer.get_json()
    assert field in answer.get_json()["error"]
    assert app.test_client().get("/api/v1/alerts", headers=admin).get_json() == []
    console(app).engine.dispose()


def test_smtp_login_without_tls_is_refused_unless_allowed(
        tmp_path: Path, mail: tuple[Sink, int], capsys: pytest.CaptureFixture[str]) -> None:
    """#17.7: smtp_username with smtp_starttls = false sent the password in clear."""
    sink, port = mail
    app = create_app({"CESI_SETTINGS": settings(
        tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_username="alerts",
        smtp_password="secret"), "TESTING": True})
    assert "smtp_allow_plaintext" in capsys.readouterr().err  # said at start
    created = rule(app, name="r", kind="fatal", email_to="ops@example.org")
    admin = {"Authorization": f"Bearer {token_for(app, 'admin')}"}
    tested = app.test_client().post(f"/api/v1/alerts/{created['id']}/test", headers=admin)
    assert "without TLS" in tested.get_json()["email"]
    assert sink.messages == []  # not even connected to log in
    console(app).engine.dispose()
