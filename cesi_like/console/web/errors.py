"""Errors as JSON for API clients and as a page for browsers (by path and Accept header)."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from ..guard import wants_json
from ..services import ServiceError
from ..storage import db as database

log = logging.getLogger("cesi_like.console")


def _respond(status: int, title: str, message: str) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify(error=message), status
    return render_template("error.html", status=status, title=title, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[Response | str, int]:
        return _respond(400, "Form expired", "The form's security token is missing or "
                        "expired. Reload the page and try again.")

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> tuple[Response | str, int]:
        titles = {403: "Forbidden", 404: "Not found", 409: "Conflict", 502: "Node failed"}
        return _respond(exc.status, titles.get(exc.status, "Bad request"), exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = make_response(_respond(status, exc.name, exc.description or exc.name))
        for name, value in exc.get_headers():  # e.g. a 405's Allow, a 401's WWW-Authenticate
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response | str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        try:
            database.session().rollback()
        except Exception:  # the database may be what failed
            log.exception("rollback failed")
        error = InternalServerError()
        return _respond(500, error.name, "Something went wrong on our side; it was logged.")
