"""Alerts: rules over what the poller sees, delivered by webhook (JSON, HMAC-signed, retried)
and by email (SMTP), with the last lines of the program's stderr.

The poller that stores a poll evaluates the rules on the changes it found, in the same
transaction, so each change is judged once wherever the poller runs. A rule fires at most
once per subject (a process, or a node) per `window_minutes`, and at most `RULE_BURST` times
per window in all. Deliveries run on a small thread pool of their own: a webhook that hangs
or fails costs a delivery thread its timeout, never the poller. Every delivery, good or
failed, is in the activity log.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import smtplib
import time
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ...supervisor_rpc.node import NodeClient, NodeError
from ...supervisor_rpc.states import ProcessState
from ..storage.models import (
    AlertFiring,
    AlertRule,
    Environment,
    Node,
    NodeStatus,
    ProcessEvent,
    Role,
    utcnow,
)
from . import Forbidden, Invalid, NotFound, validate
from .activity import Actor, Result, record
from .snapshot import address

log = logging.getLogger("cesi_like.alerts")

KINDS = ("fatal", "crash", "flapping", "unreachable")
RULE_BURST = 20  # deliveries of one rule per window, whatever the subjects
ATTEMPTS = 3  # webhook tries, 1 s then 2 s apart
TIMEOUT = 5.0  # seconds per webhook try or SMTP conversation
STDERR_TAIL = 2048  # bytes of the program's stderr attached


@dataclass(frozen=True)
class Smtp:
    host: str | None = None
    port: int = 25
    sender: str = "cesi-like@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False


@dataclass
class Alert:
    """One delivery to make."""

    rule_id: int
    rule: str
    kind: str
    subject: str
    node: str
    group: str | None
    name: str | None
    text: str
    webhook_url: str | None
    webhook_secret: str | None
    email_to: str | None
    time: str = field(default_factory=lambda: utcnow().isoformat(timespec="seconds") + "Z")
    stderr: str = ""

    def payload(self) -> dict[str, Any]:
        return {"rule": self.rule, "kind": self.kind, "node": self.node, "group": self.group,
                "process": self.name, "text": self.text, "time": self.time,
                "stderr_tail": self.stderr}


# -- rules ---------------------------------------------------------------------------------

RULE_FIELDS = {"name", "kind", "environment", "group", "node", "threshold", "window_minutes",
               "unreachable_seconds", "webhook_url", "webhook_secret", "email_to", "enabled"}


def create_rule(db: Session, actor: Actor, fields: dict[str, Any], seal: Any) -> AlertRule:
    """A new rule from checked fields (admin); the webhook secret is sealed with `seal`."""
    _admin(db, actor)
    unknown = sorted(set(fields) - RULE_FIELDS)
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)[:200]}")
    name = validate.name(fields.get("name"), "rule name")
    if db.scalar(select(AlertRule).where(AlertRule.name == name)) is not None:
        raise Invalid(f"a rule {name} exists already")
    kind = fields.get("kind")
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}")
    rule = AlertRule(name=name, kind=kind,
                     enabled=validate.flag(fields.get("enabled", True), "enabled"))
    for key in ("environment", "node", "group"):
        value = fields.get(key)
        if value not in (None, ""):
            setattr(rule, key, validate.text(value, key, required=True)[:255])
    # a scope that names nothing would never fire, silently: environments and nodes must
    # exist (a group is whatever the nodes run, so any name may come to exist)
    for key, model in (("environment", Environment), ("node", Node)):
        wanted = getattr(rule, key)
        if wanted and db.scalar(select(model).where(model.name == wanted)) is None:
            raise Invalid(f"{key}: there is no {key} {wanted[:64]!r}")
    for key, low, high, default in (("threshold", 1, 1000, 3), ("window_minutes", 1, 10080, 10),
                                    ("unreachable_seconds", 1, 86400, 60)):
        setattr(rule, key, validate.whole(fields.get(key, default), key, low, high))
    url = fields.get("webhook_url") or None
    if url is not None and (not isinstance(url, str) or not url.startswith(
            ("http://", "https://")) or len(url) > 512):
        raise Invalid("webhook_url: an http:// or https:// URL")
    email = fields.get("email_to") or None
    if email is not None and (not isinstance(email, str) or "@" not in email
                              or len(email) > 512 or "\n" in email):
        raise Invalid("email_to: one or more addresses, comma-separated")
    if url is None and email is None:
        raise Invalid("give webhook_url, email_to or both: where the alert goes")
    secret = fields.get("webhook_secret") or None
    if secret is not None and not isinstance(secret, str):
        raise Invalid("webhook_secret: a string")
    rule.webhook_url, rule.email_to = url, email
    rule.webhook_secret = seal(secret) if secret else None
    db.add(rule)
    db.flush()
    record(db, actor, "alert.create", name, Result.OK, f"{kind}")
    return rule


def set_enabled(db: Session, actor: Actor, rule_id: int, fields: dict[str, Any]) -> AlertRule:
    """Turn a rule off or on again (admin): a noisy rule silenced for a maintenance keeps
    its settings, where deleting it would lose them."""
    _admin(db, actor)
    if set(fields) != {"enabled"}:
        raise Invalid("give enabled (true or false), and nothing else")
    rule = _rule(db, rule_id)
    rule.enabled = validate.flag(fields["enabled"], "enabled")
    record(db, actor, "alert.enable" if rule.enabled else "alert.disable", rule.name)
    return rule


def delete_rule(db: Session, actor: Actor, rule_id: int) -> None:
    _admin(db, actor)
    rule = _rule(db, rule_id)
    db.delete(rule)
    record(db, actor, "alert.delete", rule.name)


def rule_json(rule: AlertRule) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "kind": rule.kind,
            "environment": rule.environment, "group": rule.group, "node": rule.node,
            "threshold": rule.threshold, "window_minutes": rule.window_minutes,
            "unreachable_seconds": rule.unreachable_seconds, "webhook_url": rule.webhook_url,
            "has_webhook_secret": rule.webhook_secret is not None, "email_to": rule.email_to,
            "enabled": rule.enabled}


def test_alert(db: Session, actor: Actor, rule_id: int, reveal: Any) -> Alert:
    """A made-up alert of the rule, to check where it goes (admin; delivered like any)."""
    _admin(db, actor)
    rule = _rule(db, rule_id)
    record(db, actor, "alert.test", rule.name)
    return _alert(rule, f"test:{rule.id}", rule.node or "(test)", rule.group, None,
                  f"test of alert rule {rule.name}", reveal)


def _rule(db: Session, rule_id: int) -> AlertRule:
    rule = db.get(AlertRule, rule_id) if 0 < rule_id < 2**31 else None
    if rule is None:
        raise NotFound(f"no alert rule {rule_id}")
    return rule


def _admin(db: Session, actor: Actor) -> None:
    if actor.user is None or not actor.user.has_role(Role.ADMIN):
        record(db, actor, "alert.manage", "", Result.DENIED, "needs the admin role")
        db.commit()
        raise Forbidden("alert rules need the admin role")


# -- evaluation ----------------------------------------------------------------------------

def _started(event: ProcessEvent) -> bool:
    return (event.to_state == ProcessState.RUNNING and event.from_state is not None
            and event.from_state != ProcessState.RUNNING)


def _crashed(event: ProcessEvent) -> bool:
    if event.to_state == ProcessState.EXITED:
        return event.exitstatus != 0 and event.from_state in (ProcessState.RUNNING,
                                                              ProcessState.STARTING)
    return (event.to_state in (ProcessState.BACKOFF, ProcessState.FATAL)
            and event.from_state is not None and event.from_state != event.to_state)


def evaluate(db: Session, events: list[ProcessEvent], failing: list[int],
             reveal: Any, now: datetime.datetime | None = None) -> list[Alert]:
    """The alerts `events` (just stored, not yet committed) and the failing nodes' ids
    call for; their firings are added to `db` (committed with the poll)."""
    if not (events or failing):  # most batches: nothing changed, no query
        return []
    rules = list(db.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))))
    if not rules:
        return []
    now = now or utcnow()
    environments = _environments(db, {e.node for e in events}, failing)
    alerts = []
    for event in events:
        for rule in rules:
            if rule.kind == "unreachable" or not _scoped(rule, event.node, event.group,
                                                         environments):
                continue
            text = _process_text(db, rule, event, now)
            if text is not None:
                alerts.append(_fire(db, rule, f"{event.node}/{event.group}:{event.name}",
                                    event.node, event.group, event.name, text, now, reveal))
    for node_id in failing:
        status, node = db.get(NodeStatus, node_id), db.get(Node, node_id)
        if status is None or node is None or status.state == "online":
            continue
        for rule in rules:
            if rule.kind != "unreachable" or not _scoped(rule, node.name, None, environments):
                continue
            down = (now - status.since).total_seconds()
            # once per episode: not again unless the node answered since the last firing
            if down >= rule.unreachable_seconds and not _fired_since(
                    db, rule.id, node.name, status.since):
                alerts.append(_fire(db, rule, node.name, node.name, None, None,
                                    f"node {node.name} is {status.state} for {int(down)} s: "
                                    f"{status.reason}", now, reveal))
    return [alert for alert in alerts if alert is not None]


def _process_text(db: Session, rule: AlertRule, event: ProcessEvent,
                  now: datetime.datetime) -> str | None:
    spec = f"{event.group}:{event.name} on {event.node}"
    if rule.kind == "fatal" and event.to_state == ProcessState.FATAL \
            and event.from_state != ProcessState.FATAL:
        return f"{spec} entered FATAL (it could not be started)"
    if rule.kind == "crash" and _crashed(event):
        return (f"{spec} exited unexpectedly (exit status {event.exitstatus})"
                if event.to_state == ProcessState.EXITED else
                f"{spec} failed to start ({ProcessState(event.to_state).name})")
    if rule.kind == "flapping" and _started(event):
        since = now - datetime.timedelta(minutes=rule.window_minutes)
        db.flush()
        starts = db.scalar(select(func.count()).select_from(ProcessEvent).where(
            ProcessEvent.node == event.node, ProcessEvent.group == event.group,
            ProcessEvent.name == event.name, ProcessEvent.time >= since,
            ProcessEvent.to_state == ProcessState.RUNNING,
            ProcessEvent.from_state.is_not(None),
            ProcessEvent.from_state != ProcessState.RUNNING)) or 0
        if starts > rule.threshold:
            return (f"{spec} is flapping: {starts} starts in the last "
                    f"{rule.window_minutes} min (more than {rule.threshold})")
    return None


def _fire(db: Session, rule: AlertRule, subject: str, node: str, group: str | None,
          name: str | None, text: str, now: datetime.datetime, reveal: Any) -> Alert | None:
    since = now - datetime.timedelta(minutes=rule.window_minutes)
    if _fired_since(db, rule.id, subject, since):
        return None  # once per subject per window
    burst = db.scalar(select(func.count()).select_from(AlertFiring).where(
        AlertFiring.rule_id == rule.id, AlertFiring.time >= since)) or 0
    if burst >= RULE_BURST:
        return None
    db.add(AlertFiring(rule_id=rule.id, subject=subject[:600], time=now))
    db.flush()
    return _alert(rule, subject, node, group, name, text, reveal)


def _fired_since(db: Session, rule_id: int, subject: str, since: datetime.datetime) -> bool:
    return db.scalar(select(AlertFiring.id).where(
        AlertFiring.rule_id == rule_id, AlertFiring.subject == subject[:600],
        AlertFiring.time >= since).limit(1)) is not None


def _alert(rule: AlertRule, subject: str, node: str, group: str | None, name: str | None,
           text: str, reveal: Any) -> Alert:
    secret = reveal(rule.webhook_secret) if rule.webhook_secret else None
    return Alert(rule.id, rule.name, rule.kind, subject, node, group, name, text,
                 rule.webhook_url, secret, rule.email_to)


def _environments(db: Session, names: set[str], ids: list[int]) -> dict[str, set[str]]:
    nodes = db.scalars(select(Node).where(Node.name.in_(names) | Node.id.in_(ids)))
    return {node.name: {env.name for env in node.environments} for node in nodes}


def _scoped(rule: AlertRule, node: str, group: str | None,
            environments: dict[str, set[str]]) -> bool:
    return ((rule.node is None or rule.node == node)
            and (rule.group is None or rule.group == group)
            and (rule.environment is None or rule.environment in environments.get(node, ())))


# -- delivery ------------------------------------------------------------------------------

class Sender:
    """Delivers alerts off the poller's thread: the stderr tail from the node, then the
    webhook (retried) and the email; each outcome recorded in the activity log."""

    def __init__(self, sessions: sessionmaker[Session], client: NodeClient, smtp: Smtp,
                 activity_file: str | None = None, workers: int = 4) -> None:
        self.sessions = sessions
        self.client = client
        self.smtp = smtp
        self.activity_file = activity_file
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alert")

    def send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
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
            digest = hmac.new(alert.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
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
        if not self.smtp.host:
            return "no smtp_host configured"
        message = EmailMessage()
        message["Subject"] = f"[cesi-like] {alert.rule}: {alert.text}"[:300]
        message["From"] = self.smtp.sender
        message["To"] = alert.email_to or ""
        message.set_content(alert.text + "\n\n" + (
            f"Last lines of stderr:\n{alert.stderr}\n" if alert.stderr else "")
            + f"\nrule {alert.rule} ({alert.kind}), {alert.time}\n")
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=TIMEOUT) as smtp:
                if self.smtp.starttls:
                    smtp.starttls()
                if self.smtp.username:
                    smtp.login(self.smtp.username, self.smtp.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            return f"email failed: {type(exc).__name__}: {str(exc)[:200]}"
        return "ok"


class Alerter:
    """What the poller holds: judge a batch inside its transaction, send after commit."""

    def __init__(self, sender: Sender, reveal: Any) -> None:
        self.sender = sender
        self.reveal = reveal

    def judge(self, db: Session, events: list[ProcessEvent], failing: list[int]
              ) -> list[Alert]:
        try:
            return evaluate(db, events, failing, self.reveal)
        except Exception:  # a broken rule must not stop polls from being stored
            log.exception("alerts: evaluating the rules failed")
            return []

    def send(self, alerts: list[Alert]) -> None:
        self.sender.send(alerts)
