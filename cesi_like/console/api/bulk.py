"""`/api/v1/bulk`: one action on many nodes at once, as a job."""

from __future__ import annotations

from flask import jsonify
from werkzeug.wrappers import Response

from ..context import actor, confirmation, console
from ..services import bulk
from ..storage import db as database
from .base import body, bp
from .jobs import job_json


@bp.post("/bulk")
def start_bulk() -> tuple[Response, int]:
    """Queue an action on many nodes at once (operator); 202 with the job to follow."""
    data = body({"action", "signal", "targets", "spec", "environment", "nodes", "confirm"})
    job = bulk.start(database.session(), actor(), data.get("action"), data.get("targets"),
                     data.get("spec"), data.get("environment"), data.get("nodes"),
                     data.get("signal"), confirmation=confirmation(data.get("confirm")))
    console().wake_jobs()
    return jsonify(job_json(job)), 202
