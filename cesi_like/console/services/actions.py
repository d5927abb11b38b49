"""Process actions: start, stop, restart, signal and clear logs, on one process (`group:name`),
a group (`group:*`) or every process of a node (`*`); and on cesi-agentd nodes disable and
enable (for good: the agent keeps a disabled program stopped across its reloads and restarts),
on one process or a group.

The rules live here: who may act (`access`), a node that is enabled and answering (probed
within `node_timeout` before a long wait), per-target results, the activity record, and a
re-poll of the node at once (through the one snapshot path, so the alert rules see what the
action changed) so every page shows the outcome.
"""

from __future__ import annotations

import re
import xmlrpc.client
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ...supervisor_rpc import schema
from ...supervisor_rpc.node import NodeAddress, NodeClient, NodeError, NodeState, fault_state
from ...supervisor_rpc.states import Fault
from . import Conflict, Invalid, NodeFailed, NotFound, access, confirm, redact
from .access import Permission
from .activity import Actor, Result, record
from .snapshot import address, refresh

ACTIONS = ("start", "stop", "restart", "signal", "clear-logs", "disable", "enable")
AGENT_ONLY = ("disable", "enable")  # cesi.* methods: supervisord answers UNKNOWN_METHOD
NOT_AVAILABLE = "not available on a supervisord node (disable and enable need cesi-agentd)"
SIGNALS = ("HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "STOP", "CONT", "WINCH")
_NAME = re.compile(r"^[^\x00-\x1f\x7f:]{1,255}$")


@dataclass(frozen=True)
class Target:
    """What an action is aimed at: one process, one group, or all."""

    group: str | None  # None: all
    name: str | None  # None: the whole group

    @classmethod
    def parse(cls, spec: str) -> Target:
        if spec == "*":
            return cls(None, None)
        group, colon, name = spec.partition(":")
        if not colon:
            group, name = spec, spec  # supervisorctl's shorthand for `name:name`
        if not _NAME.match(group) or (name != "*" and not _NAME.match(name)):
            raise Invalid(f"not a process name: {spec[:80]!r} (use group:name, group:* or *)")
        return cls(group, None if name == "*" else name)

    @property
    def spec(self) -> str:
        if self.group is None:
            return "*"
        return f"{self.group}:{self.name or '*'}"


@dataclass
class Outcome:
    """Per-target results: `[{name, ok, error}]`, and whether all went well."""

    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(result["ok"] for result in self.results)

    def add(self, name: str, error: str | None = None) -> None:
        self.results.append({"name": name, "ok": error is None, "error": error})


def fault_text(fault: xmlrpc.client.Fault) -> str:
    """A node's fault in words, with quoted values (perhaps from its config) left out."""
    return f"{redact.quoted(str(fault.faultString)[:300])} (fault {fault.faultCode})"


def perform(db: Session, client: NodeClient, actor: Actor, node_name: str, spec: str,
            action: str, signal: str | None = None, wait_seconds: float = 60.0,
            recorded: bool = True, *, confirmation: confirm.Confirmation | None) -> Outcome:
    """Run `action` on `spec` of `node_name` for `actor`; records it (unless the caller
    records it with others in one entry: `recorded=False`) and re-polls the node. Raises
    ServiceError subclasses for what the rules refuse (ConfirmationNeeded when a name must be
    typed first: `confirmation` None only for a job's step, asked when it was queued) and
    NodeFailed for a dead node."""
    node = access.node(db, actor, node_name, Permission.PROCESSES, f"process.{action}"[:64],
                       f"{node_name}/{spec}")
    where = f"{node.name}/{spec}"
    note = record if recorded else _unrecorded
    if action not in ACTIONS:
        raise NotFound(f"no action {action[:32]!r} (one of {', '.join(ACTIONS)})")
    target = Target.parse(spec)
    if action in AGENT_ONLY and target.group is None:
        raise Invalid(f"{action} applies to a process or a group (group:*), not to every "
                      "process of a node")
    if action == "signal":
        signal = parse_signal(signal)
    if not node.enabled:
        raise Conflict(f"node {node.name} is disabled")
    confirm.require(db, action, [(node, target.spec)], confirmation)
    peer = address(node)
    # end the read transaction: the node may take a minute (and SQLite's WAL wants its
    # checkpoints meanwhile)
    db.commit()
    try:
        outcome = act_on(client, peer, target, action, signal, wait_seconds)
    except NodeError as exc:
        note(db, actor, f"process.{action}", where, Result.FAILED, f"{exc.state}: {exc.reason}")
        refresh(db, client, node, exc)
        db.commit()
        raise NodeFailed(f"node {node.name} is {exc.state}: {exc.reason}") from None
    detail = "; ".join(f"{r['name']}: {r['error']}" for r in outcome.results if not r["ok"])
    note(db, actor, f"process.{action}" + (f" {signal}" if signal else ""), where,
         Result.OK if outcome.ok else Result.FAILED, detail)
    refresh(db, client, node)
    db.commit()
    return outcome


def act_on(client: NodeClient, peer: NodeAddress, target: Target, action: str,
           signal: str | None, wait_seconds: float) -> Outcome:
    """The node's part of an action whose rules were checked: a probe that fails a hung node
    within node_timeout, then the calls. No database: a bulk action runs hundreds at once.
    Raises NodeError."""
    try:
        client.call(peer, "supervisor.getState")
    except xmlrpc.client.Fault as fault:  # no supervisor interface, shutting down...
        raise fault_state(fault, "supervisor.getState") from None
    try:
        return _run(client, peer, target, action, signal, wait_seconds)
    except schema.BadAnswer as bad:
        raise NodeError(NodeState.ERROR, str(bad)) from None


def _unrecorded(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for `record` when the caller records the whole action itself."""


def parse_signal(signal: str | None) -> str:
    name = (signal or "").strip().upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise Invalid(f"signal must be one of {', '.join(SIGNALS)}")
    return name


def _run(client: NodeClient, peer: NodeAddress, target: Target, action: str,
         signal: str | None, wait_seconds: float) -> Outcome:
    if action == "restart":
        stopped = _run(client, peer, target, "stop", None, wait_seconds)
        failed = [r for r in stopped.results
                  if not r["ok"] and "NOT_RUNNING" not in (r["error"] or "")]
        if failed:
            return Outcome(failed)
        return _run(client, peer, target, "start", None, wait_seconds)
    if action == "clear-logs":
        return _clear(client, peer, target)
    method, params = _method(target, action, signal)
    outcome = Outcome()
    try:
        answer = client.call(peer, method, *params, timeout=wait_seconds)
    except xmlrpc.client.Fault as fault:
        unknown = action in AGENT_ONLY and fault.faultCode == Fault.UNKNOWN_METHOD
        outcome.add(target.spec, NOT_AVAILABLE if unknown else fault_text(fault))
        return outcome
    if target.name is not None:  # one process: True or a fault
        outcome.add(target.spec, None if answer is True else f"unexpected answer {answer!r:.80}")
        return outcome
    for item in schema.action_results(answer, method):
        error = None if item["status"] == Fault.SUCCESS else \
            f"{item['description'] or 'failed'} (fault {item['status']})"
        outcome.add(f"{item['group']}:{item['name']}", error)
    return outcome


def _method(target: Target, action: str, signal: str | None) -> tuple[str, tuple[Any, ...]]:
    """The method (with its namespace) and parameters an action on `target` calls."""
    if action == "disable":  # it stops what it disables: wait for that, as a stop does
        return "cesi.disableProcess", (target.spec, True)
    if action == "enable":
        return "cesi.enableProcess", (target.spec,)
    verb = {"start": "start", "stop": "stop", "signal": "signal"}[action]
    if target.group is None:
        name = "signalAllProcesses" if verb == "signal" else f"{verb}AllProcesses"
        params: tuple[Any, ...] = ()
    elif target.name is None:
        name, params = f"{verb}ProcessGroup", (target.group,)
    else:
        name, params = f"{verb}Process", (target.spec,)
    if verb == "signal":
        return f"supervisor.{name}", (*params, signal)
    # wait: the answer says whether it really started/stopped
    return f"supervisor.{name}", (*params, True)


def _clear(client: NodeClient, peer: NodeAddress, target: Target) -> Outcome:
    outcome = Outcome()
    if target.group is None:
        try:
            answer = client.call(peer, "supervisor.clearAllProcessLogs")
        except xmlrpc.client.Fault as fault:
            outcome.add("*", fault_text(fault))
            return outcome
        for item in schema.action_results(answer, "clearAllProcessLogs"):
            outcome.add(f"{item['group']}:{item['name']}",
                        None if item["status"] == Fault.SUCCESS else item["description"])
        return outcome
    names = [target.spec] if target.name is not None else [
        info.full_name for info in schema.process_list(
            client.call(peer, "supervisor.getAllProcessInfo"))
        if info.group == target.group]
    if not names:
        outcome.add(target.spec, f"BAD_NAME: {target.group} (fault {Fault.BAD_NAME})")
    for name in names:
        try:
            client.call(peer, "supervisor.clearProcessLogs", name)
            outcome.add(name)
        except xmlrpc.client.Fault as fault:
            outcome.add(name, fault_text(fault))
    return outcome
