"""`/api/v1/tokens`: one's own API tokens (admins: anyone's)."""

from __future__ import annotations

from flask import jsonify, request
from werkzeug.wrappers import Response

from ..context import actor
from ..services import tokens as token_rules
from ..services import users as user_rules
from ..services import validate
from ..storage import db as database
from .base import body, bp


@bp.get("/tokens")
def list_tokens() -> Response:
    """Your tokens; every user's for an admin with ?all=1."""
    everyone = request.args.get("all", "") in ("1", "true")
    return jsonify([token_rules.describe(t) for t in
                    token_rules.visible(database.session(), actor(), everyone)])


@bp.post("/tokens")
def create_token() -> tuple[Response, int]:
    """A new token for yourself (an admin may name another user); its secret, once."""
    db = database.session()
    data = body({"name", "expires_days", "read_only", "username"})
    owner = actor().user if "username" not in data else user_rules.find(
        db, validate.text(data["username"], "username", required=True))
    assert owner is not None  # the login gate ran
    secret, token = token_rules.create(db, actor(), owner, data.get("name", ""),
                                       data.get("expires_days"), data.get("read_only", False))
    db.commit()
    return jsonify({**token_rules.describe(token), "token": secret}), 201


@bp.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> tuple[str, int]:
    db = database.session()
    token_rules.revoke(db, actor(), token_id)
    db.commit()
    return "", 204
