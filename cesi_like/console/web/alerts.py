"""Alert rules in the browser (admins): the list with Test, Turn off / on and Delete, and a
form to add one. The rules are `services/alerts.py`; delivery is `workers/alerts.py`."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..context import actor, console
from ..guard import permission
from ..services import Problem, alerts
from ..services.access import Permission
from ..storage import db as database
from .flows import pressed, saved
from .forms import AlertForm, ConfirmForm

bp = Blueprint("alerts", __name__, url_prefix="/admin/alerts")


@bp.route("", methods=["GET", "POST"])
@permission(Permission.ALERT_RULES)
def index() -> Response | str:
    db = database.session()
    form = AlertForm()

    def create() -> str:
        fields = {key: value for key, value in form.data.items()
                  if key in alerts.RULE_FIELDS and value not in (None, "")}
        if "notify" in fields:
            fields["notify"] = [line.strip() for line in fields["notify"].splitlines()
                                if line.strip()]
        rule = alerts.create_rule(db, actor(), fields, console().secrets.encrypt)
        return f"Alert rule {rule.name} added."

    rules = alerts.rules(db, actor())
    return saved(form, create, url_for("alerts.index")) or render_template(
        "admin/alerts.html", rules=rules, form=form, confirm=ConfirmForm(),
        notify={rule.id: alerts.notify_shown(rule, console().secrets.decrypt)
                for rule in rules})


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
        rule = alerts.set_enabled(database.session(), actor(), rule_id,
                                  {"enabled": request.form.get("enabled") == "1"})
        return f"Alert rule {rule.name} {'on' if rule.enabled else 'off'}."

    return pressed(turn, url_for("alerts.index"))


@bp.post("/<int:rule_id>/delete")
@permission(Permission.ALERT_RULES)
def delete(rule_id: int) -> Response:
    def remove() -> str:
        alerts.delete_rule(database.session(), actor(), rule_id)
        return "Alert rule deleted."

    return pressed(remove, url_for("alerts.index"))
