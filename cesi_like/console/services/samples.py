"""CPU and memory history of agent nodes' processes, in a bounded store.

The sampler adds a raw row per running process per sample (`step` 0, every
`stats_interval`). `rollup` turns closed minutes of raw rows into minute means (`step` 60)
and closed ten-minute spans of those into ten-minute means (600), and drops what no chart
needs any more: raw rows after an hour, minute means after a day, ten-minute means after
`history_days`. So a process costs at most 3600/stats_interval + 1440 + 144 per day of
history rows, whatever the console's age. Charts read one resolution: 1 h raw, 24 h minutes,
7 d ten minutes."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...supervisor_rpc.states import ProcessState
from ..storage.models import NodeEvent, ProcessEvent, ProcessSample, ProcessSeries, utcnow
from . import Invalid

RAW, MINUTE, TEN_MINUTES = 0, 60, 600
SAMPLES = cast(Table, ProcessSample.__table__)
KEEP = {RAW: datetime.timedelta(hours=1), MINUTE: datetime.timedelta(days=1)}
RANGES = {"1h": (datetime.timedelta(hours=1), RAW), "24h": (datetime.timedelta(days=1), MINUTE),
          "7d": (datetime.timedelta(days=7), TEN_MINUTES)}
METRICS = ("cpu", "memory")


class Series:
    """The series ids of processes, remembered (a sampler's: one lookup per new process)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, str], int] = {}

    def ids(self, db: Session, wanted: set[tuple[str, str, str]]) -> dict[tuple[str, str, str],
                                                                          int]:
        missing = {key for key in wanted if key not in self._ids}
        if missing:
            nodes = {node for node, _, _ in missing}
            for row in db.execute(select(ProcessSeries.id, ProcessSeries.node,
                                         ProcessSeries.group, ProcessSeries.name).where(
                    ProcessSeries.node.in_(nodes))):
                self._ids[(row.node, row.group, row.name)] = row.id
            for node, group, name in sorted(k for k in missing if k not in self._ids):
                try:
                    with db.begin_nested():
                        created = ProcessSeries(node=node, group=group, name=name)
                        db.add(created)
                    self._ids[(node, group, name)] = created.id
                except IntegrityError:  # another console host named it first
                    self._ids[(node, group, name)] = db.scalar(select(ProcessSeries.id).where(
                        ProcessSeries.node == node, ProcessSeries.group == group,
                        ProcessSeries.name == name)) or 0
        return {key: self._ids[key] for key in wanted}


def rows(db: Session, series: Series, node: str, readings: Iterable[Any],
         when: datetime.datetime) -> list[dict[str, Any]]:
    """The raw rows of a node's sample, to `store` with others."""
    found = list(readings)
    ids = series.ids(db, {(node, r.group, r.name) for r in found})
    return [{"series_id": ids[(node, r.group, r.name)], "step": RAW, "time": when,
             "cpu": r.cpu_percent, "rss_kb": int(r.rss_mb * 1024)} for r in found]


def store(db: Session, batch: list[dict[str, Any]]) -> int:
    """Insert rows in one statement (not committed): a round of the fleet at once."""
    if batch:
        db.execute(insert(SAMPLES), batch)  # Core: no ORM bookkeeping per row
    return len(batch)


def add(db: Session, series: Series, node: str, readings: Iterable[Any],
        when: datetime.datetime) -> int:
    """One raw row per reading (not committed); how many."""
    return store(db, rows(db, series, node, readings, when))


def _floor(moment: datetime.datetime, seconds: int) -> datetime.datetime:
    epoch = int(moment.replace(tzinfo=datetime.UTC).timestamp())
    return datetime.datetime.fromtimestamp(epoch - epoch % seconds, datetime.UTC).replace(
        tzinfo=None)


def _roll(db: Session, source: int, target: int, now: datetime.datetime) -> int:
    """Means of `source` rows over closed `target` spans not rolled up yet."""
    end = _floor(now, target)
    last = db.scalar(select(func.max(ProcessSample.time)).where(ProcessSample.step == target))
    start = (last + datetime.timedelta(seconds=target)) if last is not None else None
    query = select(ProcessSample.series_id, ProcessSample.time, ProcessSample.cpu,
                   ProcessSample.rss_kb).where(ProcessSample.step == source,
                                               ProcessSample.time < end)
    if start is not None:
        query = query.where(ProcessSample.time >= start)
    sums: dict[tuple[int, datetime.datetime], list[float]] = defaultdict(
        lambda: [0.0, 0.0, 0.0, 0.0])  # cpu sum, cpu count, rss sum, count
    for series_id, time, cpu, rss in db.execute(query):
        acc = sums[(series_id, _floor(time, target))]
        if cpu is not None:
            acc[0] += cpu
            acc[1] += 1
        acc[2] += rss
        acc[3] += 1
    rows = [{"series_id": series_id, "step": target, "time": span,
             "cpu": acc[0] / acc[1] if acc[1] else None, "rss_kb": int(acc[2] / acc[3])}
            for (series_id, span), acc in sums.items()]
    return store(db, rows)


def rollup(db: Session, history_days: float, now: datetime.datetime | None = None
           ) -> dict[str, int]:
    """Minute and ten-minute means of what closed, and the pruning (committed); counts."""
    now = now or utcnow()
    made = {"minutes": _roll(db, RAW, MINUTE, now),
            "ten_minutes": _roll(db, MINUTE, TEN_MINUTES, now)}
    for step, age in ((RAW, KEEP[RAW]), (MINUTE, KEEP[MINUTE]),
                      (TEN_MINUTES, datetime.timedelta(days=history_days))):
        db.execute(delete(ProcessSample).where(ProcessSample.step == step,
                                               ProcessSample.time < now - age))
    db.commit()
    return made


def _span(metric: str, span: str, now: datetime.datetime | None
          ) -> tuple[int, datetime.datetime, datetime.datetime]:
    if metric not in METRICS:
        raise Invalid(f"metric: one of {', '.join(METRICS)}", "metric")
    if span not in RANGES:
        raise Invalid(f"range: one of {', '.join(RANGES)}", "range")
    length, step = RANGES[span]
    now = now or utcnow()
    return step, now - length, now


def _chart(metric: str, span: str, step: int, since: datetime.datetime,
           now: datetime.datetime, rows: Iterable[Any], states: list[list[Any]]
           ) -> dict[str, Any]:
    points = [[_epoch(time), (round(cpu, 2) if cpu is not None else None) if metric == "cpu"
               else round(rss / 1024, 2)] for time, cpu, rss in rows]
    return {"metric": metric, "range": span, "step": step or None, "from": _epoch(since),
            "to": _epoch(now), "points": points, "states": states}


def series(db: Session, node: str, group: str, name: str, metric: str, span: str,
           now: datetime.datetime | None = None) -> dict[str, Any]:
    """A process chart's data: `{metric, range, step, points: [[epoch seconds, value]],
    states}` where memory is MB, cpu % of a core, and `states` the process's changes over the
    range, `[epoch seconds, state name, exit status]` (and the state it was in when the range
    began) for its timeline."""
    step, since, now = _span(metric, span, now)
    series_id = db.scalar(select(ProcessSeries.id).where(
        ProcessSeries.node == node, ProcessSeries.group == group, ProcessSeries.name == name))
    rows = db.execute(select(ProcessSample.time, ProcessSample.cpu, ProcessSample.rss_kb).where(
        ProcessSample.series_id == series_id, ProcessSample.step == step,
        ProcessSample.time >= since).order_by(ProcessSample.time))
    of_process = (ProcessEvent.node == node, ProcessEvent.group == group,
                  ProcessEvent.name == name)
    events = list(db.scalars(select(ProcessEvent).where(
        *of_process, ProcessEvent.time >= since).order_by(ProcessEvent.time, ProcessEvent.id)))
    before = db.scalar(select(ProcessEvent).where(*of_process, ProcessEvent.time < since)
                       .order_by(ProcessEvent.time.desc(), ProcessEvent.id.desc()).limit(1))
    states = ([[_epoch(since), _state(before.to_state), before.exitstatus]]
              if before is not None else []) + [
        [_epoch(e.time), _state(e.to_state), e.exitstatus] for e in events]
    return _chart(metric, span, step, since, now, rows, states)


def node_series(db: Session, node: str, metric: str, span: str,
                now: datetime.datetime | None = None) -> dict[str, Any]:
    """A node chart's data: the sum over its processes at each time, and the node's own
    state changes (ONLINE, UNREACHABLE, HUNG...) for its timeline."""
    step, since, now = _span(metric, span, now)
    ids = select(ProcessSeries.id).where(ProcessSeries.node == node)
    cpu = func.sum(ProcessSample.cpu) if metric == "cpu" else func.min(ProcessSample.cpu)
    rows = db.execute(select(ProcessSample.time, cpu, func.sum(ProcessSample.rss_kb)).where(
        ProcessSample.series_id.in_(ids), ProcessSample.step == step,
        ProcessSample.time >= since).group_by(ProcessSample.time).order_by(ProcessSample.time))
    events = list(db.scalars(select(NodeEvent).where(
        NodeEvent.node == node, NodeEvent.time >= since).order_by(NodeEvent.time, NodeEvent.id)))
    before = db.scalar(select(NodeEvent).where(NodeEvent.node == node, NodeEvent.time < since)
                       .order_by(NodeEvent.time.desc(), NodeEvent.id.desc()).limit(1))
    states = ([[_epoch(since), before.to_state.upper(), 0]] if before is not None else []) + [
        [_epoch(e.time), e.to_state.upper(), 0] for e in events]
    return _chart(metric, span, step, since, now, rows, states)


def _state(code: int) -> str:
    try:
        return ProcessState(code).name
    except ValueError:
        return str(code)


def _epoch(moment: datetime.datetime) -> float:
    return moment.replace(tzinfo=datetime.UTC).timestamp()
