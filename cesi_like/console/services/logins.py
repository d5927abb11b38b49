"""Password logins, limited so that guessing is slow and nobody can lock a user out.

Attempts are counted per (user, address) and per address, never per user alone: an attacker
guessing an admin's password from one address locks only that pair (and that address), while
the admin still logs in from their own. Each attempt first takes a slot with one atomic UPDATE
of its counter row, before the password is checked, so parallel requests in any number of
workers or hosts get at most `per_pair` password checks per window. After each failure the
pair also waits longer before its next try (1 s, 2 s, 4 s, ...).

An unknown or disabled user costs the same scrypt check as a known one, so the answer's time
does not tell which usernames exist.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..storage.models import LoginLimit, User, utcnow
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


def authenticate(db: Session, username: str, password: str, address: str,
                 policy: LoginPolicy) -> User | Refused | None:
    """The user, if the password is right and the limits allow a check; Refused when they do
    not (no check was made); None for a wrong password or an unknown or disabled user."""
    now = utcnow()
    pair, per_address = _keys(username, address)
    if not _take(db, per_address, policy.per_address, policy.window, now):
        return Refused(_retry_after(db, (pair, per_address), policy, now))
    if not _take(db, pair, policy.per_pair, policy.window, now):
        return Refused(_retry_after(db, (pair, per_address), policy, now))
    user = db.scalar(select(User).where(User.username == username))
    known = user is not None and user.active
    # an unknown or disabled user is checked against nothing, at the same cost
    good = verify_password_hash(user.password_hash if known and user else None, password)
    if good:
        # the pair starts afresh; the address gets its slot back, so a busy office behind
        # one address is limited by its failures only
        db.execute(delete(LoginLimit).where(LoginLimit.key == pair))
        db.execute(update(LoginLimit).where(LoginLimit.key == per_address, LoginLimit.attempts
                                            > 0).values(attempts=LoginLimit.attempts - 1))
        db.commit()
        return user
    row = db.get(LoginLimit, pair)
    if row is not None and policy.backoff > 0:
        wait = min(policy.backoff * 2.0 ** max(row.attempts - 1, 0), policy.max_backoff,
                   policy.window)
        row.not_before = utcnow() + datetime.timedelta(seconds=wait)
        db.commit()
    return None


def log_in(db: Session, actor: Actor, username: str, password: str,
           policy: LoginPolicy) -> User | Refused | None:
    """`authenticate`, with its outcome recorded (committed) and the login time kept: the
    user, Refused, or None for a wrong password or an unknown or disabled user."""
    outcome = authenticate(db, username, password, actor.ip, policy)
    if isinstance(outcome, Refused):
        record(db, actor, "login.refused", username, Result.DENIED, "too many failed logins",
               username=username)
    elif outcome is None:
        record(db, actor, "login.failed", username, Result.DENIED, username=username)
    else:
        outcome.last_login = utcnow()
        record(db, actor, "login", username, username=username)
    db.commit()
    return outcome
