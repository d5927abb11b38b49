"""`/api/v1`: JSON for scripts and the UI. Auth by session (with an X-CSRFToken header on
writes) or `Authorization: Bearer <token>`; every error is JSON with a message."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms.validators import ValidationError

from . import db as database
from . import fleet
from .activity import record
from .admin import last_admin_problem
from .models import Environment, Node, Role, User
from .openapi import document
from .security import (
    hash_password,
    node_in_scope,
    password_problem,
    require_role,
    visible_nodes,
)
from .settings import node_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")

ACTIONS = {"start": "startProcess", "stop": "stopProcess"}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
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
    data = request.get_json(silent=True)
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
    return value.strip()


def _environments(db: Session, names: Any) -> list[Environment]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, "environments must be a list of names")
    found = {env.name: env for env in db.scalars(
        select(Environment).where(Environment.name.in_(names)))}
    missing = sorted(set(names) - set(found))
    if missing:
        raise ApiError(400, f"unknown environments: {', '.join(missing)}")
    return [found[name] for name in names]


def node_json(node: Node, outcome: fleet.Outcome | None = None) -> dict[str, Any]:
    """A node as the API shows it: never its password."""
    data: dict[str, Any] = {
        "name": node.name, "url": node.url, "username": node.username,
        "has_password": node.password is not None, "enabled": node.enabled,
        "notes": node.notes, "environments": [env.name for env in node.environments],
    }
    if outcome is not None:
        data.update(state=outcome.state, reason=outcome.reason,
                    version=outcome.value if outcome.state == fleet.ONLINE else None)
    return data


# -- nodes ---------------------------------------------------------------------------------

@bp.get("/nodes")
def list_nodes() -> Response:
    db = database.session()
    nodes = visible_nodes(db, current_user)
    enabled = [fleet.Target.of(n) for n in nodes if n.enabled]
    outcomes = fleet.probe_all(enabled, current_app.config["CESI_NODE_TIMEOUT"])
    disabled = fleet.Outcome("disabled", "disabled by an admin")
    return jsonify([node_json(n, outcomes.get(n.name, disabled)) for n in nodes])


@bp.post("/nodes")
@require_role(Role.ADMIN)
def create_node() -> tuple[Response, int]:
    db = database.session()
    data = _body()
    name = _text(data, "name", required=True) or ""
    if db.scalar(select(Node).where(Node.name == name)):
        raise ApiError(409, f"node {name} exists")
    node = Node(name=name)
    _apply_node(db, node, data, creating=True)
    db.add(node)
    record(db, "node.create", target=name, detail=node.url)
    db.commit()
    return jsonify(node_json(node)), 201


def _apply_node(db: Session, node: Node, data: dict[str, Any], creating: bool) -> None:
    if creating or any(k in data for k in ("url", "host", "port")):
        try:
            node.url = node_url(node.name, _text(data, "url"), _text(data, "host"),
                                data.get("port"))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    for key in ("username", "password", "notes"):
        if key in data:
            value = _text(data, key)
            setattr(node, key, value if value or key == "notes" else None)
    if node.notes is None:
        node.notes = ""
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise ApiError(400, "enabled must be true or false")
        node.enabled = data["enabled"]
    if "environments" in data:
        node.environments = _environments(db, data["environments"])


@bp.route("/nodes/<name>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_node(name: str) -> Response:
    db = database.session()
    node = node_in_scope(db, current_user, name)
    data = _body()
    new_name = _text(data, "name")
    if new_name and new_name != name:
        if db.scalar(select(Node).where(Node.name == new_name)):
            raise ApiError(409, f"node {new_name} exists")
        node.name = new_name
    _apply_node(db, node, data, creating=False)
    record(db, "node.update", target=node.name, detail=node.url)
    db.commit()
    return jsonify(node_json(node))


@bp.delete("/nodes/<name>")
@require_role(Role.ADMIN)
def delete_node(name: str) -> tuple[str, int]:
    db = database.session()
    node = node_in_scope(db, current_user, name)
    db.delete(node)
    record(db, "node.delete", target=name)
    db.commit()
    return "", 204


@bp.post("/nodes/<name>/processes/<process>/<action>")
@require_role(Role.OPERATOR)
def process_action(name: str, process: str, action: str) -> tuple[Response, int]:
    """start/stop/restart `group:name` or `group:*` on one node (within the user's scope)."""
    if action not in ("start", "stop", "restart"):
        abort(404)
    db = database.session()
    node = node_in_scope(db, current_user, name)
    if not node.enabled:
        raise ApiError(409, f"node {name} is disabled")
    timeout = current_app.config["CESI_NODE_TIMEOUT"]
    target = fleet.Target.of(node)
    # A quick probe first: a hung or dead node answers within node_timeout, not after the
    # long wait that start/stop with wait=True may legitimately need.
    probe = fleet.call(target, "getState", timeout=timeout)
    if probe.state != fleet.ONLINE:
        record(db, f"process.{action}", target=f"{name}/{process}", result="failed",
               detail=f"{probe.state} {probe.reason}")
        db.commit()
        return jsonify(node=name, process=process, action=action, state=probe.state,
                       error=probe.reason), 502
    steps = ["stop", "start"] if action == "restart" else [action]
    results = []
    for step in steps:
        # startProcess/stopProcess take `group:*` too; wait=True, so allow for startsecs
        outcome = fleet.call(target, ACTIONS[step], process, True, timeout=max(timeout, 30.0))
        results.append({"action": step, "state": outcome.state, "error": outcome.reason or None,
                        "result": None if outcome.reason else outcome.value})
        failed = outcome.state != fleet.ONLINE or (
            outcome.reason and not (step == "stop" and "NOT_RUNNING" in outcome.reason))
        if failed:
            record(db, f"process.{action}", target=f"{name}/{process}", result="failed",
                   detail=f"{step}: {outcome.state} {outcome.reason}")
            db.commit()
            status = 502 if outcome.state != fleet.ONLINE else 409
            return jsonify(node=name, process=process, action=action, steps=results), status
    record(db, f"process.{action}", target=f"{name}/{process}")
    db.commit()
    return jsonify(node=name, process=process, action=action, steps=results), 200


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
    name = _text(data, "name", required=True) or ""
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


@bp.post("/users")
@require_role(Role.ADMIN)
def create_user() -> tuple[Response, int]:
    db = database.session()
    data = _body()
    username = _text(data, "username", required=True) or ""
    password = _text(data, "password", required=True) or ""
    problem = password_problem(password)
    if problem:
        raise ApiError(400, problem)
    role = _role(data.get("role", "viewer"))
    if db.scalar(select(User).where(User.username == username)):
        raise ApiError(409, f"user {username} exists")
    user = User(username=username, role=role, password_hash=hash_password(password))
    user.scope = _environments(db, data.get("environments", []))
    db.add(user)
    record(db, "user.create", target=username, detail=f"role={role}")
    db.commit()
    return jsonify(user_json(user)), 201


def _role(value: Any) -> str:
    if value not in {role.value for role in Role}:
        raise ApiError(400, "role must be admin, operator or viewer")
    return str(value)


@bp.route("/users/<username>", methods=["PATCH", "PUT"])
@require_role(Role.ADMIN)
def update_user(username: str) -> Response:
    db = database.session()
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise ApiError(404, f"no user {username}")
    data = _body()
    role = _role(data["role"]) if "role" in data else user.role
    active = data.get("active", user.active)
    if not isinstance(active, bool):
        raise ApiError(400, "active must be true or false")
    problem = last_admin_problem(db, user, role, active)
    if problem:
        raise ApiError(409, problem)
    if active != user.active:
        user.session_version += 1
    user.role, user.active = role, active
    if "password" in data:
        password = _text(data, "password") or ""
        problem = password_problem(password)
        if problem:
            raise ApiError(400, problem)
        user.password_hash = hash_password(password)
        user.session_version += 1
    if "environments" in data:
        user.scope = _environments(db, data["environments"])
    record(db, "user.update", target=username)
    db.commit()
    return jsonify(user_json(user))


@bp.delete("/users/<username>")
@require_role(Role.ADMIN)
def delete_user(username: str) -> tuple[str, int]:
    db = database.session()
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise ApiError(404, f"no user {username}")
    problem = last_admin_problem(db, user, "", False)
    if problem:
        raise ApiError(409, problem)
    db.delete(user)
    record(db, "user.delete", target=username)
    db.commit()
    return "", 204


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
