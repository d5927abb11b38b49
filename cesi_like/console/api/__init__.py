"""`/api/v1`: JSON for scripts and the UI. Auth by session (with an X-CSRFToken header on
writes) or `Authorization: Bearer <token>`; every error is JSON with a message."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.validators import ValidationError

from ..security import require_role
from ..services import Invalid, ServiceError, validate
from ..services import nodes as node_rules
from ..services import tokens as token_rules
from ..services import users as user_rules
from ..services.actions import node_for
from ..storage import db as database
from ..storage.models import Environment, Node, Role, User
from ..web.activity import actor
from .openapi import document

bp = Blueprint("api", __name__, url_prefix="/api/v1")

@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> tuple[Response, int]:
    return jsonify(error=exc.message), exc.status


@bp.before_request
def _csrf_for_sessions() -> None:
    """Token clients are not browsers: no CSRF. Session clients must send the token."""
    if request.method in ("GET", "HEAD", "OPTIONS") or g.get("token_auth"):
        return
    try:
        validate_csrf(request.headers.get("X-CSRFToken", ""))
    except ValidationError as exc:
        raise CSRFError(str(exc)) from None


def _body() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # `[[[[...` fifty thousand deep
        raise Invalid("the JSON nests too deeply") from None
    if not isinstance(data, dict):
        raise Invalid("send a JSON object (Content-Type: application/json)")
    return data


def node_json(node: Node) -> dict[str, Any]:
    """A node as the API shows it: never its password."""
    return {"name": node.name, "url": node.url, "username": node.username,
            "has_password": node.password is not None, "enabled": node.enabled,
            "verify_tls": node.verify_tls, "notes": node.notes,
            "environments": [env.name for env in node.environments]}


# -- nodes ---------------------------------------------------------------------------------

@bp.post("/nodes")
@require_role(Role.ADMIN)
def create_node() -> tuple[Response, int]:
    db = database.session()
    node = node_rules.create_node(db, current_app.extensions["cesi_nodes"],
                                  current_app.extensions["cesi_secrets"], actor(), _body())
    db.commit()
    return jsonify(node_json(node)), 201


@bp.route("/nodes/<name>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_node(name: str) -> Response:
    db = database.session()
    node = node_rules.update_node(db, current_app.extensions["cesi_nodes"],
                                  current_app.extensions["cesi_secrets"], actor(),
                                  node_for(db, actor(), name), _body())
    db.commit()
    return jsonify(node_json(node))


@bp.delete("/nodes/<name>")
@require_role(Role.ADMIN)
def delete_node(name: str) -> tuple[str, int]:
    db = database.session()
    node_rules.delete_node(db, actor(), node_for(db, actor(), name))
    db.commit()
    return "", 204


# -- environments --------------------------------------------------------------------------

def environment_json(env: Environment, user: User) -> dict[str, Any]:
    return {"name": env.name, "description": env.description,
            "nodes": [n.name for n in env.nodes if user.may_see(n)]}


@bp.get("/environments")
def list_environments() -> Response:
    db = database.session()
    envs = db.scalars(select(Environment).order_by(Environment.name)).all()
    if current_user.scope:
        mine = {env.id for env in current_user.scope}
        envs = [env for env in envs if env.id in mine]
    return jsonify([environment_json(env, current_user) for env in envs])


@bp.post("/environments")
@require_role(Role.ADMIN)
def create_environment() -> tuple[Response, int]:
    db = database.session()
    env = node_rules.create_environment(db, actor(), _body())
    db.commit()
    return jsonify(environment_json(env, current_user)), 201


@bp.route("/environments/<name>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_environment(name: str) -> Response:
    db = database.session()
    env = node_rules.update_environment(db, actor(), node_rules.find_environment(db, name),
                                        _body())
    db.commit()
    return jsonify(environment_json(env, current_user))


@bp.delete("/environments/<name>")
@require_role(Role.ADMIN)
def delete_environment(name: str) -> tuple[str, int]:
    db = database.session()
    node_rules.delete_environment(db, actor(), node_rules.find_environment(db, name))
    db.commit()
    return "", 204


# -- users ---------------------------------------------------------------------------------

def user_json(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "active": user.active,
            "environments": [env.name for env in user.scope],
            "created": user.created.isoformat() + "Z",
            "last_login": user.last_login.isoformat() + "Z" if user.last_login else None}


@bp.get("/users")
@require_role(Role.ADMIN)
def list_users() -> Response:
    db = database.session()
    return jsonify([user_json(u) for u in db.scalars(select(User).order_by(User.username))])


@bp.post("/users")
@require_role(Role.ADMIN)
def create_user() -> tuple[Response, int]:
    db = database.session()
    data = _body()
    user = user_rules.create(
        db, actor(), validate.text(data.get("username"), "username", required=True),
        validate.text(data.get("password"), "password", required=True),
        data.get("role", "viewer"), node_rules.environments(db, data.get("environments", [])))
    db.commit()
    return jsonify(user_json(user)), 201


@bp.route("/users/<username>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_user(username: str) -> Response:
    db = database.session()
    user = user_rules.find(db, username)
    data = _body()
    active = validate.flag(data["active"], "active") if "active" in data else None
    try:
        user_rules.update(
            db, actor(), user,
            username=validate.text(data["username"], "username") if "username" in data
            else None,
            role=data.get("role"),
            active=active,
            password=validate.text(data["password"], "password") if "password" in data
            else None,
            scope=node_rules.environments(db, data["environments"])
            if "environments" in data else None)
    finally:
        db.commit()  # a refusal changed nothing but its record
    return jsonify(user_json(user))


@bp.delete("/users/<username>")
@require_role(Role.ADMIN)
def delete_user(username: str) -> tuple[str, int]:
    db = database.session()
    try:
        user_rules.delete(db, actor(), user_rules.find(db, username))
    finally:
        db.commit()
    return "", 204


# -- tokens --------------------------------------------------------------------------------

@bp.get("/tokens")
def list_tokens() -> Response:
    """Your tokens; every user's for an admin with ?all=1."""
    everyone = request.args.get("all", "") in ("1", "true")
    return jsonify([token_rules.describe(t) for t in
                    token_rules.visible(database.session(), actor(), everyone)])


@bp.post("/tokens")
def create_token() -> tuple[Response, int]:
    """A new token for yourself (an admin may name another user); its secret, once."""
    db = database.session()
    data = _body()
    unknown = sorted(set(data) - {"name", "expires_days", "read_only", "username"})
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)[:200]}")
    owner = actor().user if "username" not in data else user_rules.find(
        db, validate.text(data["username"], "username", required=True))
    assert owner is not None  # the login gate ran
    secret, token = token_rules.create(db, actor(), owner, data.get("name", ""),
                                       data.get("expires_days"), data.get("read_only", False))
    db.commit()
    return jsonify({**token_rules.describe(token), "token": secret}), 201


@bp.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> tuple[str, int]:
    db = database.session()
    token_rules.revoke(db, actor(), token_id)
    db.commit()
    return "", 204


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
