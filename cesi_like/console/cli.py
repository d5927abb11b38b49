"""`cesi-like`: serve the console, migrate its database, manage users, tokens and nodes.

The command line acts as a local admin (whoever has a shell on the console host and its
database holds every right already), through the same rules as the pages and the API; `ctl
--user NAME` acts with that user's rights instead. Every error is one line on stderr that
begins `cesi-like: error:`, and the exit status is not 0.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..inifile import ConfigError
from .context import console
from .services.activity import Actor
from .settings import Settings, find_config, load
from .storage import db as database
from .storage.models import Node, Role, User


def _app(args: argparse.Namespace) -> Flask:
    from .app import create_app

    return create_app({"CESI_SETTINGS": _settings(args)})


def _settings(args: argparse.Namespace) -> Settings:
    return load(find_config(args.config, os.environ))


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _app(args)  # migrate and bootstrap once, before any worker starts
    bind = args.bind or f"{settings.host}:{settings.port}"
    if args.config:
        os.environ["CESI_LIKE_CONFIG"] = os.path.abspath(args.config)
    command = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(args.workers),
               "--threads", str(args.threads), "--worker-class", "gthread",
               "--access-logfile", "-", "--config", "python:cesi_like.console.gunicorn_hooks",
               "cesi_like.console.wsgi:app"]
    print(f"cesi-like: serving on http://{bind}/", file=sys.stderr, flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def cmd_db(args: argparse.Namespace) -> int:
    from .storage.bootstrap import database_url

    url = database_url(_settings(args))
    if args.action == "upgrade":
        database.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        database.downgrade(url, args.revision or "-1")
    engine = database.make_engine(url)
    try:
        revision = database.current_revision(engine)
    finally:
        engine.dispose()
    print(f"database {url.split('@')[-1]} at revision {revision or '(empty)'}")
    return 0


def _password(given: str | None, prompt: str) -> str:
    if given:
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat: ") != first:
        raise SystemExit("passwords differ")
    return first


def _local(app: Flask) -> Actor:
    """Who the CLI acts as: someone with a shell on the console host and its database, who
    holds every right already (recorded as `(cli)`)."""
    return Actor(None, "cli", app.config.get("CESI_ACTIVITY_LOG"), local=True)


def fail(message: str, status: int = 1) -> int:
    """Every error of the command line: one line on stderr, the same beginning."""
    print(f"cesi-like: error: {message}", file=sys.stderr)
    return status


def cmd_users(args: argparse.Namespace) -> int:
    from .services import ServiceError
    from .services import nodes as node_rules
    from .services import users as user_rules

    app = _app(args)
    with database.standalone(app) as db:
        if args.action == "list":
            for listed in db.scalars(select(User).order_by(User.username)):
                scope = ",".join(env.name for env in listed.scope) or "*"
                state = "active" if listed.active else "disabled"
                print(f"{listed.username:<20} {listed.role:<9} {state:<9} {scope}")
            return 0
        try:
            if args.action == "create":
                names = [n.strip() for n in (args.environments or "").split(",") if n.strip()]
                envs = node_rules.environments(db, names)
                user_rules.check_username(db, args.name)  # before asking for a password
                password = _password(args.password, f"Password for {args.name}: ")
                user_rules.create(db, _local(app), args.name, password, args.role, envs)
                done = f"created {args.role} {args.name}"
            elif args.action == "set-password":
                user = user_rules.find(db, args.name)
                password = _password(args.password, f"New password for {args.name}: ")
                user_rules.update(db, _local(app), user, password=password)
                done = f"password of {args.name} changed"
            else:
                user_rules.delete(db, _local(app), user_rules.find(db, args.name))
                done = f"deleted {args.name}"
        except ServiceError as exc:
            return fail(exc.message)  # refusals are recorded where they are decided
        db.commit()
        print(done)
        return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    """create: print a new token's secret (only now); list: a table; revoke: by id."""
    from .services import ServiceError
    from .services import tokens as token_rules
    from .services import users as user_rules

    app = _app(args)
    with database.standalone(app) as db:
        actor = _local(app)
        try:
            if args.action == "create":
                owner = user_rules.find(db, args.name)
                secret, _ = token_rules.create(db, actor, owner, args.label or "",
                                               args.expires_days, args.read_only)
                db.commit()
                print(secret)
            elif args.action == "list":
                rows = [token_rules.describe(t) for t in token_rules.visible(db, actor, True)]
                if args.name:
                    rows = [row for row in rows if row["username"] == args.name]
                print(f"{'id':>5}  {'user':<16} {'label':<20} {'created':<20} "
                      f"{'last used':<20} {'expires':<20} access")
                for row in rows:
                    expires = ("expired " if row["expired"] else "") + (row["expires"] or "never")
                    print(f"{row['id']:>5}  {row['username']:<16} {row['name']:<20} "
                          f"{row['created']:<20} {row['last_used'] or 'never':<20} "
                          f"{expires:<20} {'read-only' if row['read_only'] else 'full'}")
            else:
                revoked = token_rules.revoke(db, actor, args.name)
                db.commit()
                print(f"revoked token {revoked.id} of {revoked.user.username}")
        except ServiceError as exc:
            return fail(exc.message)  # refusals are recorded where they are decided
        return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .services.nodes import seed

    settings = load(args.file)  # the environment too: for password_env
    app = _app(args)
    with database.standalone(app) as db:
        before = len(db.scalars(select(Node)).all())
        seed(db, settings, console(app).secrets)
        after = len(db.scalars(select(Node)).all())
    print(f"imported {after - before} new nodes ({len(settings.nodes)} in {args.file}), "
          f"{len(settings.environments)} environments")
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    """list (default); rotate-key: seal every stored secret (node passwords, alert channels and
    webhook secrets, OpenID refresh tokens: storage.secrets.sealed_columns) with a new key;
    reseal: seal them again with the newest configured key; new-key: print a fresh key."""
    from .storage import secrets as node_secrets

    if args.action == "new-key":
        print(node_secrets.new_key())
        return 0
    app = _app(args)
    secrets = console(app).secrets
    with database.standalone(app) as db:
        if args.action == "list":
            for node in db.scalars(select(Node).order_by(Node.name)):
                envs = ",".join(env.name for env in node.environments) or "-"
                print(f"{node.name:<20} {node.url:<40} {envs}")
            return 0
        if args.action == "rotate-key":
            if secrets.path is None:
                return fail("node_key is set in the settings, so the key is yours to change: "
                            "put a new key (cesi-like nodes new-key) first in node_key, the "
                            "old one after a comma, run `cesi-like nodes reseal`, then drop "
                            "the old key")
            new = node_secrets.new_key()
            # both keys first (anything opens), then every password sealed anew, then only
            # the new key: no moment where a stored password cannot be opened
            node_secrets.write_key_file(secrets.path, [new, *secrets.keys])
            count = node_secrets.resealed(node_secrets.reseal(
                db, node_secrets.NodeSecrets.from_file(secrets.path)))
            _record(app, db, "node.rotate-key", f"sealed anew: {count}")
            db.commit()
            node_secrets.write_key_file(secrets.path, [new])
            print(f"node key rotated: {count} sealed with the new key; "
                  f"{secrets.path} holds only it")
            return 0
        count = node_secrets.resealed(node_secrets.reseal(db, secrets))
        _record(app, db, "node.reseal", f"sealed anew: {count}")
        db.commit()
        print(f"{count} sealed with the newest key")
        return 0


def _record(app: Flask, db: Session, action: str, detail: str) -> None:
    from .services.activity import record

    record(db, _local(app), action, detail=detail)


def cmd_status(args: argparse.Namespace) -> int:
    """Poll the nodes now, then print them and their processes (or JSON)."""
    from ..supervisor_rpc.node import NodeState
    from .app import make_poller
    from .services import snapshot

    app = _app(args)
    make_poller(app).poll_now()
    where = snapshot.ProcessFilter(node=args.node or "", environment=args.environment or "")
    freshness = snapshot.Freshness(app.config["CESI_POLL_INTERVAL"],
                                   app.config["CESI_NODE_TIMEOUT"])
    with database.standalone(app) as db:
        nodes = where.nodes(db.scalars(select(Node).order_by(Node.name)))
        views = snapshot.view(db, nodes, freshness)
    if args.json:
        print(json.dumps([{"node": v.name, "state": v.state, "reason": v.reason,
                           "version": v.version, "processes": v.processes} for v in views],
                         indent=2))
    else:
        for v in views:
            print(f"{v.name:<20} {v.state:<16} {v.reason or 'supervisor ' + (v.version or '?')}")
            for process in v.processes:
                name = f"{process['group']}:{process['name']}"
                print(f"  {name:<34} {process['statename']:<10} {process['description']}")
    return 0 if all(v.state in (NodeState.ONLINE, NodeState.DISABLED) for v in views) else 1


def cmd_ctl(args: argparse.Namespace) -> int:
    """Process actions through the same rules as the UI: as the local admin, or with the
    rights of `--user`."""
    from .services import ServiceError, actions
    from .services.confirm import Confirmation

    app = _app(args)
    with database.standalone(app) as db:
        who = _local(app)
        if args.user:
            user = db.scalar(select(User).where(User.username == args.user))
            if user is None:
                return fail(f"no user {args.user[:64]!r}")
            who = Actor(user, "cli", app.config.get("CESI_ACTIVITY_LOG"))
        signal = args.name[0] if args.action == "signal" else None
        names = args.name[1:] if args.action == "signal" else args.name
        if not names:
            return fail("name the process (group:name, group:* or *)", 2)
        worst = 0
        for name in names:
            try:
                outcome = actions.perform(
                    db, console(app).nodes, who, args.node, name, args.action, signal,
                    app.config["CESI_ACTION_TIMEOUT"], confirmation=Confirmation(
                        args.confirm, app.config["CESI_CONFIRM_OVER"]))
            except ServiceError as exc:
                worst = fail(f"{name}: {exc.message}")
                continue
            for result in outcome.results:
                print(f"{result['name']}: {'ok' if result['ok'] else 'ERROR ' + result['error']}")
            worst = worst if outcome.ok else 1
        return worst


def cmd_poll(args: argparse.Namespace) -> int:
    """Run only the poller, in the foreground (when the web workers should not poll)."""
    import signal
    import threading

    from .app import create_app, start_poller
    from .workers.poller import SHARDS, shares

    shards = frozenset(range(SHARDS))
    if args.share:
        try:
            index, count = (int(part) for part in args.share.split("/"))
            shards = shares(index - 1, count)
        except ValueError:
            return fail(f"--share takes N/COUNT with 1 <= N <= COUNT <= {SHARDS}, "
                        f"not {args.share!r}", 2)
    app = create_app({"CESI_SETTINGS": _settings(args)})
    poller = start_poller(app, shards=shards)
    done = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: done.set())
    print(f"cesi-like: poller {poller.owner} running (Ctrl-C stops it)", file=sys.stderr)
    done.wait()
    poller.stop()
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cesi-like", description="The cesi-like console.")
    top.add_argument("--config", help="cesi.conf (default: $CESI_LIKE_CONFIG, ./cesi.conf, "
                     "/etc/cesi.conf)")
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web console with gunicorn")
    serve.add_argument("--bind", help="HOST:PORT (default from [cesi], else 0.0.0.0:5000)")
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--threads", type=int, default=8)
    serve.set_defaults(run=cmd_serve)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(run=cmd_db)
    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="action", required=True)
    create = users_sub.add_parser("create")
    create.add_argument("name")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    create.add_argument("--password", help="(default: prompt, or one line of stdin)")
    create.add_argument("--environments", help="comma-separated scope (default: all)")
    users_sub.add_parser("list")
    setpw = users_sub.add_parser("set-password")
    setpw.add_argument("name")
    setpw.add_argument("--password")
    delete = users_sub.add_parser("delete")
    delete.add_argument("name")
    users.set_defaults(run=cmd_users)
    tokens = sub.add_parser("tokens", help="API tokens")
    tokens_sub = tokens.add_subparsers(dest="action", required=True)
    token_create = tokens_sub.add_parser("create", help="print a new token for USER (shown "
                                                          "only now; stored hashed)")
    token_create.add_argument("name", metavar="USER")
    token_create.add_argument("--label", help="what the token is for")
    token_create.add_argument("--expires-days", type=int, metavar="N",
                              help="expire after N days (default: never)")
    token_create.add_argument("--read-only", action="store_true",
                              help="may only read (GET), whatever the user's role")
    token_list = tokens_sub.add_parser("list", help="every token (or USER's): id, label, "
                                                    "created, last used, expiry")
    token_list.add_argument("name", metavar="USER", nargs="?")
    token_revoke = tokens_sub.add_parser("revoke", help="revoke a token by its id")
    token_revoke.add_argument("name", metavar="ID")
    tokens.set_defaults(run=cmd_tokens)
    importer = sub.add_parser("import-config", help="load nodes from a CESI INI or TOML file")
    importer.add_argument("file")
    importer.set_defaults(run=cmd_import)
    nodes = sub.add_parser("nodes", help="list nodes; rotate or print the node-password key")
    nodes.add_argument("action", nargs="?", default="list",
                       choices=["list", "rotate-key", "reseal", "new-key"],
                       help="rotate-key: a new key in the key file, every stored secret (node "
                            "passwords, alert secrets, OpenID refresh tokens) sealed with it; "
                            "reseal: seal them with the newest key of node_key; new-key: print "
                            "a fresh key")
    nodes.set_defaults(run=cmd_nodes)
    status = sub.add_parser("status", help="poll the nodes now and print their processes")
    status.add_argument("--node", help="only this node")
    status.add_argument("--environment", help="only nodes of this environment")
    status.add_argument("--json", action="store_true", help="JSON instead of a table")
    status.set_defaults(run=cmd_status)
    ctl = sub.add_parser("ctl", help="start/stop/restart/signal processes on a node "
                         "(disable/enable on cesi-agentd nodes)")
    ctl.add_argument("node")
    ctl.add_argument("action", choices=["start", "stop", "restart", "signal", "clear-logs",
                                        "disable", "enable"])
    ctl.add_argument("name", nargs="+", help="group:name, group:* or * (signal: SIG NAME...)")
    ctl.add_argument("--user", help="act as this console user (default: the first admin)")
    ctl.add_argument("--confirm", metavar="NAME",
                     help="the node's name, for a stop/restart/signal of more than "
                          "confirm_over processes or in a protected environment")
    ctl.set_defaults(run=cmd_ctl)
    poll = sub.add_parser("poll", help="run the poller alone, in the foreground")
    poll.add_argument("--share", metavar="N/COUNT",
                      help="be the Nth of COUNT poller processes and poll only its share "
                           "of the nodes (default: all of them)")
    poll.set_defaults(run=cmd_poll)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except ConfigError as exc:
        return fail(str(exc), 2)
    return result


if __name__ == "__main__":
    sys.exit(main())
