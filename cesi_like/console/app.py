"""The central console: a Flask app over the nodes' Supervisor XML-RPC.

`create_app()` reads no configuration at import time; everything comes from its argument, the
config file and the environment, in that order of precedence (argument first).
"""

from __future__ import annotations

import atexit
import datetime
import os
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask, g, jsonify, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from ..inifile import ConfigError
from ..supervisor_rpc.node import NodeClient
from .api.metrics import parse_allow
from .security import hash_password, stable_secret_key
from .services.alerts import Alerter, Sender, Smtp
from .services.logins import LoginPolicy
from .services.snapshot import SnapshotCache
from .settings import Settings, find_config, load
from .storage import db as database
from .storage.models import Environment, Node, Role, User
from .storage.secrets import NodeKeyError, NodeSecrets, key_file_for, seal_plaintext
from .workers.job_runner import JobRunner
from .workers.poller import SHARDS, Poller

csrf = CSRFProtect()

# /metrics checks a token, a login or its allow-list itself
PUBLIC_ENDPOINTS = {"auth.login", "static", "health.healthz", "metrics.metrics"}


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or super().get_cookie_secure(app))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` may hold Flask settings and `CESI_SETTINGS` (a Settings);
    without it the settings come from cesi.conf (see settings.find_config) and CESI_LIKE_*."""
    overrides = dict(config or {})
    settings: Settings = overrides.pop("CESI_SETTINGS", None) or load(
        find_config(None, os.environ))
    app = Flask(__name__, instance_relative_config=True)
    url = database_url(settings, app.instance_path)
    app.config.update(
        CESI_DATABASE=url,
        CESI_NAME=settings.name,
        CESI_NODE_TIMEOUT=settings.node_timeout,
        CESI_POLL_INTERVAL=settings.poll_interval,
        CESI_POLL_CONCURRENCY=settings.poll_concurrency,
        CESI_POLL_PROCESSES=settings.poll_processes,
        CESI_NODE_MAX_BYTES=settings.node_max_bytes,
        CESI_ACTION_TIMEOUT=settings.action_timeout,
        CESI_POLLER=False,  # True: poll now; "standby": only if no one else does (WSGI)
        CESI_ACTIVITY_LOG=settings.activity_log,
        CESI_METRICS_ALLOW=parse_allow(settings.metrics_allow),
        CESI_HISTORY_DAYS=settings.history_days,
        CESI_AUTO_MIGRATE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_DURATION=datetime.timedelta(days=settings.remember_days),
        CESI_LOGIN_POLICY=LoginPolicy(settings.login_limit, settings.login_limit_per_address,
                                      settings.login_window, settings.login_backoff),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead of a clock
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.update(overrides)
    app.session_interface = _SessionInterface()
    if settings.trusted_proxies:  # https and client addresses as the proxy saw them
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=hops)
    if app.config["CESI_AUTO_MIGRATE"]:
        database.upgrade(app.config["CESI_DATABASE"])
    database.init_app(app, app.config["CESI_DATABASE"])
    secrets_ = load_node_secrets(settings, url, app.instance_path)
    app.extensions["cesi_secrets"] = secrets_
    with database.standalone(app) as db:
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = settings.secret_key or stable_secret_key(db)
        seed(db, settings, secrets_)
        try:
            seal_plaintext(db, secrets_)
        except NodeKeyError as exc:
            raise ConfigError(str(exc), key="node_key") from None
        ensure_admin(db, settings)
    app.extensions["cesi_snapshots"] = SnapshotCache()
    app.extensions["cesi_nodes"] = NodeClient(app.config["CESI_NODE_TIMEOUT"],
                                              app.config["CESI_NODE_MAX_BYTES"],
                                              reveal=secrets_.decrypt)
    smtp = Smtp(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                settings.smtp_username, settings.smtp_password,
                settings.smtp_starttls.strip().lower() in ("true", "yes", "1", "on"))
    app.extensions["cesi_alerts"] = Alerter(
        Sender(app.extensions["cesi_sessions"], app.extensions["cesi_nodes"], smtp,
               settings.activity_log), secrets_.decrypt)
    if app.config["CESI_POLLER"]:
        start_poller(app, standby=app.config["CESI_POLLER"] == "standby")
    _register(app)
    csrf.init_app(app)  # after the login gate: an anonymous POST is sent to /login, not a 400
    return app


def make_poller(app: Flask, shards: frozenset[int] = frozenset(range(SHARDS))) -> Poller:
    return Poller(app.extensions["cesi_sessions"], app.extensions["cesi_nodes"],
                  app.config["CESI_POLL_INTERVAL"], app.config["CESI_POLL_CONCURRENCY"], shards,
                  app.config["CESI_HISTORY_DAYS"], app.extensions["cesi_alerts"])


def start_poller(app: Flask, standby: bool = False,
                 shards: frozenset[int] = frozenset(range(SHARDS))) -> Poller:
    """Run this process's poller in the background; it polls the shards whose leases it
    holds. A standby poller (every shard, after a delay) lets the dedicated ones claim first
    and takes over the shares of any that dies."""
    poller = make_poller(app, shards)
    app.extensions["cesi_poller"] = poller
    # the poller process needs a few seconds to start: let it claim the lease first
    delay = max(2 * app.config["CESI_POLL_INTERVAL"], 5.0) if standby else 0.0
    poller.start(delay)
    atexit.register(poller.stop)  # hand the lease over at once on a clean exit
    runner = make_job_runner(app)
    app.extensions["cesi_jobs"] = runner
    runner.start(delay)
    atexit.register(runner.stop)
    return poller


def make_job_runner(app: Flask) -> JobRunner:
    return JobRunner(app.extensions["cesi_sessions"], app.extensions["cesi_nodes"],
                     app.config["CESI_POLL_INTERVAL"], app.config["CESI_ACTION_TIMEOUT"],
                     app.config["CESI_ACTIVITY_LOG"])


def database_url(settings: Settings, instance_path: str | None = None) -> str:
    """The configured URL, else a SQLite file in the instance folder (created if needed)."""
    if settings.database:
        return settings.database
    folder = instance_path or Flask(__name__, instance_relative_config=True).instance_path
    os.makedirs(folder, exist_ok=True)
    return f"sqlite:///{os.path.join(folder, 'cesi-like.db')}"


def _register(app: Flask) -> None:
    from . import api
    from .api import alerts as api_alerts  # noqa: F401 - adds the alert routes to api.bp
    from .api import health, metrics
    from .api import jobs as api_jobs  # noqa: F401 - adds the job routes to api.bp
    from .api import processes as api_processes  # noqa: F401 - adds the fleet routes to api.bp
    from .web import activity, admin, auth, errors
    from .web import alerts as alerts_views
    from .web import fleet as fleet_views
    from .web import format as templates_util
    from .web import jobs as jobs_views

    # after_request hooks run last-registered first: this one must see flask-login's cookie
    app.after_request(_secure_remember_cookie)
    auth.init_app(app)
    for blueprint in (auth.bp, fleet_views.bp, admin.bp, activity.bp, api.bp, health.bp,
                      jobs_views.bp, metrics.bp, alerts_views.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # the API checks the CSRF header itself for session clients
    errors.init_app(app)
    app.before_request(_require_login)
    app.after_request(_security_headers)
    app.context_processor(lambda: {"Role": Role, "app_name": app.config["CESI_NAME"]})
    app.jinja_env.globals.update(ago=templates_util.ago, epoch=templates_util.epoch,
                                 statename=templates_util.statename)


# Scripts only from our own static files: no inline script, no eval, so a node's or a user's
# text that slips into a page still cannot run.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _secure_remember_cookie(response: Response) -> Response:
    """flask-login's remember cookie takes its Secure flag from static config; mark it Secure
    whenever this request came over https, as the session cookie is."""
    if request.is_secure:
        cookies = response.headers.getlist("Set-Cookie")
        if any(c.startswith("remember_token=") and "; Secure" not in c for c in cookies):
            response.headers.setlist("Set-Cookie", [
                f"{c}; Secure" if c.startswith("remember_token=") and "; Secure" not in c
                else c for c in cookies])
    return response


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _require_login() -> Response | None:
    """Every view needs a logged-in user or a token, except the login page itself; a
    read-only token may only read."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        if g.get("token_read_only") and request.method not in ("GET", "HEAD", "OPTIONS"):
            from .web.activity import record

            db = database.session()
            record(db, f"{request.method} {request.path}"[:64], result="denied",
                   detail="read-only token")
            db.commit()
            response = jsonify(error="this token is read-only")
            response.status_code = 403
            return response
        return None
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        response = jsonify(error="authentication required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="cesi-like"'
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def load_node_secrets(settings: Settings, database: str, instance_path: str) -> NodeSecrets:
    """The keys that seal node passwords: `node_key`, else the key file (made on first use).
    A bad key is a ConfigError naming the setting."""
    try:
        if settings.node_key:
            return NodeSecrets(settings.node_key.split(","))
        return NodeSecrets.from_file(settings.node_key_file
                                     or key_file_for(database, instance_path))
    except NodeKeyError as exc:
        raise ConfigError(str(exc), key="node_key" if settings.node_key else "node_key_file"
                          ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read or create the node key file: {exc}",
                          key="node_key_file") from None


def seed(db: Any, settings: Settings, secrets_: NodeSecrets) -> None:
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


def ensure_admin(db: Any, settings: Settings) -> None:
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
