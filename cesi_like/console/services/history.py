"""History from the poller's records: per process, how often it started, crashed and went
FATAL over the last hour, day and week; per node, how long it has been in its state and how
much of each window it answered. Old records are pruned after `history_days`.

Everything here is what the poller recorded: every change of a cesi-agentd (its change feed
lists them); of a supervisord, what its snapshots show: a restart quicker than a poll interval
still counts (it is recorded under the new pid), a crash and restart both between two polls
does not.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from sqlalchemy import Delete, and_, delete, func, or_, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ...supervisor_rpc.node import NodeState
from ...supervisor_rpc.states import ProcessState
from ..storage.models import AlertFiring, Job, NodeEvent, ProcessEvent, utcnow

WINDOWS = {"1h": datetime.timedelta(hours=1), "24h": datetime.timedelta(days=1),
           "7d": datetime.timedelta(days=7)}

_event = ProcessEvent
# came up: RUNNING from anything but RUNNING (first sightings are not starts)
STARTED = and_(_event.to_state == ProcessState.RUNNING, _event.from_state.is_not(None),
               _event.from_state != ProcessState.RUNNING)
# went down unasked: a non-zero exit of a started process, or a start that failed
CRASHED = or_(
    and_(_event.to_state == ProcessState.EXITED, _event.exitstatus != 0,
         _event.from_state.in_([ProcessState.RUNNING, ProcessState.STARTING])),
    and_(_event.to_state.in_([ProcessState.BACKOFF, ProcessState.FATAL]),
         _event.from_state.is_not(None), _event.from_state != _event.to_state))
FATAL = and_(_event.to_state == ProcessState.FATAL, _event.from_state.is_not(None),
             _event.from_state != ProcessState.FATAL)


def process_counts(db: Session, node: str, group: str, name: str,
                   now: datetime.datetime | None = None) -> dict[str, dict[str, int]]:
    """`{"1h": {"starts", "crashes", "fatals"}, "24h": ..., "7d": ...}`."""
    now = now or utcnow()
    counts: dict[str, dict[str, int]] = {}
    where = (_event.node == node, _event.group == group, _event.name == name)
    for window, span in WINDOWS.items():
        since = now - span
        row = db.execute(select(
            func.count().filter(STARTED), func.count().filter(CRASHED),
            func.count().filter(FATAL)).where(*where, _event.time >= since)).one()
        counts[window] = {"starts": row[0], "crashes": row[1], "fatals": row[2]}
    return counts


def node_reachability(db: Session, node: str, current: str, since: datetime.datetime | None,
                      now: datetime.datetime | None = None) -> dict[str, Any]:
    """How long the node has been `current`, and the share of each window it was online
    (from its recorded state changes; None for a window before the first record)."""
    now = now or utcnow()
    oldest = now - max(WINDOWS.values())
    events = list(db.scalars(select(NodeEvent).where(
        NodeEvent.node == node, NodeEvent.time >= oldest).order_by(NodeEvent.time)))
    before = db.scalar(select(NodeEvent).where(NodeEvent.node == node, NodeEvent.time < oldest)
                       .order_by(NodeEvent.time.desc()).limit(1))
    # the timeline: (start, state) spans, from the last change before the oldest window
    spans: list[tuple[datetime.datetime, str]] = []
    if before is not None:
        spans.append((oldest, before.to_state))
    spans += [(event.time, event.to_state) for event in events]
    online: dict[str, float | None] = {}
    for window, span in WINDOWS.items():
        start = now - span
        if not spans or spans[0][0] > start:
            first = spans[0][0] if spans else now
            start = first  # measured since the first record, if the window began earlier
        total = (now - start).total_seconds()
        up = 0.0
        for index, (began, state) in enumerate(spans):
            ended = spans[index + 1][0] if index + 1 < len(spans) else now
            overlap = (min(ended, now) - max(began, start)).total_seconds()
            if state == NodeState.ONLINE and overlap > 0:
                up += overlap
        online[window] = round(100 * up / total, 2) if total > 0 else None
    return {"state": current, "for_seconds": int((now - since).total_seconds())
            if since else None, "online_percent": online,
            "changes": [{"time": event.time.isoformat(timespec="seconds") + "Z",
                         "from": event.from_state, "to": event.to_state,
                         "reason": event.reason} for event in reversed(events[-20:])]}


def prune(db: Session, days: float, now: datetime.datetime | None = None) -> dict[str, int]:
    """Delete state changes, finished jobs and ended alert firings older than `days` (an open
    firing stays: it is a problem still listed); the counts removed."""
    cutoff = (now or utcnow()) - datetime.timedelta(days=days)
    removed = {
        "process_events": _deleted(db, delete(ProcessEvent).where(ProcessEvent.time < cutoff)),
        "node_events": _deleted(db, delete(NodeEvent).where(NodeEvent.time < cutoff)),
        "jobs": _deleted(db, delete(Job).where(Job.finished.is_not(None),
                                               Job.finished < cutoff)),
        "alert_firings": _deleted(db, delete(AlertFiring).where(
            AlertFiring.resolved_at.is_not(None), AlertFiring.resolved_at < cutoff))}
    db.commit()
    return removed


def _deleted(db: Session, statement: Delete) -> int:
    result = cast(CursorResult[Any], db.execute(statement))
    return int(result.rowcount)
