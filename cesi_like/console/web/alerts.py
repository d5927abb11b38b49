"""Alert rules in the browser (admins): the list with Test, Turn off / on and Delete, and a
form to add one.
The rules are `services/alerts.py`."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..security import require_role
from ..services import ServiceError, alerts
from ..storage import db as database
from ..storage.models import AlertRule, Role
from .activity import actor
from .forms import AlertForm, ConfirmForm

bp = Blueprint("alerts", __name__, url_prefix="/admin/alerts")


@bp.route("", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def index() -> Response | str:
    db = database.session()
    form = AlertForm()
    if form.validate_on_submit():
        fields = {key: value for key, value in form.data.items()
                  if key in alerts.RULE_FIELDS and value not in (None, "")}
        try:
            rule = alerts.create_rule(db, actor(), fields,
                                      current_app.extensions["cesi_secrets"].encrypt)
            db.commit()
        except ServiceError as exc:
            db.rollback()
            form.name.errors = [*form.name.errors, exc.message]
        else:
            flash(f"Alert rule {rule.name} added.", "success")
            return redirect(url_for("alerts.index"))
    rules = db.scalars(select(AlertRule).order_by(AlertRule.name)).all()
    return render_template("admin/alerts.html", rules=rules, form=form, confirm=ConfirmForm())


@bp.post("/<int:rule_id>/test")
@require_role(Role.ADMIN)
def test(rule_id: int) -> Response:
    db = database.session()
    if ConfirmForm().validate_on_submit():
        try:
            alert = alerts.test_alert(db, actor(), rule_id,
                                      current_app.extensions["cesi_secrets"].decrypt)
            db.commit()
        except ServiceError as exc:
            db.rollback()
            flash(exc.message, "error")
        else:
            outcome = current_app.extensions["cesi_alerts"].sender.deliver(alert)
            for channel, result in outcome.items():
                flash(f"Test {channel}: {result}", "success" if result == "ok" else "error")
    return redirect(url_for("alerts.index"))


@bp.post("/<int:rule_id>/enabled")
@require_role(Role.ADMIN)
def switch(rule_id: int) -> Response:
    db = database.session()
    if ConfirmForm().validate_on_submit():
        try:
            rule = alerts.set_enabled(db, actor(), rule_id,
                                      {"enabled": request.form.get("enabled") == "1"})
            db.commit()
            flash(f"Alert rule {rule.name} {'on' if rule.enabled else 'off'}.", "success")
        except ServiceError as exc:
            db.rollback()
            flash(exc.message, "error")
    return redirect(url_for("alerts.index"))


@bp.post("/<int:rule_id>/delete")
@require_role(Role.ADMIN)
def delete(rule_id: int) -> Response:
    db = database.session()
    if ConfirmForm().validate_on_submit():
        try:
            alerts.delete_rule(db, actor(), rule_id)
            db.commit()
            flash("Alert rule deleted.", "success")
        except ServiceError as exc:
            db.rollback()
            flash(exc.message, "error")
    return redirect(url_for("alerts.index"))
