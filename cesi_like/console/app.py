"""The console's Flask app: `create_app()` and the workers a process may run beside it.

`create_app()` reads no configuration at import time; everything comes from its argument, the
config file and the environment, in that order of precedence (argument first).
"""

from __future__ import annotations

import atexit
import datetime
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from ..inifile import ConfigError
from ..supervisor_rpc.node import NodeClient
from . import guard
from .api.metrics import parse_allow
from .context import Console, console
from .services import nodes, users
from .services.logins import LoginPolicy
from .services.snapshot import SnapshotCache
from .settings import Settings, find_config, flag, load, login_methods
from .sso import oidc
from .sso.config import SignIn
from .storage import db as database
from .storage.bootstrap import database_url, load_node_secrets, stable_secret_key
from .storage.models import Role
from .storage.secrets import NodeKeyError, seal_plaintext
from .workers.alerts import Delivery, Smtp
from .workers.job_runner import JobRunner
from .workers.poller import SHARDS, Poller
from .workers.sampler import Sampler

csrf = CSRFProtect()


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
        CESI_CONFIRM_OVER=settings.confirm_over,
        CESI_STATS_INTERVAL=settings.stats_interval,
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
        CESI_SIGN_IN=SignIn(login_methods(settings), settings.ldap, settings.oidc,
                            settings.sso_recheck_minutes),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead of a clock
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.update(overrides)
    app.session_interface = _SessionInterface()
    if settings.oidc is not None:
        oidc.init_app(app, settings.oidc)
    if settings.trusted_proxies:  # https and client addresses as the proxy saw them
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=hops)
    if app.config["CESI_AUTO_MIGRATE"]:
        database.upgrade(app.config["CESI_DATABASE"])
    engine = database.make_engine(app.config["CESI_DATABASE"])
    sessions = database.make_sessions(engine)
    secrets_ = load_node_secrets(settings, url, app.instance_path)
    client = NodeClient(app.config["CESI_NODE_TIMEOUT"], app.config["CESI_NODE_MAX_BYTES"],
                        reveal=secrets_.decrypt)
    smtp = Smtp(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                settings.smtp_username, settings.smtp_password, flag(settings.smtp_starttls),
                flag(settings.smtp_allow_plaintext))
    smtp.warn_at_start()
    Console(engine, sessions, secrets_, client, SnapshotCache(),
            Delivery(sessions, client, smtp, secrets_.decrypt, settings.activity_log,
                     external_url=settings.external_url)
            ).install(app)
    database.init_app(app)
    with database.standalone(app) as db:
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = settings.secret_key or stable_secret_key(db)
        nodes.seed(db, settings, secrets_)
        try:
            seal_plaintext(db, secrets_)
        except NodeKeyError as exc:
            raise ConfigError(str(exc), key="node_key") from None
        users.ensure_admin(db, settings)
    if app.config["CESI_POLLER"]:
        start_poller(app, standby=app.config["CESI_POLLER"] == "standby")
    _register(app)
    csrf.init_app(app)  # after the login gate: an anonymous POST is sent to /login, not a 400
    return app


def make_poller(app: Flask, shards: frozenset[int] = frozenset(range(SHARDS)),
                standby: bool = False) -> Poller:
    found = console(app)
    return Poller(found.sessions, found.nodes, app.config["CESI_POLL_INTERVAL"],
                  app.config["CESI_POLL_CONCURRENCY"], shards, app.config["CESI_HISTORY_DAYS"],
                  standby)


def start_poller(app: Flask, standby: bool = False,
                 shards: frozenset[int] = frozenset(range(SHARDS))) -> Poller:
    """Run this process's poller in the background; it polls the shards whose leases it
    holds. A standby poller (every shard, after a delay) lets the dedicated ones claim first,
    takes over the shares of any that dies, and gives a share back to a dedicated poller
    that asks for it (one that started late)."""
    found = console(app)
    poller = found.poller = make_poller(app, shards, standby)
    # the poller process needs a few seconds to start: let it claim the lease first
    delay = max(2 * app.config["CESI_POLL_INTERVAL"], 5.0) if standby else 0.0
    poller.start(delay)
    atexit.register(poller.stop)  # hand the lease over at once on a clean exit
    runner = found.jobs = make_job_runner(app)
    runner.start(delay)
    atexit.register(runner.stop)
    sampler = found.sampler = make_sampler(app, poller)
    sampler.start(delay)
    atexit.register(sampler.stop)
    return poller


def make_sampler(app: Flask, poller: Poller) -> Sampler:
    """Samples the agent nodes `poller` polls: memory and CPU rules, their restarts."""
    found = console(app)
    return Sampler(found.sessions, found.nodes, poller.agent_nodes,
                   app.config["CESI_STATS_INTERVAL"], app.config["CESI_ACTION_TIMEOUT"],
                   app.config["CESI_ACTIVITY_LOG"], leads=lambda: 0 in poller.held,
                   history_days=app.config["CESI_HISTORY_DAYS"])


def make_job_runner(app: Flask) -> JobRunner:
    found = console(app)
    return JobRunner(found.sessions, found.nodes, app.config["CESI_POLL_INTERVAL"],
                     app.config["CESI_ACTION_TIMEOUT"], app.config["CESI_ACTIVITY_LOG"])


def _register(app: Flask) -> None:
    from . import api, web
    from .api import health, metrics
    from .web import auth, errors

    # after_request hooks run last-registered first: this one must see flask-login's cookie
    app.after_request(guard.secure_remember_cookie)
    auth.init_app(app)
    web.register(app)
    for blueprint in (api.bp, health.bp, metrics.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # the API checks the CSRF header itself for session clients
    errors.init_app(app)
    app.before_request(guard.require_login)
    app.after_request(guard.security_headers)
    app.context_processor(lambda: {"Role": Role, "app_name": app.config["CESI_NAME"]})
