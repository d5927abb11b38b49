"""Admin pages: users, nodes and environments. Every change is checked on the server, recorded
in the activity log, and a bad form is shown again with its message."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import Field
from wtforms.fields.choices import SelectChoice

from ...supervisor_rpc.node import NodeError
from ..context import actor, console
from ..guard import permission
from ..services import Problem
from ..services import nodes as node_rules
from ..services import users as user_rules
from ..services.access import Permission
from ..storage import db as database
from ..storage.models import Environment, Node, User
from .forms import ConfirmForm, EnvironmentForm, NodeForm, UserForm

bp = Blueprint("admin", __name__, url_prefix="/admin")

Page = str | Response


def _environment_choices(db: Session) -> list[SelectChoice]:
    return [SelectChoice(env.id, env.name)
            for env in db.scalars(select(Environment).order_by(Environment.name))]


def _get(db: Session, model: type, ident: int) -> object:
    if not 0 < ident < 2**63:  # what no database id can be is simply not found
        abort(404)
    item = db.get(model, ident)
    if item is None:
        abort(404)
    return item


def _posted() -> bool:
    return request.method == "POST"


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
    form.scope.choices = _environment_choices(db)
    if form.validate_on_submit():
        if not form.password.data:
            form.password.errors.append("A new user needs a password.")
        else:
            try:
                user = user_rules.create(db, actor(), form.username.data or "", form.password.data,
                                    form.role.data, _scope(db, form.scope.data),
                                    bool(form.active.data))
            except Problem as exc:
                db.rollback()
                _refused(form, exc, _USER_FIELDS)
            else:
                db.commit()
                flash(f"User {user.username} created.", "success")
                return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission(Permission.USERS)
def user_edit(user_id: int) -> Page:
    db = database.session()
    user: User = _get(db, User, user_id)  # type: ignore[assignment]
    form = UserForm(obj=None if _posted() else user)
    form.scope.choices = _environment_choices(db)
    if not _posted():
        form.scope.data = [env.id for env in user.scope]
    if form.validate_on_submit():
        try:
            user_rules.update(db, actor(), user, username=form.username.data, role=form.role.data,
                         active=bool(form.active.data), password=form.password.data or None,
                         scope=_scope(db, form.scope.data))
        except Problem as exc:
            db.commit()  # nothing changed; a refusal's record is kept
            _refused(form, exc, _USER_FIELDS)
        else:
            db.commit()
            flash(f"User {user.username} saved.", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=user)


@bp.post("/users/<int:user_id>/delete")
@permission(Permission.USERS)
def user_delete(user_id: int) -> Response:
    db = database.session()
    user: User = _get(db, User, user_id)  # type: ignore[assignment]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = user.username
    try:
        user_rules.delete(db, actor(), user)
        flash(f"User {name} deleted.", "success")
    except Problem as exc:
        flash(exc.message, "error")
    db.commit()
    return redirect(url_for("admin.users"))


# -- nodes ---------------------------------------------------------------------------------

@bp.get("/nodes")
@permission(Permission.NODES)
def nodes() -> Page:
    db = database.session()
    rows = db.scalars(select(Node).order_by(Node.name)).all()
    return render_template("admin/nodes.html", nodes=rows, confirm=ConfirmForm())


def _names(db: Session, model: type[Environment] | type[Node], ids: list[int] | None
           ) -> list[str]:
    return list(db.scalars(select(model.name).where(model.id.in_(ids or [])).order_by(model.name)))


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


def _refused(form: FlaskForm, exc: Problem, renamed: dict[str, str] | None = None
             ) -> None:
    """Show a rule's refusal next to the field it names, or above the form."""
    name = exc.field or ""
    field = getattr(form, (renamed or {}).get(name, name), None)
    if isinstance(field, Field):
        field.errors = [*field.errors, exc.message]
    else:
        flash(exc.message, "error")


@bp.route("/nodes/new", methods=["GET", "POST"])
@permission(Permission.NODES)
def node_new() -> Page:
    db = database.session()
    form = NodeForm()
    form.environments.choices = _environment_choices(db)
    if form.validate_on_submit():
        try:
            node = node_rules.create_node(db, console().nodes, console().secrets, actor(),
                                          _node_fields(db, form))
        except Problem as exc:
            db.rollback()
            _refused(form, exc)
        else:
            db.commit()
            flash(f"Node {node.name} added.", "success")
            return redirect(url_for("admin.nodes"))
    return render_template("admin/node_form.html", form=form, node=None)


@bp.route("/nodes/<int:node_id>", methods=["GET", "POST"])
@permission(Permission.NODES)
def node_edit(node_id: int) -> Page:
    db = database.session()
    node: Node = _get(db, Node, node_id)  # type: ignore[assignment]
    form = NodeForm(obj=None if _posted() else node)
    form.password.data = form.password.data if _posted() else ""  # never echo the secret
    form.environments.choices = _environment_choices(db)
    if not _posted():
        form.environments.data = [env.id for env in node.environments]
    if form.validate_on_submit():
        try:
            node_rules.update_node(db, console().nodes, console().secrets, actor(), node,
                                   _node_fields(db, form))
        except Problem as exc:
            db.rollback()
            _refused(form, exc)
        else:
            db.commit()
            flash(f"Node {node.name} saved.", "success")
            return redirect(url_for("admin.nodes"))
    return render_template("admin/node_form.html", form=form, node=node)


@bp.post("/nodes/<int:node_id>/delete")
@permission(Permission.NODES)
def node_delete(node_id: int) -> Response:
    db = database.session()
    node: Node = _get(db, Node, node_id)  # type: ignore[assignment]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    node_rules.delete_node(db, actor(), node)
    db.commit()
    flash(f"Node {node.name} deleted.", "success")
    return redirect(url_for("admin.nodes"))


@bp.post("/nodes/<int:node_id>/test")
@permission(Permission.NODES)
def node_test(node_id: int) -> Response:
    db = database.session()
    node: Node = _get(db, Node, node_id)  # type: ignore[assignment]
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
    db = database.session()
    rows = db.scalars(select(Environment).order_by(Environment.name)).all()
    return render_template("admin/environments.html", environments=rows,
                           confirm=ConfirmForm())


def _node_choices(db: Session) -> list[SelectChoice]:
    return [SelectChoice(node.id, node.name)
            for node in db.scalars(select(Node).order_by(Node.name))]


def _environment_fields(db: Session, form: EnvironmentForm) -> dict[str, Any]:
    return {"name": form.name.data, "description": form.description.data or "",
            "nodes": _names(db, Node, form.nodes.data)}


@bp.route("/environments/new", methods=["GET", "POST"])
@permission(Permission.ENVIRONMENTS)
def environment_new() -> Page:
    db = database.session()
    form = EnvironmentForm()
    form.nodes.choices = _node_choices(db)
    if form.validate_on_submit():
        try:
            env = node_rules.create_environment(db, actor(), _environment_fields(db, form))
        except Problem as exc:
            db.rollback()
            _refused(form, exc)
        else:
            db.commit()
            flash(f"Environment {env.name} added.", "success")
            return redirect(url_for("admin.environments"))
    return render_template("admin/environment_form.html", form=form, environment=None)


@bp.route("/environments/<int:env_id>", methods=["GET", "POST"])
@permission(Permission.ENVIRONMENTS)
def environment_edit(env_id: int) -> Page:
    db = database.session()
    env: Environment = _get(db, Environment, env_id)  # type: ignore[assignment]
    form = EnvironmentForm(obj=None if _posted() else env)
    form.nodes.choices = _node_choices(db)
    if not _posted():
        form.nodes.data = [node.id for node in env.nodes]
    if form.validate_on_submit():
        try:
            node_rules.update_environment(db, actor(), env, _environment_fields(db, form))
        except Problem as exc:
            db.rollback()
            _refused(form, exc)
        else:
            db.commit()
            flash(f"Environment {env.name} saved.", "success")
            return redirect(url_for("admin.environments"))
    return render_template("admin/environment_form.html", form=form, environment=env)


@bp.post("/environments/<int:env_id>/delete")
@permission(Permission.ENVIRONMENTS)
def environment_delete(env_id: int) -> Response:
    db = database.session()
    env: Environment = _get(db, Environment, env_id)  # type: ignore[assignment]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    node_rules.delete_environment(db, actor(), env)
    db.commit()
    flash(f"Environment {env.name} deleted.", "success")
    return redirect(url_for("admin.environments"))
