"""Bulk actions: start, stop, restart or signal processes on many nodes at once, every node
in parallel, with each node's per-process results as they arrive and one activity entry for
the whole action (its targets and results). A durable job (`services/jobs.py`) like the
rolling restart, so its page and API show the results live and a console process that dies
mid-way does not lose it (another resumes the targets that had not answered).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...supervisor_rpc.node import NodeAddress, NodeError
from ..storage.models import Job, Node, NodeStatus
from . import Invalid, ServiceError, access, actions, config_updates, confirm, jobs
from .access import Permission
from .activity import Actor, Result, record
from .jobs import JobState, StepState
from .snapshot import address

KIND = "bulk-action"
VERBS = ("start", "stop", "restart", "signal", "update")  # update: the config, per node
MAX_TARGETS = 5000
MAX_PARALLEL = 256  # threads waiting on nodes; a bulk restart takes as long as its slowest
SAVE_EVERY = 0.25  # seconds between two writes of the results (a write per node is slow)


def start(db: Session, actor: Actor, action: Any, targets: Any = None, spec: Any = None,
          environment: Any = None, nodes: Any = None, signal: Any = None, *,
          confirmation: confirm.Confirmation) -> Job:
    """Queue `action` on `targets` ([{node, spec}]) or on `spec` (e.g. `web:*`) of the
    environment's or the named nodes. Every node must exist and be visible, and a stop,
    restart or signal of many processes or of a protected environment be confirmed, or
    nothing starts."""
    access.require(db, actor, Permission.PROCESSES, f"{KIND}.start", str(action)[:32])
    if action not in VERBS:
        raise Invalid(f"action: one of {', '.join(VERBS)}")
    if action == "signal":
        signal = actions.parse_signal(signal)
    elif signal is not None:
        raise Invalid("signal: only with action signal")
    if action == "update":  # a node's whole config: no process spec
        spec = "*" if spec is None and targets is None else spec
        if spec not in (None, "*") or (targets is not None and any(
                isinstance(t, dict) and t.get("spec") != "*" for t in targets)):
            raise Invalid("update applies a node's config changes: spec must be *")
    pairs = _targets(db, actor, targets, spec, environment, nodes, action == "update")
    confirm.require(db, action, [(access.node(db, actor, node), target)
                                 for node, target in pairs], confirmation)
    steps: list[dict[str, Any]] = [
        {"node": node, "spec": target, "state": StepState.PENDING, "detail": "", "results": [],
         "started": None, "finished": None} for node, target in pairs]
    what = f"{action}{' ' + signal if signal else ''}"
    specs = sorted({target for _, target in pairs})
    title = (f"{what} {', '.join(specs)[:120]} on {len(pairs)} node"
             f"{'s' * (len({n for n, _ in pairs}) != 1)}")
    job = jobs.create(db, actor, KIND, title, {"action": action, "signal": signal}, steps)
    db.commit()
    return job


def _targets(db: Session, actor: Actor, targets: Any, spec: Any, environment: Any,
             nodes: Any, every_node: bool = False) -> list[tuple[str, str]]:
    if targets is not None:
        if spec is not None or environment is not None or nodes is not None:
            raise Invalid("give targets, or spec with environment or nodes, not both")
        if not isinstance(targets, list) or not targets or not all(
                isinstance(t, dict) and set(t) == {"node", "spec"}
                and all(isinstance(v, str) for v in t.values()) for t in targets):
            raise Invalid("targets: a list of {\"node\": NAME, \"spec\": \"group:name\"}")
        pairs = [(t["node"], t["spec"]) for t in targets]
    else:
        if not isinstance(spec, str) or not spec:
            raise Invalid("spec: group:name, group:* or * (or give targets)")
        if (environment is None) == (nodes is None):
            raise Invalid("give environment or nodes (a list of names) with spec")
        if environment is not None:
            env = access.environment(db, actor, environment)
            names = [node.name for node in env.nodes if access.in_scope(actor, node)
                     and (every_node or _runs(db, node, spec))]
            if not names:
                raise Invalid(f"no node of environment {env.name} that you may act on "
                              f"runs {spec!r} (as of the last poll)")
        else:
            if not isinstance(nodes, list) or not nodes or not all(
                    isinstance(n, str) for n in nodes):
                raise Invalid("nodes: a list of node names")
            names = nodes
        pairs = [(name, spec) for name in names]
    if len(pairs) > MAX_TARGETS:
        raise Invalid(f"at most {MAX_TARGETS} targets at once")
    if len(set(pairs)) != len(pairs):
        raise Invalid("a target is listed twice")
    for node, target in pairs:
        actions.Target.parse(target)
        access.node(db, actor, node, Permission.PROCESSES)  # NotFound outside the scope
    return pairs


def picked(db: Session, actor: Actor, chosen: list[str]) -> list[dict[str, str]]:
    """Targets from a page's ticked rows (`node/group:name` each): one `group:*` target where
    every process of a group on a node is ticked (one call to the node instead of one per
    process), the processes themselves otherwise."""
    access.require(db, actor, Permission.PROCESSES, f"{KIND}.start")
    if not chosen:
        raise Invalid("select at least one process (or act on every matching one)")
    if len(chosen) > MAX_TARGETS:
        raise Invalid(f"at most {MAX_TARGETS} targets at once")
    wanted: dict[str, dict[str, set[str]]] = {}
    for item in chosen:
        node, slash, spec = str(item).partition("/")
        target = actions.Target.parse(spec) if slash and ":" in spec else None
        if target is None or target.group is None or target.name is None:
            raise Invalid(f"not a process of a node: {str(item)[:80]!r}")
        wanted.setdefault(node, {}).setdefault(target.group, set()).add(target.name)
    targets = []
    for node, groups in wanted.items():
        found = access.node(db, actor, node, Permission.PROCESSES)  # NotFound outside scope
        status = db.get(NodeStatus, found.id)
        known: dict[str, set[str]] = {}
        for process in json.loads(status.processes) if status is not None else []:
            known.setdefault(process["group"], set()).add(process["name"])
        for group, names in groups.items():
            if names == known.get(group):
                targets.append({"node": node, "spec": f"{group}:*"})
            else:
                targets += [{"node": node, "spec": f"{group}:{name}"} for name in sorted(names)]
    return targets


def _runs(db: Session, node: Node, spec: str) -> bool:
    """Whether the node's last snapshot has the target (a group, a process, or anything)."""
    target = actions.Target.parse(spec)
    status = db.get(NodeStatus, node.id)
    processes = json.loads(status.processes) if status is not None else []
    if target.group is None:
        return bool(processes)
    return any(p.get("group") == target.group and target.name in (None, p.get("name"))
               for p in processes)


def run(job_id: int, ctx: jobs.Context) -> None:
    """Act on every target not yet answered, all at once; write each node's result as it
    comes, and record the whole action once."""
    job = jobs.resume(ctx, job_id)
    if job is None:
        return
    spec, steps = job.spec, job.steps
    todo = [] if job.cancel_requested else [
        step for step in steps if step["state"] in (StepState.PENDING, StepState.RUNNING)]
    actor = jobs.actor(ctx, job_id, steps, [step["node"] for step in todo])
    if actor is None:
        return  # interrupted: the user may no longer do this
    for step in todo:
        step.update(state=StepState.RUNNING, started=jobs.stamp(), detail="")
    with ctx.sessions() as db:
        if not jobs.save(db, job_id, ctx.owner, steps=steps):
            return
        peers = _peers(db, actor, {step["node"] for step in todo})
    if todo:
        with ThreadPoolExecutor(max_workers=min(len(todo), MAX_PARALLEL)) as pool:
            futures = {pool.submit(_act, ctx, actor, peers[step["node"]], step["node"],
                                   step["spec"], spec["action"], spec["signal"]): step
                       for step in todo}
            saved = time.monotonic()
            for done, future in enumerate(as_completed(futures), 1):
                step = futures[future]
                error, results = future.result()
                step.update(state=StepState.FAILED if error else StepState.DONE,
                            detail=error or "ok", results=results, finished=jobs.stamp())
                if done < len(futures) and time.monotonic() - saved < SAVE_EVERY:
                    continue  # results arriving together are written together
                saved = time.monotonic()
                with ctx.sessions() as db:  # the page shows results as they arrive
                    if ctx.lost() or not jobs.save(db, job_id, ctx.owner, steps=steps):
                        return
    for step in steps:
        if step["state"] == StepState.PENDING:
            step.update(state=StepState.SKIPPED, detail="cancelled")
    failed = [step for step in steps if step["state"] == StepState.FAILED]
    skipped = [step for step in steps if step["state"] == StepState.SKIPPED]
    state = JobState.CANCELLED if skipped and not failed else (
        JobState.FAILED if failed else JobState.SUCCEEDED)
    message = (f"{len(steps) - len(failed) - len(skipped)} of {len(steps)} targets ok"
               + ("; failed: " + "; ".join(f"{s['node']}: {s['detail']}" for s in failed)
                  if failed else ""))
    with ctx.sessions() as db:
        if jobs.save(db, job_id, ctx.owner, state=state, message=message, steps=steps):
            targets = ", ".join(f"{s['node']}/{s['spec']}" for s in steps)
            record(db, actor, f"process.{spec['action']}"
                   + (f" {spec['signal']}" if spec["signal"] else ""),
                   f"job {job_id}: {targets}", Result.OK if not failed else Result.FAILED,
                   message)
            db.commit()


def _peers(db: Session, actor: Actor, names: set[str]) -> dict[str, NodeAddress | str]:
    """How to reach each named node, checked again now (it may have been disabled, removed
    or taken out of the user's scope since the job was queued), or why not; one query."""
    found = {node.name: node for node in db.scalars(select(Node).where(Node.name.in_(names)))}
    peers: dict[str, NodeAddress | str] = {}
    for name in names:
        node = found.get(name)
        if node is None or not access.in_scope(actor, node):
            peers[name] = f"no node {name[:64]!r}"
        elif not node.enabled:
            peers[name] = f"node {name} is disabled"
        else:
            peers[name] = address(node)
    return peers


def _act(ctx: jobs.Context, actor: Actor, peer: NodeAddress | str, node: str, target: str,
         action: str, signal: str | None) -> tuple[str | None, list[dict[str, Any]]]:
    """One target's outcome: (what went wrong or None, per-process results). Process actions
    touch no database here (hundreds run at once); the poller's next round shows their
    outcome and, from a cesi-agentd, records each change as the node made it."""
    if isinstance(peer, str):
        return peer, []
    if action == "update":
        with ctx.sessions() as db:
            try:
                results = [{"name": f"{r['change']} {r['group']}", "ok": r["ok"],
                            "error": r["error"]} for r in config_updates.apply(
                    db, ctx.client, actor, node, recorded=False)]
            except ServiceError as exc:
                db.rollback()
                return exc.message, []
    else:
        try:
            results = actions.act_on(ctx.client, peer, actions.Target.parse(target), action,
                                     signal, ctx.action_timeout).results
        except NodeError as exc:
            return f"node {node} is {exc.state}: {exc.reason}", []
    errors = [f"{r['name']}: {r['error']}" for r in results if not r["ok"]]
    return ("; ".join(errors)[:1000] or None), results
