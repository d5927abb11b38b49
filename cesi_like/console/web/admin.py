"""Admin pages: users, nodes and environments. Every change is checked on the server, recorded
in the activity log, and a bad form is shown again with its message beside its field."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from ...supervisor_rpc.node import NodeError
from ..context import actor, console
from ..guard import permission
from ..services import Invalid, access
from ..services import nodes as node_rules
from ..services import users as user_rules
from ..services.access import Permission
from ..storage import db as database
from ..storage.models import Environment, Node, User
from .flows import pressed, saved
from .forms import ConfirmForm, EnvironmentForm, NodeForm, UserForm

bp = Blueprint("admin", __name__, url_prefix="/admin")

Page = str | Response
Row = TypeVar("Row", User, Node, Environment)


def _get(model: type[Row], ident: int) -> Row:
    """The row, or 404 (so is an id no database can hold)."""
    found = database.session().get(model, ident) if 0 < ident < 2**63 else None
    if found is None:
        abort(404)
    return found


def _posted() -> bool:
    return request.method == "POST"


def _choices(db: Session, model: type[Environment] | type[Node]) -> list[SelectChoice]:
    return [SelectChoice(ident, name)
            for ident, name in db.execute(select(model.id, model.name).order_by(model.name))]


def _names(db: Session, model: type[Environment] | type[Node], ids: list[int] | None
           ) -> list[str]:
    return list(db.scalars(select(model.name).where(model.id.in_(ids or [])).order_by(model.name)))


# -- users ---------------------------------------------------------------------------------

@bp.get("/users")
@permission(Permission.USERS)
def users() -> Page:
    rows = user_rules.listed(database.session(), actor())
    return render_template("admin/users.html", users=rows, confirm=ConfirmForm())


def _scope(db: Session, ids: list[int] | None) -> list[Environment]:
    return [env for env in (db.get(Environment, i) for i in ids or []) if env is not None]


# the user rules' field names where the form's differ
_USER_FIELDS = {"environments": "scope"}


@bp.route("/users/new", methods=["GET", "POST"])
@permission(Permission.USERS)
def user_new() -> Page:
    db = database.session()
    form = UserForm()
    form.scope.choices = _choices(db, Environment)

    def create() -> str:
        if not form.password.data:
            raise Invalid("A new user needs a password.", "password")
        user = user_rules.create(db, actor(), form.username.data or "", form.password.data,
                                 form.role.data, _scope(db, form.scope.data),
                                 bool(form.active.data))
        return f"User {user.username} created."

    return saved(form, create, url_for("admin.users"), _USER_FIELDS) or render_template(
        "admin/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission(Permission.USERS)
def user_edit(user_id: int) -> Page:
    db = database.session()
    user = _get(User, user_id)
    form = UserForm(obj=None if _posted() else user)
    form.scope.choices = _choices(db, Environment)
    if not _posted():
        form.scope.data = [env.id for env in user.scope]

    def update() -> str:
        user_rules.update(db, actor(), user, username=form.username.data, role=form.role.data,
                          active=bool(form.active.data), password=form.password.data or None,
                          scope=_scope(db, form.scope.data))
        return f"User {user.username} saved."

    return saved(form, update, url_for("admin.users"), _USER_FIELDS) or render_template(
        "admin/user_form.html", form=form, user=user)


@bp.post("/users/<int:user_id>/delete")
@permission(Permission.USERS)
def user_delete(user_id: int) -> Response:
    user = _get(User, user_id)

    def delete() -> str:
        name = user.username
        user_rules.delete(database.session(), actor(), user)
        return f"User {name} deleted."

    return pressed(delete, url_for("admin.users"))


# -- nodes ---------------------------------------------------------------------------------

@bp.get("/nodes")
@permission(Permission.NODES)
def nodes() -> Page:
    rows = access.nodes(database.session(), actor())
    return render_template("admin/nodes.html", nodes=rows, confirm=ConfirmForm())


def _node_fields(db: Session, form: NodeForm) -> dict[str, Any]:
    """The form as the nodes service takes changes (a JSON body's shape)."""
    fields: dict[str, Any] = {
        "name": form.name.data, "url": form.url.data, "username": form.username.data,
        "enabled": bool(form.enabled.data), "verify_tls": bool(form.verify_tls.data),
        "ca_file": form.ca_file.data, "client_cert": form.client_cert.data,
        "notes": form.notes.data or "",
        "environments": _names(db, Environment, form.environments.data)}
    if form.password.data:
        fields["password"] = form.password.data
    elif form.clear_password.data:
        fields["password"] = None
    return fields


@bp.route("/nodes/new", methods=["GET", "POST"])
@permission(Permission.NODES)
def node_new() -> Page:
    db = database.session()
    form = NodeForm()
    form.environments.choices = _choices(db, Environment)

    def create() -> str:
        node = node_rules.create_node(db, console().nodes, console().secrets, actor(),
                                      _node_fields(db, form))
        return f"Node {node.name} added."

    return saved(form, create, url_for("admin.nodes")) or render_template(
        "admin/node_form.html", form=form, node=None)


@bp.route("/nodes/<int:node_id>", methods=["GET", "POST"])
@permission(Permission.NODES)
def node_edit(node_id: int) -> Page:
    db = database.session()
    node = _get(Node, node_id)
    form = NodeForm(obj=None if _posted() else node)
    form.password.data = form.password.data if _posted() else ""  # never echo the secret
    form.environments.choices = _choices(db, Environment)
    if not _posted():
        form.environments.data = [env.id for env in node.environments]

    def update() -> str:
        node_rules.update_node(db, console().nodes, console().secrets, actor(), node,
                               _node_fields(db, form))
        return f"Node {node.name} saved."

    return saved(form, update, url_for("admin.nodes")) or render_template(
        "admin/node_form.html", form=form, node=node)


@bp.post("/nodes/<int:node_id>/delete")
@permission(Permission.NODES)
def node_delete(node_id: int) -> Response:
    node = _get(Node, node_id)

    def delete() -> str:
        node_rules.delete_node(database.session(), actor(), node)
        return f"Node {node.name} deleted."

    return pressed(delete, url_for("admin.nodes"))


@bp.post("/nodes/<int:node_id>/test")
@permission(Permission.NODES)
def node_test(node_id: int) -> Response:
    db = database.session()
    node = _get(Node, node_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    found = node_rules.test_node(db, console().nodes, actor(), node)
    if isinstance(found, NodeError):
        flash(f"{node.name}: {found.state}: {found.reason}", "error")
    else:
        flash(f"{node.name}: online (supervisor {found.version}, "
              f"{len(found.processes)} processes).", "success")
    db.commit()
    return redirect(url_for("admin.nodes"))


# -- environments --------------------------------------------------------------------------

@bp.get("/environments")
@permission(Permission.ENVIRONMENTS)
def environments() -> Page:
    rows = access.environments(database.session(), actor())
    return render_template("admin/environments.html", environments=rows,
                           confirm=ConfirmForm())


def _environment_fields(db: Session, form: EnvironmentForm) -> dict[str, Any]:
    return {"name": form.name.data, "description": form.description.data or "",
            "nodes": _names(db, Node, form.nodes.data), "protected": bool(form.protected.data)}


@bp.route("/environments/new", methods=["GET", "POST"])
@permission(Permission.ENVIRONMENTS)
def environment_new() -> Page:
    db = database.session()
    form = EnvironmentForm()
    form.nodes.choices = _choices(db, Node)

    def create() -> str:
        env = node_rules.create_environment(db, actor(), _environment_fields(db, form))
        return f"Environment {env.name} added."

    return saved(form, create, url_for("admin.environments")) or render_template(
        "admin/environment_form.html", form=form, environment=None)


@bp.route("/environments/<int:env_id>", methods=["GET", "POST"])
@permission(Permission.ENVIRONMENTS)
def environment_edit(env_id: int) -> Page:
    db = database.session()
    env = _get(Environment, env_id)
    form = EnvironmentForm(obj=None if _posted() else env)
    form.nodes.choices = _choices(db, Node)
    if not _posted():
        form.nodes.data = [node.id for node in env.nodes]

    def update() -> str:
        node_rules.update_environment(db, actor(), env, _environment_fields(db, form))
        return f"Environment {env.name} saved."

    return saved(form, update, url_for("admin.environments")) or render_template(
        "admin/environment_form.html", form=form, environment=env)


@bp.post("/environments/<int:env_id>/delete")
@permission(Permission.ENVIRONMENTS)
def environment_delete(env_id: int) -> Response:
    env = _get(Environment, env_id)

    def delete() -> str:
        node_rules.delete_environment(database.session(), actor(), env)
        return f"Environment {env.name} deleted."

    return pressed(delete, url_for("admin.environments"))
