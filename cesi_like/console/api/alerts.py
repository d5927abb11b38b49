"""`/api/v1/alerts`: alert rules (admin): list, add, turn off or on, delete, and send a test
alert. Routes on
the API blueprint (its auth, CSRF and JSON errors)."""

from __future__ import annotations

from flask import current_app, jsonify
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..services import Forbidden, alerts
from ..storage import db as database
from ..storage.models import AlertRule, Role
from ..web.activity import actor
from . import _body, bp


@bp.get("/alerts")
def list_alerts() -> Response:
    user = actor().user
    if user is None or not user.has_role(Role.ADMIN):
        raise Forbidden("alert rules need the admin role")
    rules = database.session().scalars(select(AlertRule).order_by(AlertRule.name))
    return jsonify([alerts.rule_json(rule) for rule in rules])


@bp.post("/alerts")
def create_alert() -> tuple[Response, int]:
    db = database.session()
    rule = alerts.create_rule(db, actor(), _body(),
                              current_app.extensions["cesi_secrets"].encrypt)
    db.commit()
    return jsonify(alerts.rule_json(rule)), 201


@bp.patch("/alerts/<int:rule_id>")
def switch_alert(rule_id: int) -> Response:
    db = database.session()
    rule = alerts.set_enabled(db, actor(), rule_id, _body())
    db.commit()
    return jsonify(alerts.rule_json(rule))


@bp.delete("/alerts/<int:rule_id>")
def delete_alert(rule_id: int) -> tuple[str, int]:
    db = database.session()
    alerts.delete_rule(db, actor(), rule_id)
    db.commit()
    return "", 204


@bp.post("/alerts/<int:rule_id>/test")
def test_alert(rule_id: int) -> Response:
    """Deliver a made-up alert of this rule now; the outcome per channel."""
    db = database.session()
    alert = alerts.test_alert(db, actor(), rule_id,
                              current_app.extensions["cesi_secrets"].decrypt)
    db.commit()
    return jsonify(current_app.extensions["cesi_alerts"].sender.deliver(alert))
