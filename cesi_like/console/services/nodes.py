"""Nodes and environments: one set of rules for the admin pages, the API, the CLI and the
config file. Every value passes `validate`, names are unique, only admins change anything, and
each change is recorded; a new or edited node is polled at once so its page is not empty.

Changes come as a mapping of field -> value (what a JSON body holds; the forms build one):
a field that is absent stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...supervisor_rpc.node import NodeClient, NodeError, Snapshot
from ..settings import Settings, node_url
from ..storage.models import Environment, Node
from ..storage.secrets import NodeSecrets
from . import Conflict, Invalid, NotFound, access, validate
from .access import Permission
from .activity import Actor, Result, record
from .snapshot import refresh_in_full

NODE_FIELDS = {"name", "url", "host", "port", "username", "password", "notes", "ca_file",
               "client_cert", "enabled", "verify_tls", "environments",
               "has_password"}  # what GET shows, so a client may PUT back what it got
ENVIRONMENT_FIELDS = {"name", "description", "nodes", "protected"}


# -- nodes ---------------------------------------------------------------------------------

Named = TypeVar("Named", Node, Environment)


def _named(db: Session, model: type[Named], names: Any, what: str) -> list[Named]:
    """The rows of `model` with these names, in the given order; Invalid names the unknown
    ones."""
    asked = validate.names(names, what)
    found = {row.name: row for row in db.scalars(select(model).where(model.name.in_(asked)))}
    validate.known(list(found), asked, what)
    return [found[name] for name in asked]


def environments(db: Session, names: Any) -> list[Environment]:
    """The named environments, in order (a node's, or a user's scope)."""
    return _named(db, Environment, names, "environments")


def _apply_node(db: Session, node: Node, fields: Mapping[str, Any], creating: bool,
                secrets: NodeSecrets) -> None:
    """Check every field first, then set them: a refusal leaves the node as it was. A
    password is stored sealed."""
    validate.fields(fields, NODE_FIELDS)
    values: dict[str, Any] = {}  # has_password is ignored: "password" sets or clears it
    if "name" in fields or creating:
        values["name"] = validate.name(fields.get("name"))
        clash = db.scalar(select(Node).where(Node.name == values["name"]))
        if clash is not None and clash is not node:
            raise Conflict(f"node {values['name']} exists", "name")
    name = values.get("name", node.name)
    if creating or any(key in fields for key in ("url", "host", "port")):
        url = validate.text(fields.get("url"), "url")
        host = validate.text(fields.get("host"), "host")
        try:
            values["url"] = node_url(name, url, host, fields.get("port"))
        except ValueError as exc:
            raise Invalid(str(exc), "url") from None
    for key in ("username", "password"):
        if key in fields:  # empty (or null) clears
            values[key] = validate.text(fields[key], key) or None
    for key in ("ca_file", "client_cert"):
        if key in fields:
            values[key] = validate.tls_file(fields[key], key) or None
    if values.get("password"):
        values["password"] = secrets.encrypt(values["password"])
    if "notes" in fields:
        values["notes"] = validate.text(fields["notes"], "notes")
    for key in ("enabled", "verify_tls"):
        if key in fields:
            values[key] = validate.flag(fields[key], key)
    if "environments" in fields:
        values["environments"] = environments(db, fields["environments"])
    for key, value in values.items():
        setattr(node, key, value)
    if node.notes is None:
        node.notes = ""


def create_node(db: Session, client: NodeClient | None, secrets: NodeSecrets, actor: Actor,
                fields: Mapping[str, Any]) -> Node:
    """Add a node (and poll it now, when given a client). Not committed."""
    access.require(db, actor, Permission.NODES, "node.create", str(fields.get("name", ""))[:64])
    node = Node(notes="")
    _apply_node(db, node, fields, creating=True, secrets=secrets)
    db.add(node)
    record(db, actor, "node.create", node.name, detail=node.url)
    db.flush()
    if client is not None:
        refresh_in_full(db, client, node)  # its state at once, not at the next poll
    return node


def update_node(db: Session, client: NodeClient | None, secrets: NodeSecrets, actor: Actor,
                node: Node, fields: Mapping[str, Any]) -> Node:
    """Change a node (and poll it now if it is enabled). Not committed."""
    access.require(db, actor, Permission.NODES, "node.update", node.name)
    _apply_node(db, node, fields, creating=False, secrets=secrets)
    record(db, actor, "node.update", node.name, detail=node.url)
    if client is not None and node.enabled:
        refresh_in_full(db, client, node)
    return node


def delete_node(db: Session, actor: Actor, node: Node) -> None:
    access.require(db, actor, Permission.NODES, "node.delete", node.name)
    db.delete(node)
    record(db, actor, "node.delete", node.name)


def test_node(db: Session, client: NodeClient, actor: Actor, node: Node
              ) -> Snapshot | NodeError:
    """Poll the node now and record what came back."""
    access.require(db, actor, Permission.NODES, "node.test", node.name)
    found = refresh_in_full(db, client, node)
    if isinstance(found, NodeError):
        record(db, actor, "node.test", node.name, Result.FAILED,
               f"{found.state} {found.reason}")
    else:
        record(db, actor, "node.test", node.name, detail="online")
    return found


# -- environments --------------------------------------------------------------------------

def find_environment(db: Session, name: str) -> Environment:
    env: Environment | None = db.scalar(select(Environment).where(Environment.name == name))
    if env is None:
        raise NotFound(f"no environment {name[:64]!r}")
    return env


def _apply_environment(db: Session, env: Environment, fields: Mapping[str, Any],
                       creating: bool) -> None:
    validate.fields(fields, ENVIRONMENT_FIELDS)
    values: dict[str, Any] = {}
    if "name" in fields or creating:
        values["name"] = validate.name(fields.get("name"))
        clash = db.scalar(select(Environment).where(Environment.name == values["name"]))
        if clash is not None and clash is not env:
            raise Conflict(f"environment {values['name']} exists", "name")
    if "description" in fields:
        values["description"] = validate.text(fields["description"], "description")
    if "nodes" in fields:
        values["nodes"] = _named(db, Node, fields["nodes"], "nodes")
    if "protected" in fields:
        values["protected"] = validate.flag(fields["protected"], "protected")
    for key, value in values.items():
        setattr(env, key, value)


def create_environment(db: Session, actor: Actor, fields: Mapping[str, Any]) -> Environment:
    access.require(db, actor, Permission.ENVIRONMENTS, "environment.create",
                   str(fields.get("name", ""))[:64])
    env = Environment(description="", protected=False)
    _apply_environment(db, env, fields, creating=True)
    db.add(env)
    record(db, actor, "environment.create", env.name)
    return env


def update_environment(db: Session, actor: Actor, env: Environment,
                       fields: Mapping[str, Any]) -> Environment:
    access.require(db, actor, Permission.ENVIRONMENTS, "environment.update", env.name)
    _apply_environment(db, env, fields, creating=False)
    record(db, actor, "environment.update", env.name)
    return env


def delete_environment(db: Session, actor: Actor, env: Environment) -> None:
    access.require(db, actor, Permission.ENVIRONMENTS, "environment.delete", env.name)
    db.delete(env)
    record(db, actor, "environment.delete", env.name)


# -- the config file ---------------------------------------------------------------------

def seed(db: Session, settings: Settings, secrets_: NodeSecrets) -> None:
    """Load the config file's nodes and environments; existing ones (perhaps edited by an
    admin since) are left alone."""
    environments = {env.name: env for env in db.scalars(select(Environment))}
    for name in settings.environments:
        if name not in environments:
            environments[name] = Environment(name=name, description="")
            db.add(environments[name])
    existing = {node.name for node in db.scalars(select(Node))}
    for spec in settings.nodes:
        if spec.name in existing:
            continue
        node = Node(name=spec.name, url=spec.url, username=spec.username,
                    password=secrets_.encrypt(spec.password) if spec.password else None,
                    verify_tls=spec.verify_tls, ca_file=spec.ca_file,
                    client_cert=spec.client_cert, notes="from the config file")
        node.environments = [environments[env] for env in spec.environments]
        db.add(node)
    db.commit()
