"""API tokens: one set of rules for the profile page, the API and the CLI.

Anyone may make tokens for themselves; admins may list and revoke everyone's and make them for
others. A token's secret is shown once, at creation; only its SHA-256 is stored. A token acts
with its user's current role, at most reading if it is read-only, until it expires or is
revoked; a password change or a disable revokes every token of that user (see `users`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..storage.models import ApiToken, User, utcnow
from . import access, validate
from .access import Permission
from .activity import Actor, record
from .credentials import new_token

MAX_DAYS = 3650


def create(db: Session, actor: Actor, owner: User, label: Any = "", days: Any = None,
           read_only: Any = False) -> tuple[str, ApiToken]:
    """(the secret, to show once; the stored token). Not committed."""
    access.token_owner(db, actor, owner)
    name = validate.text(label, "label")
    expires = None
    if days is not None and days != "":
        expires = utcnow() + datetime.timedelta(days=validate.whole(days, "expires_days", 1,
                                                                    MAX_DAYS))
    secret, digest = new_token()
    token = ApiToken(user_id=owner.id, token_hash=digest, name=name, expires=expires,
                     read_only=validate.flag(read_only, "read_only"))
    db.add(token)
    db.flush()
    record(db, actor, "token.create", owner.username,
           detail=f"token {token.id} {name!r}" + (" read-only" if token.read_only else "")
           + (f", expires {expires:%Y-%m-%d}" if expires else ""))
    return secret, token


def visible(db: Session, actor: Actor, everyone: bool = False) -> Sequence[ApiToken]:
    """The actor's own tokens; every user's for an admin who asks."""
    query = select(ApiToken).order_by(ApiToken.created.desc(), ApiToken.id.desc())
    if not (everyone and access.allows(actor, Permission.TOKENS_OF_OTHERS)):
        if actor.user is None:
            return []
        query = query.where(ApiToken.user_id == actor.user.id)
    return db.scalars(query).all()


def revoke(db: Session, actor: Actor, token_id: Any) -> ApiToken:
    """Delete one token: one's own, or anyone's for an admin. Not committed."""
    token = access.token(db, actor, validate.whole(token_id, "token id", 1, 2**63 - 1))
    record(db, actor, "token.revoke", token.user.username, detail=f"token {token.id} "
           f"{token.name!r}")
    db.delete(token)
    return token


def revoke_all(db: Session, user: User) -> int:
    """Delete every token of `user` (password change, disable); how many there were."""
    count = len(db.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id)).all())
    db.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    return count


def describe(token: ApiToken) -> dict[str, Any]:
    """A token as the API and the CLI show it: never its secret or hash."""
    def iso(value: datetime.datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") + "Z" if value is not None else None

    return {"id": token.id, "name": token.name, "username": token.user.username,
            "created": iso(token.created), "last_used": iso(token.last_used),
            "expires": iso(token.expires), "read_only": token.read_only,
            "expired": token.expires is not None and token.expires <= utcnow()}
