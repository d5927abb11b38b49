"""The console as an OpenID Connect client (Authlib): authorization code flow with PKCE
(S256), `state` and `nonce` kept in the session, the provider found from its discovery URL,
and the ID token verified by Authlib against the provider's JWKS (signature, issuer, audience,
expiry, nonce). One client per app, so apps with different providers can share a process."""

from __future__ import annotations

import re
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

from . import Identity
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
