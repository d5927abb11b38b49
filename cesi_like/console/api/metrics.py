"""`/metrics`: the fleet in Prometheus' text format (prometheus-client), read from the
database at scrape time, so every console host answers the same.

Allowed with a login or an API token (a read-only one is enough), or without either from the
addresses of the `metrics_allow` setting (a Prometheus server that cannot send a token, which
sees the whole console). A user sees what the rest of the console shows them: the nodes of
their environments, the jobs they may see, and the activity counts of the activity log if
they may read it, else their own. Every label takes a bounded set of values (node, group and
process names, states, and the kinds of actions; never a path or free text).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...supervisor_rpc.node import NodeState
from ..context import actor
from ..services import access, history
from ..services.access import Permission
from ..services.activity import ACTIONS, Actor, Result
from ..storage import db as database
from ..storage.models import (
    ActivityLog,
    Job,
    NodeStatus,
    ProcessEvent,
    ProcessSample,
    ProcessSeries,
    utcnow,
)

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response | tuple[Response, int]:
    if current_user.is_authenticated:
        who = actor()
    elif _allowed(request.remote_addr or ""):
        who = Actor(None, request.remote_addr or "", local=True)  # a trusted scraper
    else:
        response = jsonify(error="authentication required (a token, or an address in "
                                 "metrics_allow)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="cesi-like"'
        return response, 401
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(database.session(), who))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _allowed(address: str) -> bool:
    networks = current_app.config.get("CESI_METRICS_ALLOW", ())
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(client in network for network in networks)


def parse_allow(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`metrics_allow`: addresses or networks, comma-separated (ValueError names a bad one)."""
    networks = []
    for part in (piece.strip() for piece in text.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not an address or network: {part[:64]!r}") from None
    return tuple(networks)


class FleetCollector(Collector):
    """Collects at scrape time from the poller's snapshot, the state changes it recorded,
    the activity log and the jobs."""

    def __init__(self, db: Session, who: Actor) -> None:
        self.db = db
        self.who = who

    def collect(self) -> Iterator[Metric]:
        db = self.db
        nodes = access.nodes(db, self.who)
        names = {node.name for node in nodes}
        statuses = {status.node_id: status for status in db.scalars(select(NodeStatus))}
        now = utcnow()
        up = GaugeMetricFamily("cesi_node_up", "1 when the node answered its last poll",
                               labels=["node"])
        state = GaugeMetricFamily("cesi_node_state", "the node's state (1 for the current)",
                                  labels=["node", "state"])
        age = GaugeMetricFamily("cesi_node_last_success_age_seconds",
                                "seconds since the node last answered a poll",
                                labels=["node"])
        poll = GaugeMetricFamily("cesi_node_poll_duration_seconds",
                                 "how long the node's last poll took", labels=["node"])
        processes = GaugeMetricFamily("cesi_processes", "processes by state",
                                      labels=["node", "group", "state"])
        uptime = GaugeMetricFamily("cesi_process_uptime_seconds",
                                   "seconds a RUNNING process has been up",
                                   labels=["node", "group", "name"])
        for node in nodes:
            status = statuses.get(node.id)
            current = NodeState.DISABLED if not node.enabled else (
                status.state if status else NodeState.UNKNOWN)
            up.add_metric([node.name], 1.0 if current == NodeState.ONLINE else 0.0)
            state.add_metric([node.name, current], 1.0)
            if status is None:
                continue
            if status.last_ok is not None:
                age.add_metric([node.name], (now - status.last_ok).total_seconds())
            if status.poll_ms is not None:
                poll.add_metric([node.name], status.poll_ms / 1000)
            counts: dict[tuple[str, str], int] = {}
            for process in json.loads(status.processes or "[]"):
                key = (process["group"], process["statename"])
                counts[key] = counts.get(key, 0) + 1
                if process["statename"] == "RUNNING" and process["start"]:
                    uptime.add_metric([node.name, process["group"], process["name"]],
                                      max(process["now"] - process["start"], 0))
            for (group, statename), count in sorted(counts.items()):
                processes.add_metric([node.name, group, statename], count)
        yield from (up, state, age, poll, processes, uptime)
        yield from self._resources(names)
        yield from self._changes(names)
        yield from self._actions()
        yield self._jobs()

    def _resources(self, names: set[str]) -> Iterator[Metric]:
        """The latest stored sample of each process of a cesi-agentd node in scope."""
        memory = GaugeMetricFamily("cesi_process_memory_bytes", "RSS of the process and its "
                                   "children, at the last sample", labels=["node", "group",
                                                                           "name"])
        cpu = GaugeMetricFamily("cesi_process_cpu_percent", "CPU, % of one core, between "
                                "the last two samples", labels=["node", "group", "name"])
        newest = select(ProcessSample.series_id, func.max(ProcessSample.time).label("time")
                        ).where(ProcessSample.step == 0).group_by(
            ProcessSample.series_id).subquery()
        for node, group, name, rss_kb, percent in self.db.execute(
                select(ProcessSeries.node, ProcessSeries.group, ProcessSeries.name,
                       ProcessSample.rss_kb, ProcessSample.cpu)
                .join(ProcessSample, ProcessSample.series_id == ProcessSeries.id)
                .join(newest, (newest.c.series_id == ProcessSample.series_id)
                      & (newest.c.time == ProcessSample.time))
                .where(ProcessSample.step == 0)):
            if node in names:
                memory.add_metric([node, group, name], rss_kb * 1024)
                if percent is not None:
                    cpu.add_metric([node, group, name], percent)
        yield from (memory, cpu)

    def _changes(self, names: set[str]) -> Iterator[Metric]:
        """Starts: each time the poller saw a process come up (RUNNING from anything but
        RUNNING; a restart quicker than a poll is recorded as one too). Crashes: an exit
        with a non-zero status from a started process, or a start that failed (BACKOFF,
        FATAL). Both count what the poller saw, since the records were kept."""
        event = ProcessEvent
        started, crashed = history.STARTED, history.CRASHED
        for metric, help_text, condition in (
                ("cesi_process_starts", "times the poller saw a process start", started),
                ("cesi_process_crashes", "times a process exited with a non-zero status or "
                 "failed to start", crashed)):
            family = CounterMetricFamily(metric, help_text, labels=["node", "group", "name"])
            for node, group, name, count in self.db.execute(
                    select(event.node, event.group, event.name, func.count())
                    .where(condition).group_by(event.node, event.group, event.name)):
                if node in names:
                    family.add_metric([node, group, name], count)
            yield family

    def _actions(self) -> Iterator[Metric]:
        """Entries of the activity log by kind (`process.signal KILL` counts as
        `process.signal`; a kind the console does not record is `other`) and result; only
        the user's own unless they may read the activity log."""
        family = CounterMetricFamily("cesi_actions", "actions recorded in the activity log "
                                     "by kind and result", labels=["action", "result"])
        query = select(ActivityLog.action, ActivityLog.result, func.count()).group_by(
            ActivityLog.action, ActivityLog.result)
        if not access.allows(self.who, Permission.ACTIVITY):
            query = query.where(ActivityLog.username == self.who.username)
        counts: dict[tuple[str, str], int] = {}
        for action, result, count in self.db.execute(query):
            kind = action.split(" ", 1)[0]
            key = (kind if kind in ACTIONS else "other",
                   result if result in set(Result) else "other")
            counts[key] = counts.get(key, 0) + count
        for (kind, result), count in sorted(counts.items()):
            family.add_metric([kind, result], count)
        yield family

    def _jobs(self) -> Metric:
        family = GaugeMetricFamily("cesi_jobs", "jobs by kind and state",
                                   labels=["kind", "state"])
        user = self.who.user
        if self.who.local or (user is not None and access.unscoped(user)):  # sees every job
            counts = {(kind, state): count for kind, state, count in self.db.execute(
                select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))}
        else:
            counts = {}
            for job in self.db.scalars(select(Job)):
                if access.sees_job(self.who, job):
                    counts[(job.kind, job.state)] = counts.get((job.kind, job.state), 0) + 1
        for (kind, state), count in sorted(counts.items()):
            family.add_metric([kind, state], count)
        return family


