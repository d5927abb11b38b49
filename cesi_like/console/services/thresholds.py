"""Memory and CPU rules: a process above its rule's `limit` for `duration_seconds` fires the
rule (once a window, as every rule), and with `action = restart` the sampler restarts it,
recorded as the rule's doing: superlance's memmon for the whole fleet. Below the limit again,
the problem is over and said so once.

The figures are cesi-agentd's `cesi.getProcessStats` (RSS of the process and its children;
CPU seconds, made a percentage of one core between two samples); a supervisord has no such
call, so these rules pass its nodes by, and the rule's page says so."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.models import AlertFiring, AlertRule, Node, NodeStatus, utcnow
from . import alerts


@dataclass(frozen=True)
class Reading:
    """One process in one sample: its memory (MB) and, from two samples, its CPU (%)."""

    group: str
    name: str
    pid: int
    rss_mb: float
    cpu_percent: float | None


def readings(before: dict[str, Any] | None, now: dict[str, Any]) -> list[Reading]:
    """The processes of a sample (`cesi.getProcessStats`), with CPU % against the one
    `before` it where the same pid was there (none for a process that restarted between)."""
    earlier = {(p["group"], p["name"]): p for p in (before or {}).get("processes", [])}
    seconds = now["now"] - (before or {}).get("now", now["now"])
    found = []
    for process in now["processes"]:
        if not process["pid"]:
            continue
        old = earlier.get((process["group"], process["name"]))
        cpu = None
        if old is not None and old["pid"] == process["pid"] and seconds > 0:
            cpu = max(0.0, (process["cpu_seconds"] - old["cpu_seconds"]) / seconds * 100)
        found.append(Reading(process["group"], process["name"], process["pid"],
                             process["rss_kb"] / 1024, cpu))
    return found


@dataclass
class Watch:
    """Since when each (rule, process) has been above its limit: a sampler's memory."""

    above: dict[tuple[int, str], float] = field(default_factory=dict)


@dataclass(frozen=True)
class Restart:
    """A restart a rule asks for: after the alert's transaction commits."""

    rule: str
    node: str
    group: str
    name: str
    why: str


def rules(db: Session) -> list[AlertRule]:
    """The memory and CPU rules that are on (read once a sampling round)."""
    return list(db.scalars(select(AlertRule).where(AlertRule.enabled.is_(True),
                                                   AlertRule.kind.in_(alerts.THRESHOLDS))))


def judge(db: Session, node: Node, found: list[Reading], watch: Watch, clock: float,
          now: datetime.datetime | None = None,
          enabled: list[AlertRule] | None = None) -> list[Restart]:
    """Judge the memory and CPU rules (`enabled`, else read now) on a node's sample (`clock`:
    monotonic seconds); what fires or ends waits on the session like any alert; the restarts
    to make are returned."""
    now = now or utcnow()
    in_force = [rule for rule in (rules(db) if enabled is None else enabled)
                if alerts.in_scope(rule, node)]
    fired: list[alerts.Alert] = []
    restarts = []
    for rule in in_force:
        for reading in found:
            if rule.group is not None and reading.group != rule.group:
                continue
            value = reading.rss_mb if rule.kind == "memory" else reading.cpu_percent
            if value is None:
                continue
            subject = f"{node.name}/{reading.group}:{reading.name}"
            key = (rule.id, subject)
            unit = "MB" if rule.kind == "memory" else "% CPU"
            limit = rule.limit or 0.0
            if value > limit:
                since = watch.above.setdefault(key, clock)
                if clock - since < rule.duration_seconds:
                    continue
                text = (f"{reading.group}:{reading.name} on {node.name} uses {value:.1f} {unit} "
                        f"(more than {limit:g} for {int(clock - since)} s)")
                alert = alerts.fire(db, rule, subject, node.name, reading.group, reading.name,
                                    text, now)
                if alert is not None:
                    alert.state = "RUNNING"
                    fired.append(alert)
                    if rule.action == "restart":
                        restarts.append(Restart(rule.name, node.name, reading.group,
                                                reading.name, text))
            elif watch.above.pop(key, None) is not None:
                notice = _over(db, rule, subject, node.name, reading, value, unit, now)
                if notice is not None:
                    fired.append(notice)
    delivered = alerts.deliver_later(db, fired)
    return [r for r in restarts if any(a.subject == f"{r.node}/{r.group}:{r.name}"
                                       and a.rule == r.rule for a in delivered)]


def _over(db: Session, rule: AlertRule, subject: str, node: str, reading: Reading,
          value: float, unit: str, now: datetime.datetime) -> alerts.Alert | None:
    firing = db.scalar(select(AlertFiring).where(
        AlertFiring.rule_id == rule.id, AlertFiring.subject == subject,
        AlertFiring.resolved_at.is_(None)).limit(1))
    if firing is None:
        return None
    firing.resolved_at = now
    return alerts.notice(rule, subject, node, reading.group, reading.name,
                         f"resolved: {reading.group}:{reading.name} on {node} is back to "
                         f"{value:.1f} {unit} ({rule.kind} since "
                         f"{firing.time.isoformat(timespec='seconds')}Z)")


NOT_AVAILABLE = ("memory and CPU come from cesi-agentd: not available on {nodes} "
                 "(supervisord, or not answered yet)")


def not_available_on(db: Session, rule: AlertRule) -> list[str]:
    """The nodes of a memory or CPU rule's scope that cannot report the figures (supervisord,
    or not answered yet): said where the rule is made."""
    if rule.kind not in alerts.THRESHOLDS:
        return []
    agents = set(db.scalars(select(NodeStatus.node_id).where(
        NodeStatus.feed_token.is_not(None))))
    return [node.name for node in db.scalars(select(Node).order_by(Node.name))
            if alerts.in_scope(rule, node) and node.id not in agents]
