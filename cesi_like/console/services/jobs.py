"""Durable jobs: long work (a rolling restart) kept in the database, so it outlives the
console process that runs it.

Any console process may run a job (the poller processes and the web workers each have a
runner, see `workers/job_runner.py`), but only its holder does: a job is claimed with one
atomic UPDATE, as the poller's leases are, and the holder renews its claim while it works.
When the holder dies its claim lapses and another process, on this host or another, takes
the job over and resumes it from its recorded steps. Every write of a step is guarded by the
claim, so a holder that lost its job (paused too long, cut off from the database) cannot
overwrite the new holder's progress.

A job acts with its user's rights at every step: `actor` checks them again (through `access`)
before each, and a job whose user lost them ends interrupted, with the reason.
"""

from __future__ import annotations

import datetime
import enum
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, sessionmaker

from ...supervisor_rpc.node import NodeClient
from ..storage.models import Job, utcnow
from . import Conflict, access
from .access import Permission, Revoked
from .activity import Actor, Result, record


class JobState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a runner
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # could not be resumed (its user is gone or lost the right)

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class StepState(enum.StrEnum):
    """Where one step of a job (a node, a target) is."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Context:
    """What a runner lends a job: database, node client, its claim, and whether it lost it."""

    sessions: sessionmaker[Session]
    client: NodeClient
    owner: str
    action_timeout: float
    activity_file: str | None
    lost: Callable[[], bool]
    stopping: threading.Event


@dataclass
class Resumed:
    """A job as its runner picks it up: what was asked, how far it got, on whose behalf."""

    spec: dict[str, Any]
    steps: list[dict[str, Any]]
    actor: Actor
    cancel_requested: bool
    takeovers: int


def resume(ctx: Context, job_id: int) -> Resumed | None:
    """Load a claimed job to run it; None (and the job interrupted) when its user may no
    longer do what it does."""
    with ctx.sessions() as db:
        job = db.get(Job, job_id)
        if job is None:
            return None
        steps = json.loads(job.steps)
        try:
            actor = access.job_actor(db, job, ctx.activity_file)
        except Revoked as revoked:
            interrupt(db, ctx, job_id, steps, str(revoked))
            return None
        return Resumed(json.loads(job.spec), steps, actor, job.cancel_requested,
                       job.takeovers)


def actor(ctx: Context, job_id: int, steps: list[dict[str, Any]],
          nodes: list[str]) -> Actor | None:
    """The job's user, with the rights to go on to `nodes` now; None when the job was
    interrupted instead (the user is gone, disabled, no longer an operator, or out of
    scope of one of them)."""
    with ctx.sessions() as db:
        job = db.get(Job, job_id)
        if job is None:
            return None
        try:
            return access.job_actor(db, job, ctx.activity_file, nodes)
        except Revoked as revoked:
            interrupt(db, ctx, job_id, steps, str(revoked))
            return None


def interrupt(db: Session, ctx: Context, job_id: int, steps: list[dict[str, Any]],
              reason: str) -> None:
    """End the job for `reason`; what had not begun is skipped, and so is the step under
    way (it is not resumed)."""
    for step in steps:
        if step["state"] in (StepState.PENDING, StepState.RUNNING):
            step.update(state=StepState.SKIPPED, detail=reason)
    if save(db, job_id, ctx.owner, state=JobState.INTERRUPTED, message=reason, steps=steps):
        job = db.get(Job, job_id)
        if job is not None:
            record(db, Actor(job.user, "", ctx.activity_file), f"{job.kind}.interrupted",
                   f"job {job_id}", Result.FAILED, reason)
            db.commit()


def stamp() -> str:
    """Now, as the steps record it (to the millisecond: steps of a bulk action are apart by
    less than a second)."""
    return utcnow().isoformat(timespec="milliseconds") + "Z"


def create(db: Session, actor: Actor, kind: str, title: str, spec: dict[str, Any],
           steps: list[dict[str, Any]]) -> Job:
    job = Job(kind=kind, state=JobState.QUEUED.value, user_id=actor.user.id if actor.user
              else None, title=title[:300], spec=json.dumps(spec), steps=json.dumps(steps),
              message="", created=utcnow(), updated=utcnow())
    db.add(job)
    db.flush()
    record(db, actor, f"{kind}.start", f"job {job.id}", Result.OK, title)
    return job


def cancel(db: Session, actor: Actor, job_id: int) -> Job:
    """Ask the job to stop: the runner stops before its next step (a step under way ends
    first; a queued job stops at once)."""
    job = access.job(db, actor, job_id, Permission.JOBS, "job.cancel")
    if JobState(job.state).finished:
        raise Conflict(f"job {job.id} is already {job.state}")
    job.cancel_requested = True
    if job.state == JobState.QUEUED and job.owner is None:
        finish(job, JobState.CANCELLED, f"cancelled by {actor.username} before it began")
    record(db, actor, f"{job.kind}.cancel", f"job {job.id}", Result.OK, job.title)
    return job


def finish(job: Job, state: JobState, message: str) -> None:
    job.state, job.message = state.value, message[:4000]
    job.owner, job.expires = None, None
    job.finished = job.updated = utcnow()


def claim(db: Session, owner: str, seconds: float) -> Job | None:
    """Take the oldest job that is queued or whose holder stopped renewing; None if none.
    Atomic: of several processes racing for a job, one wins."""
    now = utcnow()
    candidates = db.scalars(select(Job.id).where(
        Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
        (Job.owner.is_(None)) | (Job.expires < now)).order_by(Job.id).limit(5)).all()
    for job_id in candidates:
        taken = db.execute(update(Job).where(
            Job.id == job_id, Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
            (Job.owner.is_(None)) | (Job.expires < now))
            .values(owner=owner, expires=now + datetime.timedelta(seconds=seconds),
                    takeovers=Job.takeovers + case(
                        (Job.state == JobState.RUNNING.value, 1), else_=0),
                    state=JobState.RUNNING.value, updated=now)
            .returning(Job.id)).first()
        db.commit()
        if taken is not None:
            return db.get(Job, job_id)
    return None


def renew(db: Session, job_id: int, owner: str, seconds: float) -> bool:
    """Extend the claim; False when another process holds the job now."""
    now = utcnow()
    held = db.execute(update(Job).where(Job.id == job_id, Job.owner == owner)
                      .values(expires=now + datetime.timedelta(seconds=seconds))
                      .returning(Job.id)).first()
    db.commit()
    return held is not None


def save(db: Session, job_id: int, owner: str, **values: Any) -> bool:
    """Write progress (steps as a list, message, state...) only while still the holder."""
    if "steps" in values:
        values["steps"] = json.dumps(values["steps"])
    if values.get("message") is not None:
        values["message"] = str(values["message"])[:4000]
    if values.get("state") is not None and JobState(values["state"]).finished:
        values.update(owner=None, expires=None, finished=utcnow())
    saved = db.execute(update(Job).where(Job.id == job_id, Job.owner == owner)
                       .values(updated=utcnow(), **values).returning(Job.id)).first()
    db.commit()
    return saved is not None


def shown(job: Job, detail: bool) -> tuple[str | None, list[dict[str, Any]]]:
    """The job's message and steps as `detail` allows (see `access.sees_job_detail`):
    without it, no message and each step without its detail and results."""
    steps = json.loads(job.steps)
    if detail:
        return job.message, steps
    return None, [{k: v for k, v in step.items() if k not in ("detail", "results")}
                  for step in steps]


def as_json(job: Job, detail: bool) -> dict[str, Any]:
    def iso(value: datetime.datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") + "Z" if value is not None else None

    message, steps = shown(job, detail)
    return {"id": job.id, "kind": job.kind, "state": job.state, "title": job.title,
            "user": job.user.username if job.user is not None else None,
            "spec": json.loads(job.spec), "steps": steps,
            "message": message, "cancel_requested": job.cancel_requested,
            "takeovers": job.takeovers, "created": iso(job.created),
            "updated": iso(job.updated), "finished": iso(job.finished)}
