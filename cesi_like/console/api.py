"""`/api/v1`: JSON for scripts and the UI. Auth by session (with an X-CSRFToken header on
writes) or `Authorization: Bearer <token>`; every error is JSON with a message."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms.validators import ValidationError

from . import db as database
from .activity import actor, record
from .models import Environment, Node, Role, User
from .openapi import document
from .security import (
    require_role,
)
from .services import ServiceError
from .services import users as user_rules
from .services.actions import node_for, refresh
from .settings import node_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")

class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return jsonify(error=exc.message), exc.status


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
        raise ApiError(400, "the JSON nests too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "send a JSON object (Content-Type: application/json)")
    return data


def _text(data: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"{key} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string")
    if "\0" in value or (not value.isprintable() and key not in ("notes", "description")):
        raise ApiError(400, f"{key} must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        raise ApiError(400, f"{key} must be valid Unicode text") from None
    return value.strip()


NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _name(data: dict[str, Any], required: bool = True) -> str | None:
    """Node and environment names: what the forms accept, the API accepts (and no more)."""
    name = _text(data, "name", required)
    if name is not None and not NAME.match(name):
        raise ApiError(400, "name: 1 to 64 letters, digits, '.', '_' or '-'")
    return name


def _environments(db: Session, names: Any) -> list[Environment]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, "environments must be a list of names")
    found = {env.name: env for env in db.scalars(
        select(Environment).where(Environment.name.in_(names)))}
    missing = sorted(set(names) - set(found))
    if missing:
        raise ApiError(400, f"unknown environments: {', '.join(missing)}")
    return [found[name] for name in names]


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
    data = _body()
    name = _name(data) or ""
    if db.scalar(select(Node).where(Node.name == name)):
        raise ApiError(409, f"node {name} exists")
    node = Node(name=name)
    _apply_node(db, node, data, creating=True)
    db.add(node)
    record(db, "node.create", target=name, detail=node.url)
    db.flush()
    refresh(db, current_app.extensions["cesi_nodes"], node)  # its state at once, not next poll
    db.commit()
    return jsonify(node_json(node)), 201


def _apply_node(db: Session, node: Node, data: dict[str, Any], creating: bool) -> None:
    if creating or any(k in data for k in ("url", "host", "port")):
        try:
            node.url = node_url(node.name, _text(data, "url"), _text(data, "host"),
                                data.get("port"))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    for key in ("username", "password", "notes", "ca_file", "client_cert"):
        if key in data:
            value = _text(data, key)
            setattr(node, key, value if value or key == "notes" else None)
    if node.notes is None:
        node.notes = ""
    for flag in ("enabled", "verify_tls"):
        if flag in data:
            if not isinstance(data[flag], bool):
                raise ApiError(400, f"{flag} must be true or false")
            setattr(node, flag, data[flag])
    if "environments" in data:
        node.environments = _environments(db, data["environments"])


@bp.route("/nodes/<name>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_node(name: str) -> Response:
    db = database.session()
    node = node_for(db, actor(), name)
    data = _body()
    new_name = _name(data, required=False)
    if new_name and new_name != name:
        if db.scalar(select(Node).where(Node.name == new_name)):
            raise ApiError(409, f"node {new_name} exists")
        node.name = new_name
    _apply_node(db, node, data, creating=False)
    record(db, "node.update", target=node.name, detail=node.url)
    if node.enabled:
        refresh(db, current_app.extensions["cesi_nodes"], node)
    db.commit()
    return jsonify(node_json(node))


@bp.delete("/nodes/<name>")
@require_role(Role.ADMIN)
def delete_node(name: str) -> tuple[str, int]:
    db = database.session()
    node = node_for(db, actor(), name)
    db.delete(node)
    record(db, "node.delete", target=name)
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
    data = _body()
    name = _name(data) or ""
    if db.scalar(select(Environment).where(Environment.name == name)):
        raise ApiError(409, f"environment {name} exists")
    env = Environment(name=name, description=_text(data, "description") or "")
    env.nodes = _nodes(db, data.get("nodes", []))
    db.add(env)
    record(db, "environment.create", target=name)
    db.commit()
    return jsonify(environment_json(env, current_user)), 201


def _nodes(db: Session, names: Any) -> list[Node]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, "nodes must be a list of names")
    found = {n.name: n for n in db.scalars(select(Node).where(Node.name.in_(names)))}
    missing = sorted(set(names) - set(found))
    if missing:
        raise ApiError(400, f"unknown nodes: {', '.join(missing)}")
    return [found[name] for name in names]


@bp.route("/environments/<name>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_environment(name: str) -> Response:
    db = database.session()
    env = db.scalar(select(Environment).where(Environment.name == name))
    if env is None:
        raise ApiError(404, f"no environment {name}")
    data = _body()
    if "description" in data:
        env.description = _text(data, "description") or ""
    if "nodes" in data:
        env.nodes = _nodes(db, data["nodes"])
    record(db, "environment.update", target=name)
    db.commit()
    return jsonify(environment_json(env, current_user))


@bp.delete("/environments/<name>")
@require_role(Role.ADMIN)
def delete_environment(name: str) -> tuple[str, int]:
    db = database.session()
    env = db.scalar(select(Environment).where(Environment.name == name))
    if env is None:
        raise ApiError(404, f"no environment {name}")
    db.delete(env)
    record(db, "environment.delete", target=name)
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


def _scope_names(data: dict[str, Any]) -> list[str]:
    names = data.get("environments", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, "environments must be a list of names")
    return names


@bp.post("/users")
@require_role(Role.ADMIN)
def create_user() -> tuple[Response, int]:
    db = database.session()
    data = _body()
    user = user_rules.create(
        db, actor(), _text(data, "username", required=True) or "",
        _text(data, "password", required=True) or "", data.get("role", "viewer"),
        user_rules.environments(db, _scope_names(data)))
    db.commit()
    return jsonify(user_json(user)), 201


@bp.route("/users/<username>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_user(username: str) -> Response:
    db = database.session()
    user = user_rules.find(db, username)
    data = _body()
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        raise ApiError(400, "active must be true or false")
    try:
        user_rules.update(
            db, actor(), user, username=_text(data, "username"), role=data.get("role"),
            active=active, password=_text(data, "password"),
            scope=user_rules.environments(db, _scope_names(data))
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


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
