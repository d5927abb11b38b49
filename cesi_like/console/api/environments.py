"""`/api/v1/environments`: those in the caller's scope; admins add, change and remove them."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from ..context import actor
from ..guard import permission
from ..services import access
from ..services import nodes as node_rules
from ..services.access import Permission
from ..services.activity import Actor
from ..storage import db as database
from ..storage.models import Environment
from .base import body, bp, created, deleted


def environment_json(env: Environment, who: Actor) -> dict[str, Any]:
    return {"name": env.name, "description": env.description, "protected": env.protected,
            "nodes": [node.name for node in env.nodes if access.in_scope(who, node)]}


@bp.get("/environments")
def list_environments() -> Response:
    return jsonify([environment_json(env, actor())
                    for env in access.environments(database.session(), actor())])


@bp.post("/environments")
@permission(Permission.ENVIRONMENTS)
def create_environment() -> tuple[Response, int]:
    db = database.session()
    env = node_rules.create_environment(db, actor(), body(node_rules.ENVIRONMENT_FIELDS))
    return created(lambda: environment_json(env, actor()))


@bp.route("/environments/<name>", methods=["PATCH", "PUT"])
@permission(Permission.ENVIRONMENTS)
def update_environment(name: str) -> Response:
    db = database.session()
    env = node_rules.update_environment(db, actor(), access.environment(db, actor(), name),
                                        body(node_rules.ENVIRONMENT_FIELDS))
    db.commit()
    return jsonify(environment_json(env, actor()))


@bp.delete("/environments/<name>")
@permission(Permission.ENVIRONMENTS)
def delete_environment(name: str) -> tuple[str, int]:
    return deleted(lambda db: node_rules.delete_environment(
        db, actor(), access.environment(db, actor(), name)))
