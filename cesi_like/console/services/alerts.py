"""Alert rules, and judging them on what a stored poll changed.

Whoever stores a node's answer (the poller, an action's re-poll, a node test, a config apply)
does it through `snapshot.store`, which judges the rules on the changes it found, in the same
transaction: each change is judged once, wherever and by whom it was seen. A rule fires at
most once per subject (a process, or a node) per `window_minutes`, and at most `RULE_BURST`
times per window in all. The alerts a transaction fires wait on its session and go out once
it commits (`workers/alerts.py` delivers them: webhook, email, with the stderr tail).
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...supervisor_rpc.node import NodeState
from ...supervisor_rpc.states import ProcessState
from ..storage.models import (
    AlertFiring,
    AlertRule,
    Environment,
    Node,
    NodeStatus,
    ProcessEvent,
    utcnow,
)
from . import Invalid, NotFound, access, channels, problems, validate
from .access import Permission
from .activity import Actor, Result, record

log = logging.getLogger("cesi_like.alerts")

KINDS = ("fatal", "crash", "flapping", "unreachable", "memory", "cpu")
THRESHOLDS = ("memory", "cpu")  # judged on cesi-agentd's stats (services/thresholds.py)
ACTIONS = ("none", "restart")
RULE_BURST = 20  # deliveries of one rule per window, whatever the subjects
PENDING = "cesi_like.alerts"  # where a session keeps the alerts it fired until it commits


@dataclass
class Alert:
    """One delivery to make; the webhook secret stays sealed until it is sent."""

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
    notify: str | None = None  # the rule's Apprise URLs, sealed
    state: str | None = None  # the process's state the alert is about (FATAL, EXITED...)
    exitstatus: int | None = None
    time: str = field(default_factory=lambda: utcnow().isoformat(timespec="seconds") + "Z")
    stderr: str = ""
    link: str = ""  # the process's (or node's) page, when `external_url` is set
    resolved: bool = False  # the notice that the condition it fired for has ended

    def payload(self) -> dict[str, Any]:
        return {"rule": self.rule, "kind": self.kind, "node": self.node, "group": self.group,
                "process": self.name, "state": self.state, "exitstatus": self.exitstatus,
                "text": self.text, "time": self.time, "stderr_tail": self.stderr,
                "link": self.link or None, "resolved": self.resolved}


# -- rules ---------------------------------------------------------------------------------

RULE_FIELDS = {"name", "kind", "environment", "group", "node", "threshold", "window_minutes",
               "unreachable_seconds", "webhook_url", "webhook_secret", "email_to", "notify",
               "enabled", "limit", "duration_seconds", "action"}


def create_rule(db: Session, actor: Actor, fields: dict[str, Any],
                seal: Callable[[str], str]) -> AlertRule:
    """A new rule from checked fields (admin); the webhook secret and the Apprise URLs are
    sealed with `seal`."""
    access.require(db, actor, Permission.ALERT_RULES, "alert.create")
    rule = AlertRule(enabled=True)
    _apply(db, rule, fields, seal, creating=True)
    db.add(rule)
    db.flush()
    record(db, actor, "alert.create", rule.name, Result.OK, f"{rule.kind}")
    return rule


def update_rule(db: Session, actor: Actor, rule_id: int, fields: dict[str, Any],
                seal: Callable[[str], str]) -> AlertRule:
    """Change what is given of a rule (admin): every field, checked as when it was made;
    the rest stays. `webhook_secret` "" or null removes the secret, `notify` replaces the
    list. A refusal changes nothing."""
    access.require(db, actor, Permission.ALERT_RULES, "alert.update")
    rule = _rule(db, rule_id)
    if not fields:
        raise Invalid("give the fields to change")
    changed = _apply(db, rule, fields, seal, creating=False)
    if set(fields) == {"enabled"}:  # the switch alone: said as the page's button says it
        record(db, actor, "alert.enable" if rule.enabled else "alert.disable", rule.name)
    else:
        record(db, actor, "alert.update", rule.name, Result.OK, ", ".join(changed))
    return rule


def known_groups(db: Session) -> set[str]:
    """The process groups some node ran at its last poll."""
    groups: set[str] = set()
    for processes in db.scalars(select(NodeStatus.processes)):
        groups.update(process["group"] for process in json.loads(processes or "[]"))
    return groups


def _apply(db: Session, rule: AlertRule, fields: dict[str, Any],
           seal: Callable[[str], str], creating: bool) -> list[str]:
    """Check `fields` and set them on `rule` (all of them or none); the names of those that
    changed. A scope names what exists (an environment, a node, a group some node runs): a
    rule that names nothing would never fire, silently."""
    validate.fields(fields, RULE_FIELDS)

    def given(key: str) -> bool:  # a new rule takes every field, its default if missing
        return creating or key in fields

    values: dict[str, Any] = {}
    if given("name"):
        name = validate.name(fields.get("name"), "name")
        clash = db.scalar(select(AlertRule).where(AlertRule.name == name))
        if clash is not None and clash is not rule:
            raise Invalid(f"a rule {name} exists already")
        values["name"] = name
    if given("kind"):
        if fields.get("kind") not in KINDS:
            raise Invalid(f"kind: one of {', '.join(KINDS)}")
        values["kind"] = fields["kind"]
    if "enabled" in fields:
        values["enabled"] = validate.flag(fields["enabled"], "enabled")
    for key in ("environment", "node", "group"):
        if not given(key):
            continue
        value = fields.get(key)
        values[key] = None if value in (None, "") else validate.text(value, key, limit=255,
                                                                     required=True)
    for key, model in (("environment", Environment), ("node", Node)):
        wanted = values.get(key)
        if wanted and db.scalar(select(model).where(model.name == wanted)) is None:
            raise Invalid(f"{key}: there is no {key} {wanted[:64]!r}")
    if values.get("group") and values["group"] not in known_groups(db):
        raise Invalid(f"group: no node runs a group {values['group'][:64]!r} (as of the last "
                      "poll)")
    for key, low, high, default in (("threshold", 1, 1000, 3), ("window_minutes", 1, 10080, 10),
                                    ("unreachable_seconds", 1, 86400, 60),
                                    ("duration_seconds", 1, 86400, 60)):
        if given(key):
            values[key] = validate.whole(fields.get(key, default), key, low, high)
    if given("action"):
        if fields.get("action", "none") not in ACTIONS:
            raise Invalid(f"action: one of {', '.join(ACTIONS)}")
        values["action"] = fields.get("action", "none")
    if given("limit"):
        limit = fields.get("limit")
        values["limit"] = None if limit in (None, "") else validate.number(
            limit, "limit", 0.001, 10**7)
    kind = values.get("kind", rule.kind)
    if kind in THRESHOLDS and values.get("limit", rule.limit) is None:
        raise Invalid(f"limit: a {kind} rule needs its limit "
                      f"({'MB' if kind == 'memory' else 'percent of a core'})")
    if values.get("action", rule.action) == "restart" and kind not in THRESHOLDS:
        raise Invalid("action restart: only memory and cpu rules restart a process")
    # these end up in HTTP and mail headers: no control or line-separator character at all
    if given("webhook_url"):
        url = validate.text(fields.get("webhook_url"), "webhook_url", limit=512) or None
        if url is not None and not url.startswith(("http://", "https://")):
            raise Invalid("webhook_url: an http:// or https:// URL")
        values["webhook_url"] = url
    if given("email_to"):
        email = validate.text(fields.get("email_to"), "email_to", limit=512) or None
        if email is not None and "@" not in email:
            raise Invalid("email_to: one or more addresses, comma-separated")
        values["email_to"] = email
    if given("notify"):
        notify = channels.check(fields.get("notify"))
        values["notify"] = seal(json.dumps(notify)) if notify else None
    if given("webhook_secret"):
        secret = validate.text(fields.get("webhook_secret"), "webhook_secret") or None
        values["webhook_secret"] = seal(secret) if secret else None
    after = {key: values.get(key, getattr(rule, key))
             for key in ("webhook_url", "email_to", "notify")}
    if not any(after.values()):
        raise Invalid("give webhook_url, email_to or notify (Apprise URLs): where the alert "
                      "goes")
    changed = [key for key, value in values.items() if getattr(rule, key) != value]
    for key, value in values.items():
        setattr(rule, key, value)
    return sorted(changed)


def preview(db: Session, actor: Actor, rule_id: int) -> dict[str, Any]:
    """What the rule watches now (admin): the nodes of its scope, and for a process rule
    their processes in it, from the last poll, with those already in a state it is about."""
    access.require(db, actor, Permission.ALERT_RULES, "alert.list")
    rule = _rule(db, rule_id)
    nodes = [node for node in db.scalars(select(Node).order_by(Node.name))
             if in_scope(rule, node)]  # the group is checked per process
    found: dict[str, Any] = {"nodes": [node.name for node in nodes], "processes": [],
                             "now": []}
    if rule.kind == "unreachable":
        for node in nodes:
            status = db.get(NodeStatus, node.id)
            if status is not None and status.state != NodeState.ONLINE:
                found["now"].append(f"{node.name}: {status.state}")
        return found
    for node in nodes:
        status = db.get(NodeStatus, node.id)
        for process in json.loads(status.processes) if status is not None else []:
            if rule.group is not None and process["group"] != rule.group:
                continue
            spec = f"{node.name}/{process['group']}:{process['name']}"
            found["processes"].append(spec)
            if process["statename"] in ("FATAL", "BACKOFF") or (
                    rule.kind == "crash" and process["statename"] == "EXITED"
                    and process.get("exitstatus")):
                found["now"].append(f"{spec}: {process['statename']}")
    return found


def delete_rule(db: Session, actor: Actor, rule_id: int) -> None:
    access.require(db, actor, Permission.ALERT_RULES, "alert.delete")
    rule = _rule(db, rule_id)
    db.delete(rule)
    record(db, actor, "alert.delete", rule.name)


def notify_shown(rule: AlertRule, reveal: Callable[[str], str]) -> list[str]:
    """The rule's Apprise URLs as they may be shown: scheme and host."""
    return [channels.shown(url) for url in json.loads(reveal(rule.notify))] if rule.notify \
        else []


def rule_json(rule: AlertRule, reveal: Callable[[str], str]) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "kind": rule.kind,
            "environment": rule.environment, "group": rule.group, "node": rule.node,
            "threshold": rule.threshold, "window_minutes": rule.window_minutes,
            "unreachable_seconds": rule.unreachable_seconds, "webhook_url": rule.webhook_url,
            "has_webhook_secret": rule.webhook_secret is not None, "email_to": rule.email_to,
            "notify": notify_shown(rule, reveal), "enabled": rule.enabled,
            "limit": rule.limit, "duration_seconds": rule.duration_seconds,
            "action": rule.action}


def rules(db: Session, actor: Actor) -> list[AlertRule]:
    """Every rule, by name (admin)."""
    access.require(db, actor, Permission.ALERT_RULES, "alert.list")
    return list(db.scalars(select(AlertRule).order_by(AlertRule.name)))


def test_alert(db: Session, actor: Actor, rule_id: int) -> Alert:
    """A made-up alert of the rule, to check where it goes (admin; delivered like any)."""
    access.require(db, actor, Permission.ALERT_RULES, "alert.test")
    rule = _rule(db, rule_id)
    record(db, actor, "alert.test", rule.name)
    return _alert(rule, f"test:{rule.id}", rule.node or "(test)", rule.group, None,
                  f"test of alert rule {rule.name}")


def rule(db: Session, actor: Actor, rule_id: int) -> AlertRule:
    """One rule (admin)."""
    access.require(db, actor, Permission.ALERT_RULES, "alert.list")
    return _rule(db, rule_id)


def _rule(db: Session, rule_id: int) -> AlertRule:
    rule = db.get(AlertRule, rule_id) if 0 < rule_id < 2**31 else None
    if rule is None:
        raise NotFound(f"no alert rule {rule_id}")
    return rule


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


def judge(db: Session, events: list[ProcessEvent], failing: list[int],
          answered: list[int] | None = None) -> None:
    """Judge the rules on a poll's changes (just stored, not yet committed), the failing
    nodes' ids and the ids of those that answered; what fires, and the notices of what ended,
    wait on the session until it commits (see `pending`). A broken rule must not stop the
    poll from being stored: it is logged."""
    try:
        deliver_later(db, evaluate(db, events, failing) + resolve(db, events, answered or []))
    except Exception:
        log.exception("alerts: evaluating the rules failed")


def deliver_later(db: Session, fired: list[Alert]) -> list[Alert]:
    """Queue what fired on the session, to go out when it commits, but what a silence or
    maintenance keeps in; the alerts queued."""
    kept = [alert for alert in fired if not _silenced(db, alert)]
    if kept:
        db.info.setdefault(PENDING, []).extend(kept)
    return kept


def _silenced(db: Session, alert: Alert) -> bool:
    """Whether a silence or maintenance keeps this alert in (recorded, with the reason: the
    problem is still open and listed, only nobody is paged)."""
    rule = db.get(AlertRule, alert.rule_id)
    node = db.scalar(select(Node).where(Node.name == alert.node))
    why = problems.muted(db, rule, node, alert.group) if rule is not None else None
    if why is not None:
        record(db, Actor(None, "", None), "alert.silenced", f"{alert.rule}: {alert.subject}",
               Result.OK, f"{why}; {alert.text}", username="(alerts)")
    return why is not None


def pending(db: Session) -> list[Alert]:
    """Take the alerts the session's transaction fired (at its commit; dropped on rollback)."""
    fired: list[Alert] = db.info.pop(PENDING, [])
    return fired


def evaluate(db: Session, events: list[ProcessEvent], failing: list[int],
             now: datetime.datetime | None = None) -> list[Alert]:
    """The alerts `events` (just stored, not yet committed) and the failing nodes' ids
    call for; their firings are added to `db` (committed with the poll)."""
    if not (events or failing):  # most batches: nothing changed, no query
        return []
    rules = list(db.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))))
    if not rules:
        return []
    now = now or utcnow()
    environments = _environments(db, {e.node for e in events}, failing)
    alerts: list[Alert | None] = []
    for event in events:
        for rule in rules:
            if rule.kind == "unreachable" or not _scoped(rule, event.node, event.group,
                                                         environments):
                continue
            text = _process_text(db, rule, event, now)
            fired = None if text is None else fire(
                db, rule, f"{event.node}/{event.group}:{event.name}", event.node, event.group,
                event.name, text, now)
            if fired is not None:
                fired.state = _statename(event.to_state)
                fired.exitstatus = event.exitstatus
                alerts.append(fired)
    for node_id in failing:
        status, node = db.get(NodeStatus, node_id), db.get(Node, node_id)
        if status is None or node is None or status.state == NodeState.ONLINE:
            continue
        for rule in rules:
            if rule.kind != "unreachable" or not _scoped(rule, node.name, None, environments):
                continue
            down = (now - status.since).total_seconds()
            # once per episode: not again unless the node answered since the last firing
            if down >= rule.unreachable_seconds and not _fired_since(
                    db, rule.id, node.name, status.since):
                alerts.append(fire(db, rule, node.name, node.name, None, None,
                                    f"node {node.name} is {status.state} for {int(down)} s: "
                                    f"{status.reason}", now))
    return [alert for alert in alerts if alert is not None]


def resolve(db: Session, events: list[ProcessEvent], answered: list[int],
            now: datetime.datetime | None = None) -> list[Alert]:
    """The open firings whose condition these changes end, closed, each with its notice:
    a process alert (fatal, crash) when the process is RUNNING again, an unreachable one when
    the node answers again, and a flapping one when the process runs with no more starts in
    the window than the rule allows: at a start, or, as a process that settled makes no
    more changes, whenever its node answers. Most batches: one query that finds nothing
    open."""
    last = {f"{e.node}/{e.group}:{e.name}": e for e in events}  # in the order they happened
    running = {subject: e for subject, e in last.items() if e.to_state == ProcessState.RUNNING}
    if not (running or answered):
        return []
    now = now or utcnow()
    answering = set(db.scalars(select(Node.name).where(Node.id.in_(answered)))) \
        if answered else set()
    subjects = set(running) | answering
    open_ = list(db.execute(select(AlertFiring, AlertRule).join(AlertRule).where(
        AlertFiring.resolved_at.is_(None),
        AlertFiring.subject.in_(subjects) | (AlertRule.kind == "flapping"))).all())
    notices = []
    for firing, rule in open_:
        if rule.kind in THRESHOLDS:  # over when the stats say so (services/thresholds.py)
            continue
        if rule.kind == "unreachable":
            if firing.subject not in answering:
                continue
            node, group, name = firing.subject, None, None
            text = f"node {node} answers again"
        else:
            node, _, spec = firing.subject.partition("/")
            group, _, name = spec.partition(":")  # as supervisord splits a name
            event = running.get(firing.subject)
            if event is None and rule.kind == "flapping" and node in answering:
                event = _settled(db, node, group, name)
            if event is None:
                continue
            if rule.kind == "flapping":
                starts = _starts(db, node, group, name, rule, now)
                if starts > rule.threshold:
                    continue
                text = (f"{spec} on {node} is RUNNING (pid {event.pid}) with {starts} "
                        f"starts in the last {rule.window_minutes} min")
            else:
                text = f"{spec} on {node} is RUNNING again (pid {event.pid})"
        firing.resolved_at = now
        notices.append(notice(rule, firing.subject, node, group, name,
                              f"resolved: {text} ({rule.kind} since "
                              f"{firing.time.isoformat(timespec='seconds')}Z)"))
    return notices


def _settled(db: Session, node: str, group: str, name: str) -> ProcessEvent | None:
    """The process's last recorded change when it left it RUNNING, else None."""
    newest = db.scalar(select(ProcessEvent).where(
        ProcessEvent.node == node, ProcessEvent.group == group, ProcessEvent.name == name)
        .order_by(ProcessEvent.time.desc(), ProcessEvent.id.desc()).limit(1))
    return newest if newest is not None and newest.to_state == ProcessState.RUNNING else None


def notice(rule: AlertRule, subject: str, node: str, group: str | None, name: str | None,
           text: str) -> Alert:
    """The "resolved" notice of a firing that ended."""
    found = _alert(rule, subject, node, group, name, text)
    found.resolved, found.state = True, "RUNNING" if name else None
    return found


def _starts(db: Session, node: str, group: str, name: str, rule: AlertRule,
            now: datetime.datetime) -> int:
    """How often the process came up in the rule's window (its flapping count)."""
    since = now - datetime.timedelta(minutes=rule.window_minutes)
    db.flush()
    return db.scalar(select(func.count()).select_from(ProcessEvent).where(
        ProcessEvent.node == node, ProcessEvent.group == group,
        ProcessEvent.name == name, ProcessEvent.time >= since,
        ProcessEvent.to_state == ProcessState.RUNNING,
        ProcessEvent.from_state.is_not(None),
        ProcessEvent.from_state != ProcessState.RUNNING)) or 0


def _statename(code: int) -> str:
    try:
        return ProcessState(code).name
    except ValueError:
        return str(code)


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
        starts = _starts(db, event.node, event.group, event.name, rule, now)
        if starts > rule.threshold:
            return (f"{spec} is flapping: {starts} starts in the last "
                    f"{rule.window_minutes} min (more than {rule.threshold})")
    return None


def fire(db: Session, rule: AlertRule, subject: str, node: str, group: str | None,
         name: str | None, text: str, now: datetime.datetime) -> Alert | None:
    """The alert of `rule` about `subject`, its firing added; None when it fired for the
    subject in this window already, or fired its burst."""
    since = now - datetime.timedelta(minutes=rule.window_minutes)
    if _fired_since(db, rule.id, subject, since):
        return None  # once per subject per window
    burst = db.scalar(select(func.count()).select_from(AlertFiring).where(
        AlertFiring.rule_id == rule.id, AlertFiring.time >= since)) or 0
    if burst >= RULE_BURST:
        return None
    db.add(AlertFiring(rule_id=rule.id, subject=subject[:600], time=now))
    db.flush()
    return _alert(rule, subject, node, group, name, text)


def _fired_since(db: Session, rule_id: int, subject: str, since: datetime.datetime) -> bool:
    return db.scalar(select(AlertFiring.id).where(
        AlertFiring.rule_id == rule_id, AlertFiring.subject == subject[:600],
        AlertFiring.time >= since).limit(1)) is not None


def _alert(rule: AlertRule, subject: str, node: str, group: str | None, name: str | None,
           text: str) -> Alert:
    return Alert(rule.id, rule.name, rule.kind, subject, node, group, name, text,
                 rule.webhook_url, rule.webhook_secret, rule.email_to, rule.notify)


def _environments(db: Session, names: set[str], ids: list[int]) -> dict[str, set[str]]:
    nodes = db.scalars(select(Node).where(Node.name.in_(names) | Node.id.in_(ids)))
    return {node.name: {env.name for env in node.environments} for node in nodes}


def in_scope(rule: AlertRule, node: Node) -> bool:
    """Whether a node is in the rule's scope (its node and environment; any group)."""
    return _scoped(rule, node.name, rule.group,
                   {node.name: {env.name for env in node.environments}})


def _scoped(rule: AlertRule, node: str, group: str | None,
            environments: dict[str, set[str]]) -> bool:
    return ((rule.node is None or rule.node == node)
            and (rule.group is None or rule.group == group)
            and (rule.environment is None or rule.environment in environments.get(node, ())))
