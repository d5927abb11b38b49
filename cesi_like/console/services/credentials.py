"""Passwords and API tokens: how they are made, hashed and checked."""

from __future__ import annotations

import datetime
import functools
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..storage.models import ApiToken, User, utcnow

MIN_PASSWORD = 8


# scrypt, werkzeug's default: salted and deliberately slow. The test suite swaps in a cheap
# method for its own accounts (tests/conftest.py); nothing else changes it.
METHOD = "scrypt"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=METHOD)


@functools.cache
def _nobody() -> str:
    """What an unknown user's password is checked against: the same work as a real check
    (made on first use, so commands that never log anyone in do not pay for it)."""
    return generate_password_hash(secrets.token_urlsafe(16), method=METHOD)


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
