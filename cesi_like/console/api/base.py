"""What every `/api/v1` route shares: the blueprint, JSON errors, CSRF for session clients,
and reading a JSON body."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms.validators import ValidationError

from ..services import Invalid, ServiceError, validate
from ..services.confirm import ConfirmationNeeded
from ..storage import db as database

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> tuple[Response, int]:
    if isinstance(exc, ConfirmationNeeded):  # what to send as "confirm", and what it touches
        return jsonify(error=exc.message, confirm=exc.question.word,
                       touches=exc.question.touches,
                       protected=list(exc.question.protected)), exc.status
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


def body(allowed: Collection[str], required: bool = True) -> dict[str, Any]:
    """The request's JSON object, holding none but the `allowed` fields. Anything else is a
    400 that changes nothing: a body that is not `application/json` (a form posting JSON as
    text/plain), not an object, or with a field not allowed (`grops` must not be ignored).
    Without a body: `{}` unless one is `required`."""
    if not request.get_data(cache=True):
        if required:
            raise Invalid("send a JSON object (Content-Type: application/json)")
        return {}
    if request.mimetype != "application/json":
        raise Invalid("send JSON with Content-Type: application/json")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # `[[[[...` fifty thousand deep
        raise Invalid("the JSON nests too deeply") from None
    if not isinstance(data, dict):
        raise Invalid("send a JSON object (Content-Type: application/json)")
    validate.fields(data, allowed)
    return data


def created(shown: Callable[[], Any]) -> tuple[Response, int]:
    """A POST that made something: the request's session committed, then 201 with what
    `shown` makes of it (after the commit: the database fills in defaults, ids, times)."""
    database.session().commit()
    return jsonify(shown()), 201


def deleted(remove: Callable[[Session], object]) -> tuple[str, int]:
    """A DELETE: the service call on the request's session, committed; 204 No Content."""
    db = database.session()
    remove(db)
    db.commit()
    return "", 204


def iso(value: datetime.datetime | None) -> str | None:
    """A stored UTC time as the API shows it."""
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None
