"""Console accounts: one set of rules for the admin pages, the API and the CLI.

Names and passwords are validated here, the last active admin is protected here, and every
change is recorded here, so no adapter can forget a rule.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..settings import Settings
from ..storage.models import Environment, Role, Source, User
from . import Conflict, Invalid, NotFound, access, tokens
from .access import Permission
from .activity import Actor, Result, record
from .credentials import check_password, hash_password, password_problem

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _refused(db: Session, actor: Actor, action: str, target: str, why: str = "") -> None:
    """A refusal is activity worth keeping, whatever the caller does with its transaction."""
    db.rollback()
    record(db, actor, action, target, Result.DENIED, why)
    db.commit()


def listed(db: Session, actor: Actor) -> list[User]:
    """Every account, by name (admins)."""
    access.require(db, actor, Permission.USERS, "user.list")
    return list(db.scalars(select(User).order_by(User.username)))


def find(db: Session, username: str) -> User:
    user: User | None = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username[:64]!r}")
    return user


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise Invalid("role must be admin, operator or viewer", "role") from None


def _password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise Invalid(problem, "password")
    return password


def check_username(db: Session, username: str, user: User | None = None) -> str:
    if not USERNAME.match(username):
        raise Invalid("usernames are 1 to 64 letters, digits, '.', '_' or '-'", "username")
    clash = db.scalar(select(User).where(User.username == username))
    if clash is not None and clash is not user:
        raise Conflict("That username is taken.", "username")
    return username


def active_admins(db: Session) -> int:
    return db.scalar(select(func.count(User.id)).where(
        User.role == Role.ADMIN.value, User.active.is_(True))) or 0


def last_admin_problem(db: Session, user: User, role: str, active: bool) -> str | None:
    """Refuse to leave the console without an active admin."""
    losing = user.role == Role.ADMIN.value and user.active and (
        role != Role.ADMIN.value or not active)
    if losing and active_admins(db) <= 1:
        return "This is the last active admin: make another admin first."
    return None


ADMIN_SCOPE = ("admins manage the whole console and cannot be limited to environments: "
               "leave the environments empty, or make this user an operator")


def _scoped_admin(role: str, scope: Sequence[Environment]) -> None:
    if role == Role.ADMIN.value and scope:
        raise Invalid(ADMIN_SCOPE, "environments")


def create(db: Session, actor: Actor, username: str, password: str, role: object = "viewer",
           scope: Sequence[Environment] = (), active: bool = True) -> User:
    """A new account (not committed)."""
    access.require(db, actor, Permission.USERS, "user.create", username[:64])
    _scoped_admin(_role(role).value, scope)
    user = User(username=check_username(db, username), role=_role(role).value,
                source=Source.LOCAL.value,
                password_hash=hash_password(_password(password)), active=active)
    user.scope = list(scope)
    db.add(user)
    record(db, actor, "user.create", username, detail=f"role={user.role}")
    return user


def update(db: Session, actor: Actor, user: User, *, username: str | None = None,
           role: object = None, active: bool | None = None, password: str | None = None,
           scope: Sequence[Environment] | None = None) -> list[str]:
    """Change what is given (not committed); returns the changes, as recorded. Everything is
    checked before anything changes, so a refusal leaves the user as it was (and the caller
    may commit the refusal's record). One's own password needs no admin."""
    access.account(db, actor, user, only_password=bool(password) and (
        username, role, active, scope) == (None, None, None, None))
    new_role = _role(role).value if role is not None else user.role
    new_active = user.active if active is None else active
    if username is not None:
        check_username(db, username, user)
    if password:
        if user.source != Source.LOCAL:
            raise Invalid(f"{user.username} signs in through {user.source}: there is no "
                          "password here to set", "password")
        _password(password)
    _scoped_admin(new_role, user.scope if scope is None else scope)
    problem = last_admin_problem(db, user, new_role, new_active)
    if problem:
        _refused(db, actor, "user.update", user.username, problem)
        raise Conflict(problem, "role")
    changes = []
    if username is not None and username != user.username:
        changes.append(f"renamed from {user.username}")
        user.username = username
    if new_role != user.role:
        changes.append(f"role {user.role}->{new_role}")
        user.role = new_role
        user.end_sessions()  # the new role applies from a fresh login
    if new_active != user.active:
        changes.append("enabled" if new_active else "disabled")
        user.active = new_active
        user.disabled_by = None if new_active else "admin"  # sticks, whatever SSO says
        user.end_sessions()  # a disabled user is logged out everywhere
        if not new_active:  # ... and their tokens do not come back with an enable
            changes.append(f"{tokens.revoke_all(db, user)} tokens revoked")
    if password:
        user.password_hash = hash_password(password)
        user.end_sessions()
        changes.append("password reset")
        # whoever knew the old password may have made a token with it
        changes.append(f"{tokens.revoke_all(db, user)} tokens revoked")
    if scope is not None and [e.id for e in scope] != [e.id for e in user.scope]:
        user.scope = list(scope)
        changes.append("environments " + (",".join(e.name for e in scope) or "all"))
    record(db, actor, "user.update", user.username, detail=", ".join(changes))
    return changes


def change_own_password(db: Session, actor: Actor, current: str, new: str) -> User:
    """The actor's own password, given the current one (a wrong one is a recorded refusal);
    not committed."""
    user = actor.user
    if user is not None and user.source != Source.LOCAL:
        raise Invalid(f"You sign in through {user.source}: change your password there.",
                      "current")
    if user is None or not check_password(user, current):
        _refused(db, actor, "password.change", actor.username)
        raise Invalid("That is not your current password.", "current")
    update(db, actor, user, password=new)
    return user


def delete(db: Session, actor: Actor, user: User) -> None:
    """Remove an account (not committed); never the last active admin, never oneself."""
    access.require(db, actor, Permission.USERS, "user.delete", user.username)
    problem = last_admin_problem(db, user, "", False)
    if problem is None and actor.user is not None and actor.user.id == user.id:
        problem = "You cannot delete yourself."
    if problem:
        _refused(db, actor, "user.delete", user.username, problem)
        raise Conflict(problem)
    db.delete(user)
    record(db, actor, "user.delete", user.username)


def ensure_admin(db: Session, settings: Settings) -> None:
    """No built-in admin/admin: the first start creates the admin with the configured password,
    or a random one shown once on the terminal."""
    if db.scalar(select(User).limit(1)) is not None:
        return
    password = settings.admin_password or secrets.token_urlsafe(12)
    db.add(User(username=settings.admin_username, role=Role.ADMIN.value,
                password_hash=hash_password(password)))
    db.commit()
    if not settings.admin_password:
        print(f"cesi-like: created user {settings.admin_username!r} with password "
              f"{password!r} (shown once; change it after logging in)", file=sys.stderr)
