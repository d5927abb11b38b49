"""`/api/v1/rollouts`, `/api/v1/bulk` and `/api/v1/jobs`: start a rolling restart or a bulk
action, follow it, cancel it. Routes on the API blueprint (its auth, CSRF and JSON
errors)."""

from __future__ import annotations

from flask import current_app, jsonify
from werkzeug.wrappers import Response

from ..services import Invalid, bulk, jobs, rollouts
from ..storage import db as database
from ..web.activity import actor
from . import _body, bp

ROLLOUT_FIELDS = {"environment", "group", "batch_size", "pause", "keep_going"}


@bp.post("/rollouts")
def start_rollout() -> tuple[Response, int]:
    """Queue a rolling restart (operator); 202 with the job to follow."""
    data = _body()
    unknown = sorted(set(data) - ROLLOUT_FIELDS)
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)[:200]}")
    db = database.session()
    job = rollouts.start(db, actor(), data.get("environment", ""), data.get("group", ""),
                         data.get("batch_size", 1), data.get("pause", 0.0),
                         data.get("keep_going", False))
    _wake_runner()
    return jsonify(jobs.as_json(job)), 202


def _wake_runner() -> None:
    """This process's runner (a worker's) may take the new job at once; otherwise some
    runner claims it within a quarter of a poll interval."""
    runner = current_app.extensions.get("cesi_jobs")
    if runner is not None:
        runner.wake()


@bp.get("/jobs")
def list_jobs() -> Response:
    """Your jobs, newest first (an admin: everyone's)."""
    user = actor().user
    assert user is not None  # the login gate ran
    return jsonify([jobs.as_json(job) for job in jobs.listed(database.session(), user)])


@bp.get("/jobs/<int:job_id>")
def show_job(job_id: int) -> Response:
    user = actor().user
    assert user is not None
    return jsonify(jobs.as_json(jobs.get(database.session(), user, job_id)))


@bp.post("/jobs/<int:job_id>/cancel")
def cancel_job(job_id: int) -> Response:
    """Stop before the next batch (operator)."""
    db = database.session()
    job = jobs.cancel(db, actor(), job_id)
    db.commit()
    return jsonify(jobs.as_json(job))


BULK_FIELDS = {"action", "signal", "targets", "spec", "environment", "nodes"}


@bp.post("/bulk")
def start_bulk() -> tuple[Response, int]:
    """Queue an action on many nodes at once (operator); 202 with the job to follow."""
    data = _body()
    unknown = sorted(set(data) - BULK_FIELDS)
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)[:200]}")
    db = database.session()
    job = bulk.start(db, actor(), data.get("action"), data.get("targets"), data.get("spec"),
                     data.get("environment"), data.get("nodes"), data.get("signal"))
    _wake_runner()
    return jsonify(jobs.as_json(job)), 202
