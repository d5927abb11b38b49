"""Rolling restart of a group across an environment: a few nodes at a time, each batch
restarted in parallel and waited for (every process of the group RUNNING past its
startsecs, which is what a waiting start means to Supervisor), a pause between batches, and a
stop at the first failure (with the reason) unless asked to keep going. A durable job
(`services/jobs.py`): its steps are in the database, so it survives the console process that
runs it, and it can be cancelled between batches. Its user's rights are checked again before
each batch and during each pause: a user demoted, disabled or moved out of the environment
ends it at once, interrupted.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...supervisor_rpc.states import ProcessState
from ..storage.models import Job, NodeStatus
from . import Invalid, ServiceError, access, actions, confirm, jobs, validate
from .access import Permission
from .activity import Actor, Result, record
from .jobs import JobState, StepState

KIND = "rolling-restart"
MAX_BATCH = 100
MAX_PAUSE = 3600.0


def start(db: Session, actor: Actor, environment: str, group: str, batch_size: Any = 1,
          pause: Any = 0.0, keep_going: Any = False, *,
          confirmation: confirm.Confirmation, include_maintenance: Any = False) -> Job:
    """Queue a rolling restart of `group` on the environment's nodes that run it (those the
    user may see, enabled, out of maintenance unless `include_maintenance`, by name).
    Refuses what it cannot do before anything happens, ConfirmationNeeded included."""
    access.require(db, actor, Permission.PROCESSES, f"{KIND}.start",
                   f"{str(environment)[:64]}/{str(group)[:64]}")
    if not isinstance(group, str) or not group or group == "*":
        raise Invalid("group: the name of a process group, e.g. web")
    actions.Target.parse(f"{group}:*")  # the same names the process actions accept
    batch = validate.whole(batch_size, "batch_size", 1, MAX_BATCH)
    wait = validate.number(pause, "pause", 0.0, MAX_PAUSE)
    validate.flag(keep_going, "keep_going")
    env = access.environment(db, actor, environment)
    validate.flag(include_maintenance, "include_maintenance")
    nodes = [node for node in env.nodes if node.enabled and access.in_scope(actor, node)
             and (include_maintenance or not node.maintenance)
             and group in _groups(db, node.id)]
    if not nodes:
        raise Invalid(f"no node of environment {env.name} that you may act on runs a group "
                      f"{group!r} (as of the last poll)")
    confirm.require(db, "restart", [(node, f"{group}:*") for node in nodes], confirmation)
    steps = [{"node": node.name, "state": StepState.PENDING, "detail": "", "started": None,
              "finished": None} for node in nodes]
    spec = {"environment": env.name, "group": group, "batch_size": batch, "pause": wait,
            "keep_going": keep_going}
    title = (f"restart {group} on {len(nodes)} node{'s' * (len(nodes) != 1)} of {env.name}, "
             f"{batch} at a time")
    job = jobs.create(db, actor, KIND, title, spec, steps)
    db.commit()
    return job


def _groups(db: Session, node_id: int) -> set[str]:
    status = db.get(NodeStatus, node_id)
    if status is None:
        return set()
    return {process.get("group", "") for process in json.loads(status.processes or "[]")}


def run(job_id: int, ctx: jobs.Context) -> None:
    """Carry the job on from its recorded steps: a step that was under way when an earlier
    holder died is done again (a restart of a group is safe to repeat)."""
    job = jobs.resume(ctx, job_id)
    if job is None:
        return
    spec, steps, actor, resumed = job.spec, job.steps, job.actor, job.takeovers > 0
    for step in steps:
        if resumed and step["state"] == StepState.RUNNING:
            step["detail"] = "again: the console process running it stopped answering"
    size = spec["batch_size"]
    batches = [steps[i:i + size] for i in range(0, len(steps), size)]
    for index, batch in enumerate(batches):
        todo = [step for step in batch if step["state"] in (StepState.PENDING,
                                                             StepState.RUNNING)]
        if not todo:
            continue
        if _cancelled(ctx, job_id):
            _end(ctx, job_id, actor, steps, JobState.CANCELLED, "cancelled; "
                 f"{_count(steps, StepState.DONE)} of {len(steps)} nodes were restarted")
            return
        now = jobs.actor(ctx, job_id, steps, [step["node"] for step in todo])
        if now is None:
            return  # interrupted: the user may no longer do this
        actor = now
        for step in todo:
            step.update(state=StepState.RUNNING, started=jobs.stamp(), finished=None,
                        detail=step["detail"] or "restarting")
        if not _save(ctx, job_id, steps=steps):
            return  # another process holds the job now
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            outcomes = list(pool.map(lambda step, who=actor: _restart(
                ctx, who, step["node"], spec["group"]), todo))
        for step, error in zip(todo, outcomes, strict=True):
            step.update(state=StepState.FAILED if error else StepState.DONE,
                        detail=error or "restarted", finished=jobs.stamp())
        if ctx.lost() or not _save(ctx, job_id, steps=steps):
            return
        failed = [step for step in todo if step["state"] == StepState.FAILED]
        if failed and not spec["keep_going"]:
            reason = "; ".join(f"{step['node']}: {step['detail']}" for step in failed)
            for step in steps:
                if step["state"] == StepState.PENDING:
                    step.update(state=StepState.SKIPPED,
                                detail="not started: an earlier node failed")
            _end(ctx, job_id, actor, steps, JobState.FAILED, f"stopped: {reason}")
            return
        rest = [step["node"] for step in steps if step["state"] == StepState.PENDING]
        if spec["pause"] and index < len(batches) - 1 and not _pause(
                ctx, job_id, spec["pause"], steps, rest):
            return
    failures = _count(steps, StepState.FAILED)
    if failures:
        _end(ctx, job_id, actor, steps, JobState.FAILED,
             f"{failures} of {len(steps)} nodes failed (kept going)")
    else:
        _end(ctx, job_id, actor, steps, JobState.SUCCEEDED, f"{len(steps)} nodes restarted")


def _save(ctx: jobs.Context, job_id: int, **values: Any) -> bool:
    with ctx.sessions() as db:
        return jobs.save(db, job_id, ctx.owner, **values)


def _restart(ctx: jobs.Context, actor: Actor, node: str, group: str) -> str | None:
    """Restart the group on one node and check it is RUNNING; the error, or None."""
    with ctx.sessions() as db:
        try:
            outcome = actions.perform(db, ctx.client, actor, node, f"{group}:*", "restart",
                                      wait_seconds=ctx.action_timeout,
                                      confirmation=None)  # asked when it was queued
            node_row = access.node(db, actor, node)
        except ServiceError as exc:
            db.rollback()
            return exc.message
        if not outcome.ok:
            return "; ".join(f"{r['name']}: {r['error']}" for r in outcome.results
                             if not r["ok"])[:1000]
        status = db.get(NodeStatus, node_row.id)
        processes = [p for p in json.loads(status.processes if status else "[]")
                     if p.get("group") == group]
        if not processes:
            return f"no process of group {group} after the restart"
        down = [f"{p['name']} is {p['statename']}" for p in processes
                if p.get("state") != ProcessState.RUNNING]
        return "; ".join(down) or None


def _cancelled(ctx: jobs.Context, job_id: int) -> bool:
    with ctx.sessions() as db:
        return bool(db.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def _pause(ctx: jobs.Context, job_id: int, seconds: float, steps: list[dict[str, Any]],
           rest: list[str]) -> bool:
    """Wait between batches; False if the job was lost, the runner is stopping, or the job
    was interrupted because its user may no longer go on to `rest` (a cancel is noticed
    before the next batch)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if ctx.stopping.wait(min(left, 0.5)) or ctx.lost():
            return False
        if _cancelled(ctx, job_id):
            return True
        if jobs.actor(ctx, job_id, steps, rest) is None:
            return False
    return True


def _end(ctx: jobs.Context, job_id: int, actor: Actor, steps: list[dict[str, Any]],
         state: JobState, message: str) -> None:
    for step in steps:
        if state == JobState.CANCELLED and step["state"] == StepState.PENDING:
            step.update(state=StepState.SKIPPED, detail="not started: cancelled")
    with ctx.sessions() as db:
        if jobs.save(db, job_id, ctx.owner, state=state, message=message, steps=steps):
            record(db, actor, f"{KIND}.{state.value}", f"job {job_id}",
                   Result.OK if state == JobState.SUCCEEDED else Result.FAILED, message)
            db.commit()


def _count(steps: list[dict[str, Any]], state: StepState) -> int:
    return sum(step["state"] == state for step in steps)
