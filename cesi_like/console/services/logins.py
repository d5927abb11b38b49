"""Password logins, limited so that guessing is slow and nobody can lock a user out.

Attempts are counted per (user, address) and per address, never per user alone: an attacker
guessing an admin's password from one address locks only that pair (and that address), while
the admin still logs in from their own. Each attempt first takes a slot with one atomic UPDATE
of its counter row, before the password is checked, so parallel requests in any number of
workers or hosts get at most `per_pair` password checks per window. After each failure the
pair also waits longer before its next try (1 s, 2 s, 4 s, ...).

An unknown or disabled user costs the same scrypt check as a known one, so the answer's time
does not tell which usernames exist.

With an LDAP directory on, a name that is not a local account is checked by the directory
(the same limits apply); a local account always checks its own password, so a directory user
can never sign in as a local one. With local logins off, local admins still may (break-glass).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..sso import Identity, Unavailable
from ..sso.groups import GroupRule
from ..sso.ldap import Directory
from ..storage.models import LoginLimit, Role, Source, User, utcnow
from . import sso
from .activity import Actor, Result, record
from .credentials import verify_password_hash

NEVER = datetime.datetime(2000, 1, 1)  # a window start that is always over


@dataclass(frozen=True)
class LoginPolicy:
    per_pair: int = 5  # password checks per (user, address) per window
    per_address: int = 20  # password checks per address per window
    window: float = 900.0  # seconds
    backoff: float = 1.0  # seconds before a pair's next try after a failure, doubling
    max_backoff: float = 60.0  # ... up to this


@dataclass(frozen=True)
class Refused:
    """Too many attempts: try again in `retry_after` seconds."""

    retry_after: int


def _keys(username: str, address: str) -> tuple[str, str]:
    return f"pair:{address}:{username}"[:200], f"address:{address}"[:200]


def _take(db: Session, key: str, limit: int, window: float,
          now: datetime.datetime) -> bool:
    """One slot of `key`'s budget, or False; one atomic statement, so concurrent attempts
    in other workers or hosts are counted, not raced."""
    if db.get(LoginLimit, key) is None:
        try:
            db.execute(insert(LoginLimit).values(key=key, window_start=NEVER, attempts=0))
            db.commit()
        except IntegrityError:  # another attempt created it first: fine
            db.rollback()
    over = LoginLimit.window_start < now - datetime.timedelta(seconds=window)
    taken = db.execute(update(LoginLimit).where(
        LoginLimit.key == key,
        or_(over, and_(LoginLimit.attempts < limit,
                       or_(LoginLimit.not_before.is_(None), LoginLimit.not_before <= now))),
    ).values(attempts=case((over, 1), else_=LoginLimit.attempts + 1),
             window_start=case((over, now), else_=LoginLimit.window_start),
             not_before=case((over, None), else_=LoginLimit.not_before))
    ).rowcount  # type: ignore[attr-defined]
    db.commit()
    return bool(taken)


def _retry_after(db: Session, keys: tuple[str, ...], policy: LoginPolicy,
                 now: datetime.datetime) -> int:
    waits = [1.0]
    for row in db.scalars(select(LoginLimit).where(LoginLimit.key.in_(keys))):
        ends = row.window_start + datetime.timedelta(seconds=policy.window)
        limit = policy.per_pair if row.key.startswith("pair:") else policy.per_address
        if row.attempts >= limit and ends > now:
            waits.append((ends - now).total_seconds())
        if row.not_before is not None and row.not_before > now:
            waits.append((row.not_before - now).total_seconds())
    return int(max(waits)) + 1


def _succeeded(db: Session, pair: str, per_address: str) -> None:
    """The pair starts afresh; the address gets its slot back, so a busy office behind one
    address is limited by its failures only."""
    db.execute(delete(LoginLimit).where(LoginLimit.key == pair))
    db.execute(update(LoginLimit).where(LoginLimit.key == per_address, LoginLimit.attempts
                                        > 0).values(attempts=LoginLimit.attempts - 1))
    db.commit()


def _failed(db: Session, pair: str, policy: LoginPolicy) -> None:
    row = db.get(LoginLimit, pair)
    if row is not None and policy.backoff > 0:
        wait = min(policy.backoff * 2.0 ** max(row.attempts - 1, 0), policy.max_backoff,
                   policy.window)
        row.not_before = utcnow() + datetime.timedelta(seconds=wait)
        db.commit()


def authenticate(db: Session, username: str, password: str, address: str,
                 policy: LoginPolicy, directory: Directory | None = None
                 ) -> User | Identity | Refused | None:
    """The local user whose password this is, or the directory's identity (for a name that
    is no local account, when `directory` is given), if the limits allow a check; Refused
    when they do not (no check was made); None for a wrong password or an unknown or
    disabled user. Raises Unavailable when the directory cannot be asked."""
    now = utcnow()
    pair, per_address = _keys(username, address)
    if not _take(db, per_address, policy.per_address, policy.window, now):
        return Refused(_retry_after(db, (pair, per_address), policy, now))
    if not _take(db, pair, policy.per_pair, policy.window, now):
        return Refused(_retry_after(db, (pair, per_address), policy, now))
    user = db.scalar(select(User).where(User.username == username))
    local = user if user is not None and user.source == Source.LOCAL else None
    found: User | Identity | None = None
    if local is None and directory is not None:
        found = directory.authenticate(username, password)
    # an unknown or disabled user is checked against nothing, at the same cost
    elif verify_password_hash(local.password_hash if local and local.active else None,
                              password):
        found = local
    if found is None:
        _failed(db, pair, policy)
        return None
    _succeeded(db, pair, per_address)
    return found


def log_in(db: Session, actor: Actor, username: str, password: str, policy: LoginPolicy,
           directory: Directory | None = None, rules: tuple[GroupRule, ...] = (),
           local_on: bool = True) -> User | Refused | None:
    """`authenticate`, with its outcome recorded (committed) and the login time kept: the
    user, Refused, or None for a wrong password or an unknown or disabled user. A directory's
    identity becomes its account through `sso.admit` (LoginRefused when it may not come in);
    Unavailable when the directory cannot be asked (recorded too)."""
    try:
        outcome = authenticate(db, username, password, actor.ip, policy, directory)
    except Unavailable as exc:
        record(db, actor, "login.failed", username, Result.FAILED,
               f"via ldap: the directory could not be asked: {exc}", username=username)
        db.commit()
        raise
    if isinstance(outcome, Identity):
        user = sso.admit(db, actor, outcome, rules, "ldap")
        db.commit()
        return user
    if isinstance(outcome, Refused):
        record(db, actor, "login.refused", username, Result.DENIED, "too many failed logins",
               username=username)
    elif outcome is None:
        record(db, actor, "login.failed", username, Result.DENIED, username=username)
    elif not local_on and outcome.role != Role.ADMIN:
        record(db, actor, "login.failed", username, Result.DENIED,
               "local logins are off (only local admins may)", username=username)
        db.commit()
        raise sso.LoginRefused("Local accounts cannot log in here: use your company login.")
    else:
        outcome.last_login = utcnow()
        record(db, actor, "login", username, detail="via local password", username=username)
    db.commit()
    return outcome


def address_slot(db: Session, address: str, policy: LoginPolicy) -> Refused | None:
    """One login try from `address` without a password (a single sign-on callback): the
    address's budget applies as to password logins; None when the try may go ahead."""
    now = utcnow()
    per_address = _keys("", address)[1]
    if _take(db, per_address, policy.per_address, policy.window, now):
        return None
    return Refused(_retry_after(db, (per_address,), policy, now))


def address_succeeded(db: Session, address: str) -> None:
    """A single sign-on try came through: the address gets its slot back."""
    _succeeded(db, "", _keys("", address)[1])
