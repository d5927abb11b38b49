"""Signing in with an OpenID Connect provider: the redirect to it, its answer, and the end of
its session at logout (where it offers an end-session endpoint).

With `offline_access` in the scopes, the refresh token the provider gives is kept (sealed) so
that re-checks can ask the provider without the user (web.auth).

Every failure comes back to the login page with what went wrong (a tampered or stale `state`,
a code used twice, an ID token for another client or expired), is recorded, and logs nobody
in."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from flask import Blueprint, abort, current_app, redirect, request, session, url_for
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from ..context import actor, console
from ..guard import safe_next
from ..services import logins, sso
from ..services.activity import Result, record
from ..sso import oidc
from ..sso.config import SignIn
from ..storage import db as database
from .auth import ID_TOKEN, login_page, signed_in

bp = Blueprint("sso", __name__)
log = logging.getLogger(__name__)
NEXT = "oidc_next"
SILENT = "oidc_silent"  # this sign-in asked the provider not to show anything (prompt=none)
# what a provider answers a silent sign-in when it would have to show a page: its session
# ended, or it needs the user for something else (OpenID Connect Core 1.0, 3.1.2.6)
NEEDS_THE_USER = {"login_required", "interaction_required", "consent_required",
                  "account_selection_required"}


def _settings() -> SignIn:
    sign_in: SignIn = current_app.config["CESI_SIGN_IN"]
    if sign_in.active_oidc is None:
        abort(404)
    return sign_in


@bp.get("/login/oidc")
def oidc_login() -> Response | tuple[str, int]:
    """Off to the provider, with a fresh state, nonce and PKCE verifier in the session;
    `silent=1` (a session whose check was due, web.auth.RESUME) asks it to answer without
    showing a page."""
    settings = _settings().oidc
    assert settings is not None
    session[NEXT] = safe_next(request.args.get("next"), url_for("fleet.dashboard"))
    silent = session[SILENT] = request.args.get("silent") == "1"
    prompt = "none" if silent else settings.prompt
    try:
        answer: Response = oidc.client().authorize_redirect(
            url_for("sso.oidc_callback", _external=True), **({"prompt": prompt} if prompt
                                                               else {}))
    except (requests.RequestException, AuthlibBaseError, ValueError) as exc:
        log.warning("OpenID provider discovery failed: %s", exc)
        return login_page("The sign-in provider could not be reached; try again later. "
                          "Local accounts can still log in.", 503)
    return answer


@bp.get("/login/oidc/callback")
def oidc_callback() -> Response | tuple[str, int]:
    sign_in = _settings()
    assert sign_in.oidc is not None
    db = database.session()
    refused = logins.address_slot(db, actor().ip, current_app.config["CESI_LOGIN_POLICY"])
    if refused is not None:
        return login_page(f"Too many failed logins from here. Try again in "
                          f"{refused.retry_after} seconds.", 429)
    method = f"oidc ({sign_in.oidc.name})"
    silent = session.pop(SILENT, False)
    try:
        token = oidc.client().authorize_access_token(
            claims_options=oidc.claims_options(sign_in.oidc))
        claims = token.get("userinfo")
        if not claims:
            raise oidc.BadClaims("the provider sent no ID token")
        identity = oidc.identity(dict(claims), sign_in.oidc)
    except (AuthlibBaseError, JoseError, oidc.BadClaims, requests.RequestException,
            ValueError) as exc:
        # Authlib's own errors (state, the provider's error answers) and joserfc's (the ID
        # token: signature, issuer, audience, expiry, nonce)
        why = getattr(exc, "description", None) or str(exc) or type(exc).__name__
        record(db, actor(), "login.failed", "", Result.DENIED, f"via {method}: {why}"[:500],
               username="-")
        db.commit()
        if silent and getattr(exc, "error", None) in NEEDS_THE_USER:
            return login_page(f"Your session has ended: sign in with {sign_in.oidc.name} "
                              "again.", 401)
        return login_page(f"Sign-in with {sign_in.oidc.name} failed: {why}"[:300], 401)
    try:
        user = sso.admit(db, actor(), identity, sign_in.rules("oidc"), method)
    except sso.LoginRefused as exc:
        return login_page(exc.message, exc.status)
    if token.get("refresh_token") and sign_in.oidc.offline:
        # asks the provider about the user at each re-check, without them (web.auth); a
        # silent sign-in may bring none, and the one kept still holds
        user.sso_refresh = console().secrets.encrypt(str(token["refresh_token"]))
    logins.address_succeeded(db, actor().ip)
    db.commit()
    target = session.pop(NEXT, None) or url_for("fleet.dashboard")
    signed_in(user)
    if token.get("id_token"):
        session[ID_TOKEN] = token["id_token"]  # for the provider's logout
    return redirect(safe_next(target, url_for("fleet.dashboard")))


def end_session_url(id_token: str | None) -> str | None:
    """The provider's end-session URL for this ID token, when it has one (None otherwise, or
    when it cannot be asked): logout sends the browser on to it."""
    sign_in: SignIn = current_app.config["CESI_SIGN_IN"]
    if not id_token or sign_in.oidc is None:
        return None
    try:
        endpoint = oidc.client().load_server_metadata().get("end_session_endpoint")
    except (requests.RequestException, AuthlibBaseError, ValueError):
        return None
    if not endpoint:
        return None
    query = urlencode({"id_token_hint": id_token, "client_id": sign_in.oidc.client_id,
                       "post_logout_redirect_uri": url_for("auth.login", _external=True)})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
