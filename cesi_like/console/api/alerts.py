"""`/api/v1/alerts` (admins): alert rules: list, add, change (any field; off and on), see
what one watches, delete, and send a test alert."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ..context import actor, console
from ..guard import permission
from ..services import alerts, thresholds
from ..services.access import Permission
from ..storage import db as database
from ..storage.models import AlertRule
from .base import body, bp, deleted


@bp.get("/alerts")
@permission(Permission.ALERT_RULES)
def list_alerts() -> Response:
    reveal = console().secrets.decrypt
    return jsonify([alerts.rule_json(rule, reveal)
                    for rule in alerts.rules(database.session(), actor())])


@bp.post("/alerts")
@permission(Permission.ALERT_RULES)
def create_alert() -> tuple[Response, int]:
    db = database.session()
    rule = alerts.create_rule(db, actor(), body(alerts.RULE_FIELDS), console().secrets.encrypt)
    db.commit()
    return jsonify(_answer(db, rule)), 201


def _answer(db: Session, rule: AlertRule) -> dict[str, Any]:
    """The rule as the API shows it, and, for a memory or CPU rule, the nodes it cannot
    watch (supervisord has no such figures)."""
    shown = alerts.rule_json(rule, console().secrets.decrypt)
    missing = thresholds.not_available_on(db, rule)
    if missing:
        shown["note"] = thresholds.NOT_AVAILABLE.format(nodes=", ".join(missing))
    return shown


@bp.patch("/alerts/<int:rule_id>")
@permission(Permission.ALERT_RULES)
def update_alert(rule_id: int) -> Response:
    """Change any of the rule's fields (`{"enabled": false}` turns it off)."""
    db = database.session()
    rule = alerts.update_rule(db, actor(), rule_id, body(alerts.RULE_FIELDS),
                              console().secrets.encrypt)
    db.commit()
    return jsonify(_answer(db, rule))


@bp.get("/alerts/<int:rule_id>/preview")
@permission(Permission.ALERT_RULES)
def preview_alert(rule_id: int) -> Response:
    """What the rule watches now: nodes, processes, and those already in its state."""
    return jsonify(alerts.preview(database.session(), actor(), rule_id))


@bp.delete("/alerts/<int:rule_id>")
@permission(Permission.ALERT_RULES)
def delete_alert(rule_id: int) -> tuple[str, int]:
    return deleted(lambda db: alerts.delete_rule(db, actor(), rule_id))


@bp.post("/alerts/<int:rule_id>/test")
@permission(Permission.ALERT_RULES)
def test_alert(rule_id: int) -> Response:
    """Deliver a made-up alert of this rule now; the outcome per channel."""
    db = database.session()
    alert = alerts.test_alert(db, actor(), rule_id)
    db.commit()
    return jsonify(console().alerts.deliver(alert))
