"""What a directory's or provider's answer does to the console's accounts.

An identity that passes its directory or provider becomes (or updates) an account of that
source: no local password, its role and environments from the group map, enabled. A refusal
(not found, filtered out as disabled, in no mapped group) disables an existing account of that
source, ends its sessions and revokes its tokens; the directory's next yes enables it again,
unless an admin disabled it here (`disabled_by = "admin"` sticks). A name that belongs to an
account of another source is never taken over: a directory user called `admin` does not
become the local admin.

Sessions and API tokens of SSO accounts are confirmed again every `sso_recheck_minutes`
(`due`): LDAP with a service account asks the directory again, OpenID with the refresh token
the provider gave at sign-in asks the provider (`recheck`); otherwise the session ends and the
user signs in again, which asks the directory or provider."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from ..sso import Identity, Unavailable
from ..sso.groups import Grant, GroupRule, grant_for
from ..storage.models import Environment, Source, User, utcnow
from . import ServiceError, tokens
from .activity import Actor, Result, record

log = logging.getLogger(__name__)
# asks the directory or provider about a user without them: who they are now (None: not
# known there any more); Unavailable when it cannot answer
Lookup = Callable[[User], Identity | None]
NO_PASSWORD = "!"  # never a valid hash: an SSO account cannot log in with a local password


class LoginRefused(ServiceError):
    """The directory or provider vouched for the user, but the console will not let them in;
    the message says why (it is the user's own business, so it may)."""

    status = 403


def _grant(db: Session, identity: Identity,
           rules: tuple[GroupRule, ...]) -> tuple[Grant, list[Environment]] | None:
    """The grant and its environments as rows; None when no rule matches, or when every
    environment the rules name is missing here (never "all" by accident)."""
    grant = grant_for(identity.groups, rules)
    if grant is None:
        return None
    if not grant.environments:
        return grant, []
    scope = list(db.scalars(select(Environment).where(
        Environment.name.in_(grant.environments)).order_by(Environment.name)))
    missing = set(grant.environments) - {env.name for env in scope}
    if missing:
        log.warning("group map names environments that do not exist: %s",
                    ", ".join(sorted(missing)))
    return (grant, scope) if scope else None


def shut_out(db: Session, actor: Actor, user: User, why: str) -> None:
    """The directory or provider no longer allows `user`: disabled until its next yes,
    sessions ended, tokens revoked (not committed)."""
    user.sso_refresh = None  # a grant the provider refused is not asked again
    if user.active:
        revoked = tokens.revoke_all(db, user)
        user.active = False
        user.disabled_by = user.source
        record(db, actor, "user.update", user.username,
               detail=f"disabled by {user.source}: {why}; {revoked} tokens revoked")
    user.end_sessions()


def admit(db: Session, actor: Actor, identity: Identity, rules: tuple[GroupRule, ...],
          method: str) -> User:
    """The account `identity` logs in as (created or brought up to date; not committed), or
    LoginRefused with the reason (recorded)."""
    user = db.scalar(select(User).where(User.username == identity.username))
    refusal = None
    if user is not None and user.source != identity.source:
        refusal = (f"A {user.source} account named {identity.username} exists here; "
                   "ask an admin.")
    elif user is not None and not user.active and user.disabled_by == "admin":
        refusal = "Your account is disabled in this console; ask an admin."
    granted = None if refusal else _grant(db, identity, rules)
    if refusal is None and granted is None:
        refusal = "You are not in a group that may use this console; ask an admin."
        if user is not None:
            shut_out(db, actor, user, "in no mapped group")
    if refusal is not None or granted is None:
        record(db, actor, "login.failed", identity.username, Result.DENIED,
               f"via {method}: {refusal}", username=identity.username)
        db.commit()
        raise LoginRefused(refusal or "")
    grant, scope = granted
    changes = []
    if user is None:
        user = User(username=identity.username, source=identity.source,
                    password_hash=NO_PASSWORD, role=grant.role.value, active=True)
        db.add(user)
        changes.append(f"created, role={grant.role.value}")
    elif user.role != grant.role.value:
        changes.append(f"role {user.role}->{grant.role.value}")
        user.role = grant.role.value
    if [e.id for e in scope] != [e.id for e in user.scope]:
        changes.append("environments " + (",".join(e.name for e in scope) or "all"))
    user.scope = scope
    if not user.active:
        changes.append("enabled")
        user.active, user.disabled_by = True, None
    user.last_login = user.sso_checked_at = utcnow()
    record(db, actor, "login", identity.username, detail="; ".join([f"via {method}", *changes]),
           username=identity.username)
    return user


def due(user: User, recheck_minutes: float, now: datetime.datetime | None = None) -> bool:
    """Whether an SSO account's session must be confirmed again before it is used."""
    if user.source == Source.LOCAL:
        return False
    checked = user.sso_checked_at
    return checked is None or (now or utcnow()) - checked > datetime.timedelta(
        minutes=recheck_minutes)


def _claim(db: Session, user: User, recheck_minutes: float) -> bool:
    """Whether this request is the one to ask about `user` now (committed). Concurrent
    requests of one user (an automation's parallel API calls) would each trade the same
    refresh token, and a provider that rotates them takes a spent one used again as theft
    and revokes the grant: one UPDATE, of the row only while it is still `due`, picks one."""
    now = utcnow()
    cutoff = now - datetime.timedelta(minutes=recheck_minutes)
    result = cast(CursorResult[Any], db.execute(
        update(User).where(User.id == user.id, or_(User.sso_checked_at.is_(None),
                                                    User.sso_checked_at < cutoff))
        .values(sso_checked_at=now)))
    won = result.rowcount == 1
    db.commit()
    if won:
        user.sso_checked_at = now
    return won


def recheck(db: Session, actor: Actor, user: User, lookup: Lookup | None,
            rules: tuple[GroupRule, ...], recheck_minutes: float) -> bool:
    """Confirm an SSO account whose check is `due` (committed): True when it may go on.
    `lookup` asks the directory or provider about the user without them (LDAP with a service
    account, OpenID with a refresh token); without one, and when it cannot answer, the
    session ends (signing in again asks)."""
    where = "directory" if user.source == Source.LDAP else "provider"
    if lookup is None:
        user.end_sessions()
        record(db, actor, "logout", user.username,
               detail=f"{user.source} session over: sign in again to be checked")
        db.commit()
        return False
    before = user.sso_checked_at
    if not _claim(db, user, recheck_minutes):
        return True  # another request of this user is asking right now: it decides
    try:
        identity = lookup(user)
    except Unavailable as exc:
        user.sso_checked_at = before  # unanswered: the next request asks again
        user.end_sessions()
        record(db, actor, "logout", user.username, Result.FAILED,
               f"the {where} could not confirm the session: {exc}")
        db.commit()
        return False
    granted = None
    if identity is None:
        refused = "no longer in the directory" if user.source == Source.LDAP \
            else "the provider refused its refresh token"
    elif identity.username != user.username:
        refused = "named another user"
    else:
        granted, refused = _grant(db, identity, rules), "in no mapped group"
    if granted is None:
        shut_out(db, actor, user, refused)
        db.commit()
        return False
    grant, scope = granted
    if grant.role.value != user.role or [e.id for e in scope] != [e.id for e in user.scope]:
        record(db, actor, "user.update", user.username,
               detail=f"from the {where}: role {grant.role.value}, environments "
                      + (",".join(e.name for e in scope) or "all"))
        user.role, user.scope = grant.role.value, scope
    user.sso_checked_at = utcnow()
    db.commit()
    return True
