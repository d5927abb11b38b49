"""Who may do what: the console's one access policy.

Every decision of the kind "may this actor see, act on or administer this node, environment,
job, token, rule or user" is a function here, and a refusal is recorded here, once. Views and
API routes may gate first (a role decorator, a hidden button), but the services decide, so a
new page or job cannot forget a rule: it calls these.

Two rules run through all of it:
- a role grants permissions (`GRANTS`); each role has those of the roles below it;
- a user scoped to environments sees only the nodes of those environments, and whatever lies
  outside them does not exist for that user: it is a 404, never a 403 or a hint, everywhere.
  Admins are never scoped (the user rules refuse to give an admin environments).

The command line acts as a local admin (`Actor.local`): whoever has a shell on the console
host and its database already holds every right.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.models import ApiToken, Environment, Job, Node, Role, User
from . import Forbidden, NotFound
from .activity import Actor, Result, record

MAX_ID = 2**31 - 1  # a database integer: larger ids cannot exist


class Permission(enum.StrEnum):
    """Everything that needs a right, as `<area>:<resource>:<action>`, sorted."""

    ACTIVITY = "admin:activity:write"  # read and clear the activity log
    ALERTS = "alerts:write"  # acknowledge problems, silence, put nodes in maintenance
    ALERT_RULES = "admin:alerts:write"
    ENVIRONMENTS = "admin:environments:write"
    NODES = "admin:nodes:write"  # add, edit, delete, test nodes
    TOKENS_OF_OTHERS = "admin:tokens:write"  # make, list and revoke anyone's tokens
    USERS = "admin:users:write"
    FLEET = "fleet:read"  # nodes, processes, logs, history and jobs in scope
    JOBS = "jobs:write"  # cancel a job in scope
    CONFIG = "nodes:config:write"  # reread and apply a node's config
    MAIN_LOG = "nodes:main-log:read"  # a node's own log names every program, path and failure
    PROCESSES = "processes:write"  # start, stop, restart, signal, clear logs; bulk; rollouts


_OPERATOR = frozenset({Permission.FLEET, Permission.PROCESSES, Permission.CONFIG,
                       Permission.JOBS, Permission.ALERTS})
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.FLEET}),
    Role.OPERATOR: _OPERATOR,
    Role.ADMIN: frozenset(Permission),
}

# the words of a refusal: what needs the right
_WHAT = {
    Permission.ACTIVITY: "the activity log needs", Permission.ALERT_RULES: "alert rules need",
    Permission.ALERTS: "acknowledging, silencing and maintenance need",
    Permission.ENVIRONMENTS: "managing nodes and environments needs",
    Permission.NODES: "managing nodes and environments needs",
    Permission.TOKENS_OF_OTHERS: "tokens of other users need",
    Permission.USERS: "managing users needs", Permission.FLEET: "reading the fleet needs",
    Permission.JOBS: "cancelling a job needs", Permission.CONFIG: "config updates need",
    Permission.MAIN_LOG: "the main log needs", Permission.PROCESSES: "process actions need",
}


def least_role(permission: Permission) -> Role:
    return next(role for role in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
                if permission in GRANTS[role])


def allows(actor: Actor | User | None, permission: Permission) -> bool:
    """Whether the actor's role grants `permission` (scope aside); for pages and buttons."""
    if isinstance(actor, Actor):
        if actor.local:
            return True
        actor = actor.user
    return actor is not None and actor.active and permission in GRANTS[actor.role_enum]


def require(db: Session, actor: Actor, permission: Permission, action: str = "denied",
            target: str = "") -> None:
    """Forbidden (403) unless the actor holds `permission`; the refusal is recorded as
    `action` on `target` and committed (the caller's transaction is about to fail)."""
    if allows(actor, permission):
        return
    role = least_role(permission).value
    record(db, actor, action, target, Result.DENIED, f"needs the {role} role")
    db.commit()
    raise Forbidden(f"{_WHAT[permission]} the {role} role")


def unscoped(user: User) -> bool:
    return not user.scope or user.role == Role.ADMIN.value


def in_scope(actor: Actor | User | None, node: Node) -> bool:
    """Scoped users see only nodes in one of their environments (see the module doc)."""
    user = actor.user if isinstance(actor, Actor) else actor
    if isinstance(actor, Actor) and actor.local:
        return True
    if user is None:
        return False
    if unscoped(user):
        return True
    mine = {env.id for env in user.scope}
    return any(env.id in mine for env in node.environments)


def environment_in_scope(actor: Actor | User | None, env: Environment) -> bool:
    user = actor.user if isinstance(actor, Actor) else actor
    if isinstance(actor, Actor) and actor.local:
        return True
    return user is not None and (unscoped(user) or any(e.id == env.id for e in user.scope))


def node(db: Session, actor: Actor, name: str, permission: Permission = Permission.FLEET,
         action: str = "denied", target: str | None = None) -> Node:
    """The named node if the actor may see it and holds `permission` on it: NotFound when it
    does not exist or lies outside the actor's scope (no hint which), else Forbidden (the
    refusal recorded as `action` on `target`, by default the node)."""
    found = db.scalar(select(Node).where(Node.name == name))
    if found is None or not in_scope(actor, found):
        raise NotFound(f"no node {name[:64]!r}")
    require(db, actor, permission, action, found.name if target is None else target)
    return found


def nodes(db: Session, actor: Actor | User) -> list[Node]:
    """Every node the actor may see, by name."""
    return [found for found in db.scalars(select(Node).order_by(Node.name))
            if in_scope(actor, found)]


def environment(db: Session, actor: Actor, name: object) -> Environment:
    """The named environment if it is in the actor's scope; NotFound otherwise, alike for
    one that does not exist and one outside the scope."""
    found = db.scalar(select(Environment).where(Environment.name == str(name)))
    if found is None or not environment_in_scope(actor, found):
        raise NotFound(f"no environment {str(name)[:64]!r}")
    return found


def environments(db: Session, actor: Actor | User) -> list[Environment]:
    """Every environment in the actor's scope, by name."""
    return [env for env in db.scalars(select(Environment).order_by(Environment.name))
            if environment_in_scope(actor, env)]


# -- jobs ----------------------------------------------------------------------------------

def sees_job(actor: Actor | User, job: Job) -> bool:
    """Its own jobs, and those in an environment of the user's scope (a team follows and
    cancels each other's rollouts); an unscoped user or an admin, every job."""
    user = actor.user if isinstance(actor, Actor) else actor
    if isinstance(actor, Actor) and actor.local:
        return True
    if user is None:
        return False
    if unscoped(user) or job.user_id == user.id:
        return True
    environment_name = json.loads(job.spec).get("environment")
    return any(env.name == environment_name for env in user.scope)


def sees_job_detail(actor: Actor | User, job: Job) -> bool:
    """Its message and per-node results: for those who may do what the job does (they may
    quote a node's errors, which a viewer is not shown elsewhere either)."""
    return sees_job(actor, job) and allows(actor, Permission.PROCESSES)


def job(db: Session, actor: Actor, job_id: int, permission: Permission = Permission.FLEET,
        action: str = "denied") -> Job:
    """The job if the actor may see it (NotFound otherwise) and holds `permission`."""
    found = db.get(Job, job_id) if 0 < job_id <= MAX_ID else None
    if found is None or not sees_job(actor, found):
        raise NotFound(f"no job {job_id}")
    require(db, actor, permission, action, f"job {found.id}")
    return found


def jobs(db: Session, actor: Actor | User, limit: int = 100) -> list[Job]:
    """The newest jobs the actor may see."""
    found = db.scalars(select(Job).order_by(Job.id.desc()).limit(limit * 4))
    return [one for one in found if sees_job(actor, one)][:limit]


class Revoked(Exception):
    """The user a job acts for may no longer do what it does: the reason, for the job."""


def job_actor(db: Session, job_row: Job, activity_file: str | None,
              node_names: Sequence[str] = ()) -> Actor:
    """The job's user as it is now, who must still be active, hold the right to act on
    processes and see each of `node_names`: a job acts with its user's rights at every step.
    Raises Revoked with the reason otherwise."""
    user = db.get(User, job_row.user_id) if job_row.user_id is not None else None
    if user is None:
        raise Revoked("interrupted: the user who started it no longer exists")
    db.refresh(user)  # a role, a scope or a disable from another process counts now
    actor = Actor(user, "", activity_file)
    if not user.active:
        raise Revoked(f"interrupted: {user.username} is disabled")
    if not allows(actor, Permission.PROCESSES):
        raise Revoked(f"interrupted: {user.username} is no longer an operator")
    found = {row.name: row for row in db.scalars(select(Node).where(Node.name.in_(node_names)))}
    for name in node_names:
        if name in found and not in_scope(actor, found[name]):
            raise Revoked(f"interrupted: {user.username} may no longer act on {name}")
    return actor


# -- accounts and tokens -------------------------------------------------------------------

def account(db: Session, actor: Actor, user: User, only_password: bool = False) -> None:
    """Change `user`: admins change anyone; anyone changes their own password."""
    if only_password and actor.user is not None and actor.user.id == user.id:
        return
    require(db, actor, Permission.USERS, "user.update", user.username)


def token(db: Session, actor: Actor, token_id: int) -> ApiToken:
    """One's own token, or anyone's for an admin; NotFound otherwise (no hint it exists)."""
    found = db.get(ApiToken, token_id)
    mine = found is not None and actor.user is not None and found.user_id == actor.user.id
    if found is None or not (mine or allows(actor, Permission.TOKENS_OF_OTHERS)):
        raise NotFound(f"no token {token_id}")
    return found


def token_owner(db: Session, actor: Actor, owner: User) -> None:
    """Anyone makes tokens for themselves; only admins for others (recorded refusal)."""
    if actor.user is not None and owner.id == actor.user.id:
        return
    if not allows(actor, Permission.TOKENS_OF_OTHERS):
        record(db, actor, "token.create", owner.username, Result.DENIED,
               "only admins make tokens for others")
        db.commit()
        raise Forbidden("only admins make tokens for other users")
