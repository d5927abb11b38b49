"""`/healthz`: whether this console process can serve, for load balancers and container
health checks. The one view without a login, so it says nothing but "ok" or what is wrong
with the console itself (never a node, a user or a setting)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..storage import db as database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers; 503 otherwise (the balancer sends users elsewhere)."""
    try:
        database.session().execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="database unavailable"), 503
    return jsonify(status="ok"), 200
