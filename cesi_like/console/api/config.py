"""`/api/v1/nodes/<name>/config`: a node's reread config changes, and applying them, as
`supervisorctl reread` and `update` do (operators)."""

from __future__ import annotations

from flask import jsonify
from werkzeug.wrappers import Response

from ..context import actor, console
from ..services import config_updates
from ..storage import db as database
from .base import body, bp


@bp.get("/nodes/<name>/config")
def config_diff(name: str) -> Response:
    """What the node's config file now says differs from what runs (the node rereads its
    config; nothing changes yet)."""
    return jsonify(config_updates.preview(database.session(), console().nodes, actor(), name))


@bp.post("/nodes/<name>/config/apply")
def config_apply(name: str) -> tuple[Response, int]:
    """Apply every reread change (no body), or only `groups`; 409 when some failed."""
    groups = body({"groups"}, required=False).get("groups")
    results = config_updates.apply(database.session(), console().nodes, actor(), name,
                                   groups)
    return jsonify(results=results), 200 if all(r["ok"] for r in results) else 409
