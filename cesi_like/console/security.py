"""Passwords, API tokens, the secret key, and the role and scope checks every view uses."""

from __future__ import annotations

import datetime
import functools
import hashlib
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .storage.models import ApiToken, Role, Setting, User, utcnow

F = TypeVar("F", bound=Callable[..., Any])

MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    """scrypt, werkzeug's default: salted and deliberately slow."""
    return generate_password_hash(password, method="scrypt")


@functools.cache
def _nobody() -> str:
    """What an unknown user's password is checked against: the same scrypt work as a real
    check (made on first use, so commands that never log anyone in do not pay for it)."""
    return generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


def check_password(user: User, password: str) -> bool:
    return verify_password_hash(user.password_hash, password)


def verify_password_hash(stored: str | None, password: str) -> bool:
    """`password` against a stored hash; against a throwaway one when there is none, so an
    unknown user takes as long to refuse as a wrong password."""
    if stored is None:
        check_password_hash(_nobody(), password)
        return False
    return check_password_hash(stored, password)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"Passwords need at least {MIN_PASSWORD} characters."
    return None


def new_token() -> tuple[str, str]:
    """(token to show once, SHA-256 to store). Tokens are long random values, so a fast hash
    is enough: there is nothing to brute-force."""
    token = "cesi_" + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_for_secret(db: Session, secret: str) -> ApiToken | None:
    """The live token with this secret: known, not expired, of an active user."""
    record = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    now = utcnow()
    if record is None or not record.user.active or (record.expires is not None
                                                     and record.expires <= now):
        return None
    # a write per request would make every API read contend for the database's write lock
    if record.last_used is None or now - record.last_used > datetime.timedelta(minutes=1):
        record.last_used = now
        db.commit()
    return record


def stable_secret_key(db: Session) -> str:
    """The key that signs sessions: generated once and kept in the database, so every worker
    and every restart agrees on it (CESI's changed at each start and broke multi-worker use)."""
    existing = db.get(Setting, "secret_key")
    if existing is not None:
        return existing.value
    db.add(Setting(key="secret_key", value=secrets.token_hex(32)))
    try:
        db.commit()
    except IntegrityError:  # another worker won the race: use its key
        db.rollback()
    stored = db.get(Setting, "secret_key")
    assert stored is not None
    return stored.value


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


def require_role(role: Role) -> Callable[[F], F]:
    """View decorator: 403 unless the logged-in user has at least `role` (login is checked
    app-wide before any view runs)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or not current_user.has_role(role):
                _record_denied(role)
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _record_denied(role: Role) -> None:
    """A refused attempt is activity worth seeing (someone probing, or a role set too low)."""
    from flask import request

    from .storage import db as database
    from .web.activity import record

    db = database.session()
    record(db, "denied", target=f"{request.method} {request.path}"[:256], result="denied",
           detail=f"needs the {role.value} role")
    db.commit()
