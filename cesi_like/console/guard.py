"""What every request passes before a view and every answer carries after it: a login or a
token (a read-only token may only read), the permission a view declares (decided by
`services.access`), where a redirect may lead, and the security headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import g, jsonify, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from .context import actor
from .services import access
from .services.access import Permission
from .services.activity import Result, record
from .storage import db as database

F = TypeVar("F", bound=Callable[..., Any])

# the only endpoints without a login; /metrics checks a token, a login or its allow-list
PUBLIC_ENDPOINTS = {"auth.login", "sso.oidc_login", "sso.oidc_callback", "static",
                    "health.healthz", "metrics.metrics"}

# Scripts only from our own static files: no inline script, no eval, so a node's or a user's
# text that slips into a page still cannot run.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def wants_json() -> bool:
    """Whether the answer should be JSON: the API, or a client that prefers it."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def require_login() -> Response | None:
    """Every view needs a logged-in user or a token, except the public ones; a read-only
    token may only read (a refusal recorded, by method and path, not as a new action)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        if g.get("token_read_only") and request.method not in ("GET", "HEAD", "OPTIONS"):
            db = database.session()
            record(db, actor(), "denied", f"{request.method} {request.path}", Result.DENIED,
                   "read-only token")
            db.commit()
            response = jsonify(error="this token is read-only")
            response.status_code = 403
            return response
        return None
    if wants_json():
        response = jsonify(error="authentication required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="cesi-like"'
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def permission(needed: Permission) -> Callable[[F], F]:
    """View decorator, the first gate: 403 (recorded) unless the user holds `needed`. The
    services decide again, with the thing at hand (its scope, its state)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            access.require(database.session(), actor(), needed, "denied",
                           f"{request.method} {request.path}")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths: no scheme, no host, no `//evil` (no open redirect)."""
    if not target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return default  # CR/LF would split the Location header
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def secure_remember_cookie(response: Response) -> Response:
    """flask-login's remember cookie takes its Secure flag from static config; mark it Secure
    whenever this request came over https, as the session cookie is."""
    if request.is_secure:
        cookies = response.headers.getlist("Set-Cookie")
        if any(c.startswith("remember_token=") and "; Secure" not in c for c in cookies):
            response.headers.setlist("Set-Cookie", [
                f"{c}; Secure" if c.startswith("remember_token=") and "; Secure" not in c
                else c for c in cookies])
    return response
