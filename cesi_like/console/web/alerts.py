"""Alert rules in the browser (admins): the list with Test, Turn off / on and Delete, a form
to add one, and each rule's own page to change any of its fields and see what it watches
now. The rules are `services/alerts.py`; delivery is `workers/alerts.py`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from ..context import actor, console
from ..guard import permission
from ..services import Problem, alerts, thresholds
from ..services.access import Permission
from ..storage import db as database
from ..storage.models import AlertRule, Environment, Node
from .flows import pressed, saved
from .forms import AlertEditForm, AlertForm, ConfirmForm

bp = Blueprint("alerts", __name__, url_prefix="/admin/alerts")


def _scopes(db: Session, form: AlertForm) -> None:
    """A scope is picked from what exists: environments, nodes, the groups nodes run."""
    for field, names, any_ in (
            (form.environment, db.scalars(select(Environment.name).order_by(Environment.name)),
             "any environment"),
            (form.node, db.scalars(select(Node.name).order_by(Node.name)), "any node"),
            (form.group, sorted(alerts.known_groups(db)), "any group")):
        field.choices = [SelectChoice("", any_), *(SelectChoice(n, n) for n in names)]


def _fields(form: AlertForm, creating: bool) -> dict[str, Any]:
    """The form's values as the service takes them (notify: one URL a line)."""
    fields = {key: value for key, value in form.data.items() if key in alerts.RULE_FIELDS}
    if fields.get("limit") is not None:
        fields["limit"] = float(fields["limit"])
    fields["notify"] = [line.strip() for line in (fields.get("notify") or "").splitlines()
                        if line.strip()]
    if not creating:  # sealed values: kept unless replaced or removed
        remove_secret = isinstance(form, AlertEditForm) and form.remove_secret.data
        remove_notify = isinstance(form, AlertEditForm) and form.remove_notify.data
        if not fields.get("webhook_secret") and not remove_secret:
            fields.pop("webhook_secret", None)
        if not fields["notify"] and not remove_notify:
            fields.pop("notify")
    return {key: value for key, value in fields.items()
            if not (creating and value in (None, "", []))}


def _unavailable(db: Session, rule: AlertRule) -> str:
    """Where a memory or CPU rule cannot look, said when it is made."""
    missing = thresholds.not_available_on(db, rule)
    return " " + thresholds.NOT_AVAILABLE.format(nodes=", ".join(missing)) + "." if missing \
        else ""


@bp.route("", methods=["GET", "POST"])
@permission(Permission.ALERT_RULES)
def index() -> Response | str:
    db = database.session()
    form = AlertForm()
    _scopes(db, form)

    def create() -> str:
        rule = alerts.create_rule(db, actor(), _fields(form, creating=True),
                                  console().secrets.encrypt)
        return f"Alert rule {rule.name} added." + _unavailable(db, rule)

    rules = alerts.rules(db, actor())
    return saved(form, create, url_for("alerts.index")) or render_template(
        "admin/alerts.html", rules=rules, form=form, confirm=ConfirmForm(),
        notify={rule.id: alerts.notify_shown(rule, console().secrets.decrypt)
                for rule in rules})


@bp.route("/<int:rule_id>", methods=["GET", "POST"])
@permission(Permission.ALERT_RULES)
def edit(rule_id: int) -> Response | str:
    """Every field of the rule, and what it watches now."""
    db = database.session()
    rule = alerts.rule(db, actor(), rule_id)
    form = AlertEditForm(obj=None if request.method == "POST" else rule)
    _scopes(db, form)
    if request.method == "GET":
        form.notify.data = ""

    def update() -> str:
        alerts.update_rule(db, actor(), rule_id, _fields(form, creating=False),
                           console().secrets.encrypt)
        return f"Alert rule {rule.name} saved." + _unavailable(db, rule)

    return saved(form, update, url_for("alerts.edit", rule_id=rule_id)) or render_template(
        "admin/alert_edit.html", rule=rule, form=form,
        notify=alerts.notify_shown(rule, console().secrets.decrypt),
        watches=alerts.preview(db, actor(), rule_id))


@bp.post("/<int:rule_id>/test")
@permission(Permission.ALERT_RULES)
def test(rule_id: int) -> Response:
    db = database.session()
    if ConfirmForm().validate_on_submit():
        try:
            alert = alerts.test_alert(db, actor(), rule_id)
            db.commit()
        except Problem as exc:
            db.rollback()
            flash(exc.message, "error")
        else:
            for channel, result in console().alerts.deliver(alert).items():
                flash(f"Test {channel}: {result}", "success" if result == "ok" else "error")
    return redirect(url_for("alerts.index"))


@bp.post("/<int:rule_id>/enabled")
@permission(Permission.ALERT_RULES)
def switch(rule_id: int) -> Response:
    def turn() -> str:
        rule = alerts.update_rule(database.session(), actor(), rule_id,
                                  {"enabled": request.form.get("enabled") == "1"},
                                  console().secrets.encrypt)
        return f"Alert rule {rule.name} {'on' if rule.enabled else 'off'}."

    return pressed(turn, url_for("alerts.index"))


@bp.post("/<int:rule_id>/delete")
@permission(Permission.ALERT_RULES)
def delete(rule_id: int) -> Response:
    def remove() -> str:
        alerts.delete_rule(database.session(), actor(), rule_id)
        return "Alert rule deleted."

    return pressed(remove, url_for("alerts.index"))
