"""Alert delivery: the alerts a transaction fired (`services.alerts.judge`) go out once it
commits, by webhook (JSON, HMAC-signed, retried), by email (SMTP) and to each of the rule's
Apprise URLs (Slack, Teams, PagerDuty, ntfy...), with the last lines of the program's stderr
and a link to its page (`external_url`).

Deliveries run on a small thread pool of their own: a webhook that hangs or fails costs a
delivery thread its timeout, never the poller or a request. The alerts of one subject (a
process, a node) go out one after the other, in the order they fired, so a "resolved" never
overtakes the alert it ends. Every delivery, good or failed, is in the activity log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import sys
import threading
import time
import xmlrpc.client
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote

import apprise
import requests
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from ...supervisor_rpc.node import NodeClient, NodeError
from ..services import channels
from ..services.activity import Actor, Result, record
from ..services.alerts import Alert, pending
from ..services.snapshot import address
from ..storage.models import Node

log = logging.getLogger("cesi_like.alerts")
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
                 workers: int = 4, external_url: str | None = None) -> None:
        self.sessions = sessions
        self.external_url = (external_url or "").rstrip("/")
        self.client = client
        self.smtp = smtp
        self.reveal = reveal
        self.activity_file = activity_file
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alert")
        self._queues: dict[str, deque[Alert]] = {}  # subject -> alerts waiting their turn
        self._lock = threading.Lock()
        event.listen(sessions, "after_commit", self._committed)
        event.listen(sessions, "after_rollback", pending)  # dropped with the transaction

    def _committed(self, db: Session) -> None:
        for alert in pending(db):
            with self._lock:
                queue = self._queues.get(alert.subject)
                if queue is not None:  # its subject's turn is running: it goes after
                    queue.append(alert)
                    continue
                self._queues[alert.subject] = deque([alert])
            self._pool.submit(self._drain, alert.subject)

    def _drain(self, subject: str) -> None:
        """Deliver a subject's alerts in order, until none is waiting."""
        while True:
            with self._lock:
                queue = self._queues[subject]
                if not queue:
                    del self._queues[subject]
                    return
                alert = queue.popleft()
            try:
                self.deliver(alert)
            except Exception:  # one bad delivery must not strand the rest of the queue
                log.exception("alerts: delivering %s failed", alert.subject)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def deliver(self, alert: Alert) -> dict[str, str]:
        """Deliver now, in this thread; `{channel: "ok" or the error}`."""
        if alert.name is not None and not alert.stderr and not alert.resolved:
            alert.stderr = self._stderr(alert)
        if self.external_url and not alert.link:
            alert.link = self.external_url + (
                f"/nodes/{quote(alert.node)}/processes/{quote(f'{alert.group}:{alert.name}')}"
                if alert.name is not None else f"/nodes/{quote(alert.node)}")
        outcome = {}
        if alert.webhook_url:
            outcome["webhook"] = self._webhook(alert)
        if alert.email_to:
            outcome["email"] = self._email(alert)
        if alert.notify:
            for url in json.loads(self.reveal(alert.notify)):
                channel, same = f"notify {channels.shown(url)}", 1
                while channel in outcome:  # two URLs that show alike: told apart by number
                    same += 1
                    channel = f"notify {channels.shown(url)} ({same})"
                outcome[channel] = self._apprise(url, alert)
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

    def _apprise(self, url: str, alert: Alert) -> str:
        """One Apprise URL: "ok", or what Apprise logged about the failure. Sent as a failure
        (pagers open an incident for it: Opsgenie's default mapping closes one on "info"),
        a resolved notice as a success (which closes it),
        and with Apprise's store in memory: a console writes nothing under $HOME."""
        service = apprise.Apprise(asset=apprise.AppriseAsset(
            storage_mode=apprise.PersistentStoreMode.MEMORY))
        if not service.add(url):
            return "Apprise no longer accepts this URL"
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            sent = service.notify(
                title=_subject(alert)[:250], body=_message(alert),
                body_format=apprise.NotifyFormat.TEXT,
                notify_type=apprise.NotifyType.SUCCESS if alert.resolved
                else apprise.NotifyType.FAILURE)
        if sent:
            return "ok"
        # the last thing Apprise logged, without its time and level
        lines = [line.split(" - ", 2)[-1].strip() for line in captured.getvalue().splitlines()
                 if line.strip()]
        return f"failed: {lines[-1][:300] if lines else 'Apprise could not deliver it'}"

    def _email(self, alert: Alert) -> str:
        smtp = self.smtp
        if not smtp.host:
            return "no smtp_host configured"
        if smtp.username and not smtp.starttls and not smtp.allow_plaintext:
            return f"email failed: {PLAINTEXT}"
        message = EmailMessage()
        message["Subject"] = _subject(alert)[:300]
        message["From"] = smtp.sender
        message["To"] = alert.email_to or ""
        message.set_content(_message(alert))
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


def _subject(alert: Alert) -> str:
    return f"[cesi-like] {'RESOLVED ' if alert.resolved else ''}{alert.rule}: {alert.text}"


def _message(alert: Alert) -> str:
    """The alert as text: what happened, the process's state and exit status, the link to its
    page, the last lines of its stderr."""
    lines = [alert.text, ""]
    where = f"{alert.group}:{alert.name} on {alert.node}" if alert.name else alert.node
    lines.append(f"{where}" + (f": {alert.state}" if alert.state else "")
                 + (f", exit status {alert.exitstatus}" if alert.exitstatus is not None
                    and alert.state in ("EXITED", "FATAL", "BACKOFF") else ""))
    if alert.link:
        lines.append(alert.link)
    if alert.stderr:
        lines += ["", "Last lines of stderr:", alert.stderr.rstrip("\n")]
    lines += ["", f"rule {alert.rule} ({alert.kind}), {alert.time}"]
    return "\n".join(lines) + "\n"
