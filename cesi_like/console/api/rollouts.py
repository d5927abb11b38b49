"""`/api/v1/rollouts`: queue a rolling restart of a group across an environment."""

from __future__ import annotations

from flask import jsonify
from werkzeug.wrappers import Response

from ..context import actor, confirmation, console
from ..services import rollouts
from ..storage import db as database
from .base import body, bp
from .jobs import job_json


@bp.post("/rollouts")
def start_rollout() -> tuple[Response, int]:
    """Queue a rolling restart (operator); 202 with the job to follow."""
    data = body({"environment", "group", "batch_size", "pause", "keep_going", "confirm",
                 "include_maintenance"})
    job = rollouts.start(database.session(), actor(), data.get("environment", ""),
                         data.get("group", ""), data.get("batch_size", 1),
                         data.get("pause", 0.0), data.get("keep_going", False),
                         confirmation=confirmation(data.get("confirm")),
                         include_maintenance=data.get("include_maintenance", False))
    console().wake_jobs()
    return jsonify(job_json(job)), 202
