"""Durable jobs: long work (a rolling restart) kept in the database, so it outlives the
console process that runs it.

Any console process may run a job (the poller processes and the web workers each have a
runner, see `console/job_runner.py`), but only its holder does: a job is claimed with one
atomic UPDATE, as the poller's leases are, and the holder renews its claim while it works.
When the holder dies its claim lapses and another process, on this host or another, takes
the job over and resumes it from its recorded steps. Every write of a step is guarded by the
claim, so a holder that lost its job (paused too long, cut off from the database) cannot
overwrite the new holder's progress.
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
from ..storage.models import Job, Role, User, utcnow
from . import Conflict, Forbidden, NotFound
from .activity import Actor, Result, record

MAX_ID = 2**31 - 1


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
    """Load a claimed job to run it; None (and the job marked interrupted) when its user is
    gone, disabled or no longer an operator: a job acts with its user's rights only."""
    with ctx.sessions() as db:
        job = db.get(Job, job_id)
        if job is None:
            return None
        user = job.user
        if user is None or not user.active or not user.has_role(Role.OPERATOR):
            save(db, job_id, ctx.owner, state=JobState.INTERRUPTED.value,
                 message="cannot go on: the user who started it no longer exists, is "
                         "disabled or is no longer an operator")
            return None
        return Resumed(json.loads(job.spec), json.loads(job.steps),
                       Actor(user, "", ctx.activity_file), job.cancel_requested,
                       job.takeovers)


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


def get(db: Session, user: User, job_id: int) -> Job:
    """The job if `user` may see it (see `may_see`); NotFound otherwise."""
    if not 0 < job_id <= MAX_ID:  # a database integer: larger ids cannot exist
        raise NotFound(f"no job {job_id}")
    job = db.get(Job, job_id)
    if job is None or not may_see(user, job):
        raise NotFound(f"no job {job_id}")
    return job


def may_see(user: User, job: Job) -> bool:
    """Its own jobs, and those in an environment of the user's scope (a team follows and
    cancels each other's rollouts); an admin, every job."""
    if user.has_role(Role.ADMIN) or job.user_id == user.id or not user.scope:
        return True
    environment = json.loads(job.spec).get("environment")
    return any(env.name == environment for env in user.scope)


def listed(db: Session, user: User, limit: int = 100) -> list[Job]:
    jobs = db.scalars(select(Job).order_by(Job.id.desc()).limit(limit * 4))
    return [job for job in jobs if may_see(user, job)][:limit]


def cancel(db: Session, actor: Actor, job_id: int) -> Job:
    """Ask the job to stop: the runner stops before its next step (a step under way ends
    first; a queued job stops at once)."""
    if actor.user is None or not actor.user.has_role(Role.OPERATOR):
        raise Forbidden("cancelling a job needs the operator role")
    job = get(db, actor.user, job_id)
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
    if values.get("state") is not None and JobState(values["state"]).finished:
        values.update(owner=None, expires=None, finished=utcnow())
    saved = db.execute(update(Job).where(Job.id == job_id, Job.owner == owner)
                       .values(updated=utcnow(), **values).returning(Job.id)).first()
    db.commit()
    return saved is not None


def as_json(job: Job) -> dict[str, Any]:
    def iso(value: datetime.datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") + "Z" if value is not None else None

    return {"id": job.id, "kind": job.kind, "state": job.state, "title": job.title,
            "user": job.user.username if job.user is not None else None,
            "spec": json.loads(job.spec), "steps": json.loads(job.steps),
            "message": job.message, "cancel_requested": job.cancel_requested,
            "takeovers": job.takeovers, "created": iso(job.created),
            "updated": iso(job.updated), "finished": iso(job.finished)}
