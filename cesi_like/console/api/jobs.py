"""`/api/v1/jobs`: the durable jobs (rolling restarts, bulk actions) the caller may see, one
job, and cancelling one. A job's message and per-node results are shown to those who may do
what it does."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from ..context import actor
from ..services import access, jobs
from ..storage import db as database
from ..storage.models import Job
from .base import bp


def job_json(job: Job) -> dict[str, Any]:
    return jobs.as_json(job, access.sees_job_detail(actor(), job))


@bp.get("/jobs")
def list_jobs() -> Response:
    """Your jobs and your environments', newest first (an admin: everyone's)."""
    return jsonify([job_json(job) for job in access.jobs(database.session(), actor())])


@bp.get("/jobs/<int:job_id>")
def show_job(job_id: int) -> Response:
    return jsonify(job_json(access.job(database.session(), actor(), job_id)))


@bp.post("/jobs/<int:job_id>/cancel")
def cancel_job(job_id: int) -> Response:
    """Stop before the next batch (operator)."""
    db = database.session()
    job = jobs.cancel(db, actor(), job_id)
    db.commit()
    return jsonify(job_json(job))
