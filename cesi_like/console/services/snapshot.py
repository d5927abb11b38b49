"""The fleet snapshot: how a node's answer becomes what pages and the API read.

`store` is the one path from a poll to the database, whoever asked the node (the poller, an
action's re-poll, a node test, a config apply): the outcome (a checked `Snapshot`, an
`Unchanged` from the change feed, or a `NodeError`) is written to `node_status`, every process
state change it reveals becomes a `ProcessEvent`, and the alert rules are judged on those
changes in the same transaction. Readers never talk to a node: they join nodes with their
status rows, so a page costs the same whether nodes are fast, hung or hostile.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from ...supervisor_rpc.node import (
    NodeAddress,
    NodeClient,
    NodeError,
    NodeState,
    Snapshot,
    Unchanged,
)
from ...supervisor_rpc.schema import running_description
from ...supervisor_rpc.states import ProcessState
from ..storage.models import Node, NodeEvent, NodeStatus, ProcessEvent, utcnow
from . import alerts

Outcome = Snapshot | Unchanged | NodeError

# what the console keeps of each process: Supervisor's getProcessInfo keys minus the log paths
# (paths on the node's disk are no business of the console's users)
PROCESS_KEYS = ("name", "group", "description", "start", "stop", "now", "state", "statename",
                "spawnerr", "exitstatus", "pid")


def address(node: Node) -> NodeAddress:
    """How to reach a node, from its row (the row stays in the caller's thread)."""
    verify: bool | str = (node.ca_file or True) if node.verify_tls else False
    return NodeAddress(node.name, node.url, node.username, node.password, verify,
                       node.client_cert)


@dataclass(frozen=True)
class Poll:
    """One node's answer (or why there was none), from whoever asked."""

    node_id: int
    node: str
    outcome: Outcome
    finished: datetime.datetime
    milliseconds: int | None = None
    asked: str = ""  # the change-feed token the poll sent


def ask(client: NodeClient, node_id: int, where: NodeAddress, asked: str = "",
        feed: bool | None = None) -> Poll:
    """Poll a node: through its change feed unless it is known to have none (`asked`: the
    token of the stored answer), else in full. Never raises: a failure is the outcome."""
    began = time.monotonic()
    outcome: Outcome | None = None
    try:
        if feed is not False:
            outcome = client.changes(where, asked)
        if outcome is None:
            outcome = client.snapshot(where)
    except NodeError as exc:
        outcome = exc
    elapsed = int((time.monotonic() - began) * 1000)
    return Poll(node_id, where.name, outcome, utcnow(), elapsed, asked)


def store(db: Session, polls: Iterable[Poll]) -> set[int]:
    """Write polls (not committed) and judge the alert rules on the changes they show; the
    alerts go out when the caller commits. A node deleted meanwhile is skipped. Returns the
    ids whose `Unchanged` answer found no stored snapshot to renew: poll those in full."""
    batch = list(polls)
    alive = set(db.scalars(select(Node.id).where(Node.id.in_([p.node_id for p in batch]))))
    renew: set[int] = set()
    events: list[ProcessEvent] = []
    failing, answered = [], []
    for poll in batch:
        if poll.node_id not in alive:
            continue
        stored = _store_one(db, poll)
        if stored is None:
            renew.add(poll.node_id)
        else:
            events += stored
        if isinstance(poll.outcome, NodeError):
            failing.append(poll.node_id)
        else:
            answered.append(poll.node_id)
    alerts.judge(db, events, failing, answered)
    return renew


def refresh(db: Session, client: NodeClient, node: Node,
            known: NodeError | None = None) -> Outcome:
    """Poll `node` now and store it (unless the caller just found it failing: `known`); the
    poller would, but a user is looking right now. A cesi-agentd is asked for its changes
    since the stored snapshot, so the changes an action made are recorded as the node made
    them (and the poller's next answer does not count them again)."""
    status = db.get(NodeStatus, node.id)
    asked = (status.feed_token if status is not None else None) or ""
    poll = Poll(node.id, node.name, known, utcnow()) if known is not None else ask(
        client, node.id, address(node), asked)
    if store(db, [poll]):
        return refresh_in_full(db, client, node)
    return poll.outcome


def refresh_in_full(db: Session, client: NodeClient, node: Node) -> Snapshot | NodeError:
    """Poll `node` with a whole snapshot and store it."""
    poll = ask(client, node.id, address(node), feed=False)
    store(db, [poll])
    assert not isinstance(poll.outcome, Unchanged)
    return poll.outcome


def _store_one(db: Session, poll: Poll) -> list[ProcessEvent] | None:
    """Write one poll's outcome and the state changes it shows. `asked`: the change-feed
    token the poll sent; the node's list of changes since it is used only if the stored
    snapshot is the one that token stands for (an action's re-poll may have stored a newer
    one meanwhile, whose changes the list repeats). None when the outcome is Unchanged but
    the stored snapshot is not the one it renews."""
    node_id, node_name, result, finished = poll.node_id, poll.node, poll.outcome, poll.finished
    poll_ms, asked = poll.milliseconds, poll.asked
    status = db.get(NodeStatus, node_id)
    if isinstance(result, Unchanged) and (status is None or status.last_ok is None
                                          or status.feed_token != result.token):
        return None
    state = result.state if isinstance(result, NodeError) else NodeState.ONLINE
    reason = result.reason if isinstance(result, NodeError) else ""
    if status is None:
        status = NodeStatus(node_id=node_id, state=state, since=finished, polled_at=finished,
                            processes="[]", process_count=0, reason="")
        db.add(status)
        db.add(NodeEvent(time=finished, node=node_name, from_state=None, to_state=state,
                         reason=reason[:1000]))
    elif status.state != state:
        db.add(NodeEvent(time=finished, node=node_name, from_state=status.state,
                         to_state=state, reason=reason[:1000]))
        status.since = finished
    status.state = state
    status.polled_at = finished
    status.poll_ms = poll_ms
    if isinstance(result, NodeError):
        status.reason = result.reason  # the last good processes stay, shown as stale
        status.feed_token = None
        return []
    events: list[ProcessEvent] = []
    if isinstance(result, Snapshot):
        processes = [{key: getattr(info, key) for key in PROCESS_KEYS}
                     for info in result.processes]
        listed = result.transitions is not None and bool(asked) \
            and status.feed_token == asked
        events = _changes(node_name, json.loads(status.processes), processes, finished,
                          not listed)
        if listed:  # what happened between the polls, as it did
            events += _transitions(node_name, result, finished)
        db.add_all(events)
    else:
        processes = _renewed(json.loads(status.processes), result.now)
    status.reason = ""
    status.feed_token = result.token or None
    status.last_ok = finished
    status.version = result.version
    status.supervisor_state = result.supervisor_state
    status.processes = json.dumps(processes, separators=(",", ":"))
    status.process_count = len(processes)
    return events


def _renewed(processes: list[dict[str, Any]], now: int) -> list[dict[str, Any]]:
    """A stored snapshot moved to the node's clock `now`: what the node would have answered
    in full, since only the clock moved (a RUNNING process's description shows its uptime)."""
    for process in processes:
        process["now"] = now
        if process["state"] == ProcessState.RUNNING:
            process["description"] = running_description(process["pid"], process["start"], now)
    return processes


def _changes(node: str, before: list[dict[str, Any]], after: list[dict[str, Any]],
             when: datetime.datetime, compare: bool = True) -> list[ProcessEvent]:
    """The state changes between two polls (with `compare` false, only the processes seen
    for the first time: the node listed the changes itself). A process RUNNING both times
    under another pid was restarted between them (quicker than a poll interval): recorded as
    a change from STOPPED, so restart counts and history do not miss it. Whether that
    restart followed a crash a snapshot cannot tell (Supervisor clears `exitstatus` when it
    spawns); cesi-agentd's list of changes can."""
    previous = {(p["group"], p["name"]): p for p in before}
    events = []
    for process in after:
        old = previous.get((process["group"], process["name"]))
        if old is not None and not compare:
            continue
        from_state = None if old is None else old["state"]
        if old is not None and from_state == process["state"] == ProcessState.RUNNING \
                and old["pid"] != process["pid"]:
            from_state = ProcessState.STOPPED
        elif from_state == process["state"]:
            continue
        events.append(ProcessEvent(time=when, node=node, group=process["group"],
                                   name=process["name"], from_state=from_state,
                                   to_state=process["state"], pid=process["pid"],
                                   exitstatus=process["exitstatus"]))
    return events


def _transitions(node: str, result: Snapshot, finished: datetime.datetime
                 ) -> list[ProcessEvent]:
    """The node's own list of state changes since the last poll, timed on the console's
    clock (the node's may be off: each change is placed as long before `finished` as it was
    before the node's `now`)."""
    assert result.transitions is not None
    # `now` is whole seconds: a change in the current second may be a little after it
    now = max([result.now or 0, *(t.time for t in result.transitions)])
    return [ProcessEvent(
        time=finished - datetime.timedelta(seconds=min(max(now - t.time, 0.0), 86400.0)),
        node=node, group=t.group, name=t.name, from_state=t.from_state, to_state=t.to_state,
        pid=t.pid, exitstatus=t.exitstatus) for t in result.transitions]


@dataclass
class NodeView:
    """A node as pages and the API show it."""

    node: Node
    state: str
    reason: str
    since: datetime.datetime | None
    polled_at: datetime.datetime | None
    last_ok: datetime.datetime | None
    version: str | None
    stale: bool
    processes: list[dict[str, Any]] = field(default_factory=list)
    agent: bool = False  # its last answer came through cesi-agentd's change feed

    @property
    def name(self) -> str:
        return self.node.name

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for process in self.processes:
            counts[process["statename"]] = counts.get(process["statename"], 0) + 1
        return counts


@dataclass(frozen=True)
class Freshness:
    """How old a good answer may be before it counts as stale."""

    poll_interval: float
    node_timeout: float

    def stale(self, state: str, last_ok: datetime.datetime | None,
              now: datetime.datetime) -> bool:
        if state != NodeState.ONLINE or last_ok is None:
            return True
        allowed = 2 * self.poll_interval + self.node_timeout
        return (now - last_ok).total_seconds() > allowed


class SnapshotCache:
    """Each console process's memo of decoded snapshots, keyed by the poll that produced them.

    A snapshot changes only when its node's `last_ok` does, while pages and API calls read it
    many times per poll interval: decoding (and, for the API, encoding) each node's processes
    once per poll instead of once per request keeps a 1,000-node fleet list cheap.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoded: dict[int, tuple[datetime.datetime | None, list[dict[str, Any]]]] = {}
        self._encoded: dict[int, tuple[tuple[Any, ...], str]] = {}

    def get(self, node_id: int, last_ok: datetime.datetime | None) -> list[dict[str, Any]] | None:
        found = self._decoded.get(node_id)
        return found[1] if found is not None and found[0] == last_ok else None

    def put(self, node_id: int, last_ok: datetime.datetime | None,
            processes: list[dict[str, Any]]) -> None:
        with self._lock:
            self._decoded[node_id] = (last_ok, processes)

    def api_json(self, view: NodeView) -> str:
        """The view's processes as `GET /api/v1/processes` rows, JSON, without brackets."""
        key = (view.last_ok, view.stale, view.name)
        found = self._encoded.get(view.node.id)
        if found is not None and found[0] == key:
            return found[1]
        text = ",".join(json.dumps({"node": view.name, **process, "stale": view.stale},
                                   sort_keys=True, separators=(",", ":"))
                        for process in view.processes)
        with self._lock:
            self._encoded[view.node.id] = (key, text)
        return text


def view(db: Session, nodes: Sequence[Node], freshness: Freshness,
         cache: SnapshotCache | None = None) -> list[NodeView]:
    """The snapshot of `nodes`, in their order. A node never polled yet is `unknown`."""
    ids = [node.id for node in nodes]
    statuses = {s.node_id: s for s in db.scalars(
        select(NodeStatus).where(NodeStatus.node_id.in_(ids))
        .options(defer(NodeStatus.processes)))} if ids else {}
    cache = cache or SnapshotCache()
    # take each hit now: another request may replace the entry with a newer poll meanwhile
    found: dict[int, list[dict[str, Any]]] = {}
    missing = []
    for node_id, known in statuses.items():
        cached = cache.get(node_id, known.last_ok)
        if cached is None:
            missing.append(node_id)
        else:
            found[node_id] = cached
    for start in range(0, len(missing), 500):  # stay under every database's parameter limit
        for node_id, last_ok, text in db.execute(
                select(NodeStatus.node_id, NodeStatus.last_ok, NodeStatus.processes)
                .where(NodeStatus.node_id.in_(missing[start:start + 500]))):
            found[node_id] = json.loads(text)  # perhaps a poll newer than `statuses`
            cache.put(node_id, last_ok, found[node_id])
    now = utcnow()
    views = []
    for node in nodes:
        status = statuses.get(node.id)
        if not node.enabled:
            state, reason = NodeState.DISABLED.value, "disabled by an admin"
        elif status is None:
            state, reason = NodeState.UNKNOWN.value, "not polled yet"
        else:
            state, reason = status.state, status.reason
        last_ok = status.last_ok if status else None
        views.append(NodeView(
            node=node, state=state, reason=reason, since=status.since if status else None,
            polled_at=status.polled_at if status else None, last_ok=last_ok,
            version=status.version if status else None,
            stale=freshness.stale(state, last_ok, now),
            processes=found.get(node.id, []),
            agent=status is not None and status.feed_token is not None))
    return views


@dataclass(frozen=True)
class ProcessFilter:
    """The fleet page's and `GET /api/v1/processes`' filters; empty means any."""

    node: str = ""
    environment: str = ""
    group: str = ""
    state: str = ""  # a statename (RUNNING) or a class: running, stopped, failed
    search: str = ""

    @classmethod
    def from_query(cls, values: Mapping[str, str]) -> ProcessFilter:
        """From a page's or the API's query string (or a form's copy of it; `q`: search)."""
        return cls(node=values.get("node", ""), environment=values.get("environment", ""),
                   group=values.get("group", ""), state=values.get("state", ""),
                   search=values.get("q", "")[:200])

    def nodes(self, nodes: Iterable[Node]) -> list[Node]:
        return [node for node in nodes
                if (not self.node or node.name == self.node)
                and (not self.environment
                     or any(env.name == self.environment for env in node.environments))]

    def per_process(self) -> bool:
        """Whether any filter looks inside a node (else whole nodes match or not)."""
        return bool(self.group or self.state or self.search)

    def match(self, process: dict[str, Any]) -> bool:
        if self.group and process["group"] != self.group:
            return False
        if self.state and not _state_matches(self.state, process["state"]):
            return False
        if self.search:
            needle = self.search.lower()
            return needle in f"{process['group']}:{process['name']}".lower() or \
                needle in process["description"].lower()
        return True


STATE_CLASSES = {
    "running": {ProcessState.RUNNING},
    "starting": {ProcessState.STARTING, ProcessState.BACKOFF},
    "stopped": {ProcessState.STOPPED, ProcessState.EXITED, ProcessState.STOPPING},
    "failed": {ProcessState.FATAL, ProcessState.UNKNOWN, ProcessState.BACKOFF},
}


def _state_matches(wanted: str, state: int) -> bool:
    if wanted.lower() in STATE_CLASSES:
        return state in STATE_CLASSES[wanted.lower()]
    return wanted.upper() == ProcessState(state).name


def processes(views: Iterable[NodeView], where: ProcessFilter) -> list[dict[str, Any]]:
    """Every matching process of `views`, as the API lists them (node and stale added)."""
    rows = []
    for node_view in views:
        for process in node_view.processes:
            if where.match(process):
                rows.append({"node": node_view.name, **process, "stale": node_view.stale})
    return rows


@dataclass(frozen=True)
class Found:
    """What a fleet-wide search finds, each list by name: nodes, groups (with the nodes that
    run them) and processes."""

    nodes: list[NodeView]
    groups: list[tuple[str, list[str]]]
    processes: list[dict[str, Any]]


def search(views: Iterable[NodeView], term: str, limit: int = 50) -> Found:
    """Nodes, groups and processes whose name holds `term` (any case), from the snapshot of
    `views` (the nodes the user may see); at most `limit` of each."""
    needle = term.strip().lower()[:200]
    shown = list(views)
    if not needle:
        return Found([], [], [])
    groups: dict[str, set[str]] = {}
    found = []
    for node_view in shown:
        for process in node_view.processes:
            if needle in process["group"].lower():
                groups.setdefault(process["group"], set()).add(node_view.name)
            if needle in f"{process['group']}:{process['name']}".lower():
                found.append({"node": node_view.name, **process, "stale": node_view.stale})
    nodes = sorted((v for v in shown if needle in v.name.lower()), key=lambda v: v.name)
    found.sort(key=lambda p: (p["group"], p["name"], p["node"]))
    return Found(nodes[:limit], [(g, sorted(groups[g])) for g in sorted(groups)][:limit],
                 found[:limit])


def state_changes(db: Session, node: str, group: str | None = None, name: str | None = None,
                  limit: int = 50) -> list[ProcessEvent]:
    """The newest recorded changes of a node, or of one of its processes."""
    query = select(ProcessEvent).where(ProcessEvent.node == node)
    if group is not None:
        query = query.where(ProcessEvent.group == group)
    if name is not None:
        query = query.where(ProcessEvent.name == name)
    return list(db.scalars(query.order_by(ProcessEvent.time.desc(), ProcessEvent.id.desc())
                           .limit(limit)))
