"""`/api/v1/users` (admins): list, add, change and remove accounts."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from ..context import actor
from ..guard import permission
from ..services import nodes as node_rules
from ..services import users as user_rules
from ..services import validate
from ..services.access import Permission
from ..storage import db as database
from ..storage.models import User
from .base import body, bp, created, deleted, iso

FIELDS = {"username", "password", "role", "active", "environments"}


def user_json(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "active": user.active,
            "source": user.source,
            "environments": [env.name for env in user.scope], "created": iso(user.created),
            "last_login": iso(user.last_login)}


@bp.get("/users")
@permission(Permission.USERS)
def list_users() -> Response:
    return jsonify([user_json(u) for u in user_rules.listed(database.session(), actor())])


@bp.post("/users")
@permission(Permission.USERS)
def create_user() -> tuple[Response, int]:
    db = database.session()
    data = body(FIELDS)
    user = user_rules.create(
        db, actor(), validate.text(data.get("username"), "username", required=True),
        validate.text(data.get("password"), "password", required=True),
        data.get("role", "viewer"), node_rules.environments(db, data.get("environments", [])))
    return created(lambda: user_json(user))


@bp.route("/users/<username>", methods=["PATCH", "PUT"])
@permission(Permission.USERS)
def update_user(username: str) -> Response:
    """Change what is given of username, role, active, password and environments (admin)."""
    db = database.session()
    user = user_rules.find(db, username)
    data = body(FIELDS)
    user_rules.update(
        db, actor(), user,
        username=validate.text(data["username"], "username") if "username" in data else None,
        role=data.get("role"),
        active=validate.flag(data["active"], "active") if "active" in data else None,
        password=validate.text(data["password"], "password") if "password" in data else None,
        scope=node_rules.environments(db, data["environments"])
        if "environments" in data else None)
    db.commit()
    return jsonify(user_json(user))


@bp.delete("/users/<username>")
@permission(Permission.USERS)
def delete_user(username: str) -> tuple[str, int]:
    return deleted(lambda db: user_rules.delete(db, actor(), user_rules.find(db, username)))
