"""Alert delivery: the alerts a transaction fired (`services.alerts.judge`) go out once it
commits, by webhook (JSON, HMAC-signed, retried) and by email (SMTP), with the last lines of
the program's stderr.

Deliveries run on a small thread pool of their own: a webhook that hangs or fails costs a
delivery thread its timeout, never the poller or a request. Every delivery, good or failed, is
in the activity log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage

import requests
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from ...supervisor_rpc.node import NodeClient, NodeError
from ..services.activity import Actor, Result, record
from ..services.alerts import Alert, pending
from ..services.snapshot import address
from ..storage.models import Node

ATTEMPTS = 3  # webhook tries, 1 s then 2 s apart
TIMEOUT = 5.0  # seconds per webhook try or SMTP conversation
STDERR_TAIL = 2048  # bytes of the program's stderr attached
PLAINTEXT = ("refusing to send the SMTP password without TLS (set smtp_starttls = true, or "
             "smtp_allow_plaintext = true to send it in clear)")


@dataclass(frozen=True)
class Smtp:
    host: str | None = None
    port: int = 25
    sender: str = "cesi-like@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    allow_plaintext: bool = False

    def warn_at_start(self) -> None:
        """Say once, at start, that email alerts will not log in, rather than at each alert."""
        if self.host and self.username and not self.starttls and not self.allow_plaintext:
            print(f"cesi-like: warning: alert email will not be sent: smtp_username is set "
                  f"but smtp_starttls is false; {PLAINTEXT}", file=sys.stderr)


class Delivery:
    """Sends what each committed transaction fired (see `attach`), off the committing
    thread: the stderr tail from the node, then the webhook and the email."""

    def __init__(self, sessions: sessionmaker[Session], client: NodeClient, smtp: Smtp,
                 reveal: Callable[[str], str], activity_file: str | None = None,
                 workers: int = 4) -> None:
        self.sessions = sessions
        self.client = client
        self.smtp = smtp
        self.reveal = reveal
        self.activity_file = activity_file
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alert")
        event.listen(sessions, "after_commit", self._committed)
        event.listen(sessions, "after_rollback", pending)  # dropped with the transaction

    def _committed(self, db: Session) -> None:
        for alert in pending(db):
            self._pool.submit(self.deliver, alert)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def deliver(self, alert: Alert) -> dict[str, str]:
        """Deliver now, in this thread; `{channel: "ok" or the error}`."""
        if alert.name is not None and not alert.stderr:
            alert.stderr = self._stderr(alert)
        outcome = {}
        if alert.webhook_url:
            outcome["webhook"] = self._webhook(alert)
        if alert.email_to:
            outcome["email"] = self._email(alert)
        with self.sessions() as db:
            for channel, result in outcome.items():
                record(db, Actor(None, "", self.activity_file), f"alert.{channel}",
                       f"{alert.rule}: {alert.subject}"[:256],
                       Result.OK if result == "ok" else Result.FAILED,
                       alert.text if result == "ok" else f"{result}; {alert.text}",
                       username="(alerts)")
            db.commit()
        return outcome

    def _stderr(self, alert: Alert) -> str:
        with self.sessions() as db:
            node = db.scalar(select(Node).where(Node.name == alert.node))
            if node is None:
                return ""
            peer = address(node)
        try:
            answer = self.client.call(peer, "supervisor.tailProcessStderrLog",
                                      f"{alert.group}:{alert.name}", 0, STDERR_TAIL)
        except (NodeError, xmlrpc.client.Fault):
            return ""
        return str(answer[0])[-STDERR_TAIL:] if isinstance(answer, list) and answer else ""

    def _webhook(self, alert: Alert) -> str:
        body = json.dumps(alert.payload(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "cesi-like-alerts"}
        if alert.webhook_secret:
            key = self.reveal(alert.webhook_secret).encode()
            digest = hmac.new(key, body, hashlib.sha256).hexdigest()
            headers["X-Cesi-Signature"] = f"sha256={digest}"
        error = ""
        for attempt in range(ATTEMPTS):
            try:
                answer = requests.post(alert.webhook_url or "", data=body, headers=headers,
                                       timeout=TIMEOUT, allow_redirects=False)
                if answer.status_code < 300:
                    return "ok"
                error = f"HTTP {answer.status_code}"
            except requests.RequestException as exc:
                error = type(exc).__name__
            if attempt + 1 < ATTEMPTS:
                time.sleep(2 ** attempt)
        return f"webhook failed after {ATTEMPTS} tries: {error}"

    def _email(self, alert: Alert) -> str:
        smtp = self.smtp
        if not smtp.host:
            return "no smtp_host configured"
        if smtp.username and not smtp.starttls and not smtp.allow_plaintext:
            return f"email failed: {PLAINTEXT}"
        message = EmailMessage()
        message["Subject"] = f"[cesi-like] {alert.rule}: {alert.text}"[:300]
        message["From"] = smtp.sender
        message["To"] = alert.email_to or ""
        message.set_content(alert.text + "\n\n" + (
            f"Last lines of stderr:\n{alert.stderr}\n" if alert.stderr else "")
            + f"\nrule {alert.rule} ({alert.kind}), {alert.time}\n")
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT) as server:
                if smtp.starttls:
                    server.starttls()
                if smtp.username:
                    server.login(smtp.username, smtp.password or "")
                server.send_message(message)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            return f"email failed: {type(exc).__name__}: {str(exc)[:200]}"
        return "ok"
