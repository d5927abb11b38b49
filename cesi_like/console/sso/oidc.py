"""The console as an OpenID Connect client (Authlib): authorization code flow with PKCE
(S256), `state` and `nonce` kept in the session, the provider found from its discovery URL,
and the ID token verified by Authlib against the provider's JWKS (signature, issuer, audience,
expiry, nonce). One client per app, so apps with different providers can share a process.

With `offline_access` in the scopes, the provider's refresh token lets the console ask about a
user again without them (`ask_again`): the refresh-token grant answers with a fresh ID token
(or, from providers that send none, the userinfo endpoint is read), checked like the first."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from joserfc.errors import JoseError

from . import Identity, Unavailable
from .config import OidcSettings

_KEY = "cesi_like.oidc"
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # the console's rule (services.users)


class BadClaims(Exception):
    """The provider or its ID token is not what the console can use (an issuer that does not
    match, no usable username)."""


def init_app(app: Flask, settings: OidcSettings) -> None:
    oauth = OAuth(app)
    app.extensions[_KEY] = oauth.register(  # type: ignore[no-untyped-call]
        "oidc", client_id=settings.client_id, client_secret=settings.client_secret,
        server_metadata_url=settings.discovery_url,
        client_kwargs={"scope": settings.scopes, "code_challenge_method": "S256",
                       "default_timeout": settings.timeout})


def client() -> Any:
    """This app's Authlib client (a FlaskOAuth2App)."""
    return current_app.extensions[_KEY]


def claims_options(settings: OidcSettings) -> dict[str, Any]:
    """What the ID token must say besides its signature, expiry and nonce (which Authlib
    always checks): issued by this provider, for this client. Authlib checks the audience
    only when told to. The issuer must be the one the discovery URL belongs to, so one
    provider's metadata cannot name another."""
    issuer = str(client().load_server_metadata().get("issuer") or "")
    if not issuer or not settings.discovery_url.startswith(issuer.rstrip("/") + "/"):
        raise BadClaims(f"the provider's issuer {issuer[:100]!r} does not match its "
                        "discovery URL")
    return {"iss": {"essential": True, "values": [issuer]},
            "aud": {"essential": True, "values": [settings.client_id]}}


def identity(claims: dict[str, Any], settings: OidcSettings) -> Identity:
    """The console user a verified ID token names, with its groups claim (a list, or one
    string); BadClaims when the username claim is missing or not a console username."""
    username = claims.get(settings.username_claim)
    if not isinstance(username, str) or not USERNAME.match(username):
        raise BadClaims(f"the provider's {settings.username_claim!r} claim is not a usable "
                        "username (1 to 64 letters, digits, '.', '_' or '-')")
    raw = claims.get(settings.groups_claim, [])
    groups = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return Identity(username, "oidc", tuple(g for g in groups if isinstance(g, str))[:1000])


def ask_again(settings: OidcSettings, refresh_token: str,
              keep: Callable[[str], None]) -> Identity | None:
    """Who the provider says the holder of `refresh_token` is now. None when it refuses the
    grant (`invalid_grant`: the user is gone or disabled there, or the grant was revoked);
    Unavailable when it cannot answer, or answers with something the console cannot use.
    A new refresh token in the answer goes to `keep` first, even when the rest is refused:
    providers that rotate them have spent the old one."""
    try:
        token = client().fetch_access_token(grant_type="refresh_token",
                                            refresh_token=refresh_token)
    except AuthlibBaseError as exc:
        if getattr(exc, "error", None) == "invalid_grant":
            return None
        raise Unavailable(f"the provider refused the re-check: {exc}") from None
    except (requests.RequestException, ValueError) as exc:
        raise Unavailable(f"the provider could not be reached: {exc}") from None
    if token.get("refresh_token"):
        keep(str(token["refresh_token"]))
    try:
        if token.get("id_token"):
            claims = client().parse_id_token(token, nonce=None,
                                             claims_options=claims_options(settings))
        else:
            claims = client().userinfo(token=token)
        return identity(dict(claims), settings)
    except (AuthlibBaseError, JoseError, BadClaims, requests.RequestException,
            ValueError) as exc:
        raise Unavailable(f"the provider's answer could not be used: {exc}") from None
