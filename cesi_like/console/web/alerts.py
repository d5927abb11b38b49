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
from .forms import AlertForm, ConfirmForm

bp = Blueprint("alerts", __name__, url_prefix="/admin/alerts")


@bp.route("", methods=["GET", "POST"])
@permission(Permission.ALERT_RULES)
def index() -> Response | str:
    db = database.session()
    form = AlertForm()
    if form.validate_on_submit():
        fields = {key: value for key, value in form.data.items()
                  if key in alerts.RULE_FIELDS and value not in (None, "")}
        try:
            rule = alerts.create_rule(db, actor(), fields, console().secrets.encrypt)
            db.commit()
        except Problem as exc:
            db.rollback()
            field = getattr(form, exc.field or "", None) or form.name
            field.errors = [*field.errors, exc.message]
        else:
            flash(f"Alert rule {rule.name} added.", "success")
            return redirect(url_for("alerts.index"))
    return render_template("admin/alerts.html", rules=alerts.rules(db, actor()), form=form,
                           confirm=ConfirmForm())


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
    db = database.session()
    if ConfirmForm().validate_on_submit():
        try:
            rule = alerts.set_enabled(db, actor(), rule_id,
                                      {"enabled": request.form.get("enabled") == "1"})
            db.commit()
            flash(f"Alert rule {rule.name} {'on' if rule.enabled else 'off'}.", "success")
        except Problem as exc:
            db.rollback()
            flash(exc.message, "error")
    return redirect(url_for("alerts.index"))


@bp.post("/<int:rule_id>/delete")
@permission(Permission.ALERT_RULES)
def delete(rule_id: int) -> Response:
    db = database.session()
    if ConfirmForm().validate_on_submit():
        try:
            alerts.delete_rule(db, actor(), rule_id)
            db.commit()
            flash("Alert rule deleted.", "success")
        except Problem as exc:
            db.rollback()
            flash(exc.message, "error")
    return redirect(url_for("alerts.index"))
