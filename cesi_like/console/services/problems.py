"""What is wrong now, and keeping quiet about it on purpose.

An open problem is an alert that fired and whose condition has not ended (`AlertFiring`
without `resolved_at`): a FATAL or crashed process, one that flaps, a node that does not
answer. People acknowledge them (who, when, a note). A **silence** keeps a node, an
environment, a group or a rule quiet until a time, with a reason; a node in **maintenance** is
quiet until it leaves it (and rolling restarts pass it). What is silenced still opens a
problem (the page lists it, marked); it is not delivered, and the activity log says why
(`alert.silenced`)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.models import AlertFiring, AlertRule, Node, Silence, utcnow
from . import Invalid, NotFound, access, validate
from .access import Permission
from .activity import Actor, record

KINDS = ("node", "environment", "group", "rule")
MAX_MINUTES = 60 * 24 * 90  # a silence lasts at most 90 days: nobody forgets one for ever


@dataclass(frozen=True)
class OpenProblem:
    firing: AlertFiring
    rule: AlertRule
    node: str
    process: str | None  # group:name, or None for a node problem
    muted: str | None  # why nothing is delivered about it now (a silence, maintenance)


def _subject(subject: str) -> tuple[str, str | None]:
    node, _, process = subject.partition("/")
    return node, process or None


def open_problems(db: Session, actor: Actor) -> list[OpenProblem]:
    """The open problems on nodes in the actor's scope, newest first."""
    nodes = {node.name: node for node in access.nodes(db, actor)}
    found = []
    for firing, rule in db.execute(select(AlertFiring, AlertRule).join(AlertRule).where(
            AlertFiring.resolved_at.is_(None)).order_by(AlertFiring.time.desc())).all():
        node, process = _subject(firing.subject)
        if node not in nodes:
            continue
        group = process.split(":", 1)[0] if process else None
        found.append(OpenProblem(firing, rule, node, process,
                                 muted(db, rule, nodes[node], group)))
    return found


def acknowledge(db: Session, actor: Actor, firing_id: int, note: Any) -> AlertFiring:
    """Say you are on it (operator, in scope; not committed)."""
    access.require(db, actor, Permission.ALERTS, "problem.ack")
    firing = db.get(AlertFiring, firing_id) if 0 < firing_id < 2**31 else None
    if firing is None or firing.resolved_at is not None:
        raise NotFound(f"no open problem {firing_id}")
    node, _ = _subject(firing.subject)
    access.node(db, actor, node, Permission.ALERTS, "problem.ack", firing.subject)
    firing.ack_by, firing.ack_at = actor.username, utcnow()
    firing.ack_note = validate.text(note or "", "note", limit=2000)
    record(db, actor, "problem.ack", firing.subject, detail=firing.ack_note or "")
    return firing


def active_silences(db: Session, now: datetime.datetime | None = None) -> list[Silence]:
    now = now or utcnow()
    return list(db.scalars(select(Silence).where(Silence.until > now, Silence.ended.is_(None))
                           .order_by(Silence.until)))


def silences(db: Session, actor: Actor) -> list[Silence]:
    """The silences in force that the actor may see: its scope's nodes and environments,
    every group and rule silence."""
    access.require(db, actor, Permission.FLEET, "silence.list")
    nodes = {node.name for node in access.nodes(db, actor)}
    envs = {env.name for env in access.environments(db, actor)}
    return [s for s in active_silences(db) if (s.kind != "node" or s.target in nodes)
            and (s.kind != "environment" or s.target in envs)]


def silence(db: Session, actor: Actor, kind: Any, target: Any, minutes: Any,
            reason: Any) -> Silence:
    """Keep `target` quiet for `minutes` (operator; a rule: admin); not committed."""
    access.require(db, actor, Permission.ALERTS, "silence.create")
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}", "kind")
    name = validate.text(target, "target", limit=255, required=True)
    if kind == "node":
        name = access.node(db, actor, name, Permission.ALERTS, "silence.create").name
    elif kind == "environment":
        name = access.environment(db, actor, name).name
    elif kind == "group":
        from .alerts import known_groups

        if name not in known_groups(db):
            raise Invalid(f"target: no node runs a group {name[:64]!r} (as of the last poll)",
                          "target")
    else:
        access.require(db, actor, Permission.ALERT_RULES, "silence.create", name)
        if not name.isdigit() or db.get(AlertRule, int(name)) is None:
            raise Invalid(f"target: no alert rule {name[:20]!r} (give its id)", "target")
    length = validate.whole(minutes, "minutes", 1, MAX_MINUTES)
    why = validate.text(reason, "reason", limit=2000, required=True)
    found = Silence(kind=kind, target=name, reason=why, created_by=actor.username,
                    created=utcnow(), until=utcnow() + datetime.timedelta(minutes=length))
    db.add(found)
    db.flush()
    record(db, actor, "silence.create", f"{kind} {name}",
           detail=f"until {found.until.isoformat(timespec='minutes')}Z: {why}")
    return found


def end_silence(db: Session, actor: Actor, silence_id: int) -> Silence:
    """End a silence early (operator; not committed)."""
    access.require(db, actor, Permission.ALERTS, "silence.end")
    found = db.get(Silence, silence_id) if 0 < silence_id < 2**31 else None
    visible = {s.id for s in silences(db, actor)}
    if found is None or found.id not in visible:
        raise NotFound(f"no silence {silence_id} in force")
    if found.kind == "rule":
        access.require(db, actor, Permission.ALERT_RULES, "silence.end", found.target)
    found.ended = utcnow()
    record(db, actor, "silence.end", f"{found.kind} {found.target}")
    return found


def set_maintenance(db: Session, actor: Actor, node_name: str, on: Any, note: Any) -> Node:
    """Put a node in maintenance or take it out (operator, in scope; not committed)."""
    node = access.node(db, actor, node_name, Permission.ALERTS, "node.maintenance")
    node.maintenance = validate.flag(on, "on")
    node.maintenance_note = validate.text(note or "", "note", limit=2000) if node.maintenance \
        else ""
    record(db, actor, "node.maintenance", node.name,
           detail=("on: " + node.maintenance_note) if node.maintenance else "off")
    return node


def muted(db: Session, rule: AlertRule, node: Node | None, group: str | None,
          now: datetime.datetime | None = None) -> str | None:
    """Why an alert of `rule` about `node` (and `group`) is not to be delivered now: the node
    is in maintenance or a silence covers it; None when it is to go out."""
    if node is not None and node.maintenance:
        return f"node {node.name} is in maintenance" + (
            f" ({node.maintenance_note})" if node.maintenance_note else "")
    environments = {env.name for env in node.environments} if node is not None else set()
    for found in active_silences(db, now):
        hit = ((found.kind == "node" and node is not None and found.target == node.name)
               or (found.kind == "environment" and found.target in environments)
               or (found.kind == "group" and found.target == group)
               or (found.kind == "rule" and found.target == str(rule.id)))
        if hit:
            return (f"silenced ({found.kind} {found.target}) by {found.created_by} until "
                    f"{found.until.isoformat(timespec='minutes')}Z: {found.reason}")
    return None


def maintenance_nodes(db: Session, actor: Actor) -> list[Node]:
    """Nodes in maintenance in the actor's scope (the banner on every page)."""
    return [node for node in access.nodes(db, actor) if node.maintenance]
