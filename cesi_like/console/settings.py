"""The console's configuration: `cesi.conf` (CESI's INI form), CESI v2's TOML, and
`CESI_LIKE_*` environment overrides.

Nodes and environments found here are seeds: they are loaded into the database at start, and
admins manage them in the UI afterwards.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..inifile import ConfigError, IniFile, Section, read_ini
from .sso.config import LdapSettings, OidcSettings, gather, read_ldap, read_oidc

DEFAULT_PATHS = ("cesi.conf", "/etc/cesi.conf")


@dataclass(frozen=True)
class NodeSpec:
    """A node as a config file describes it."""

    name: str
    url: str
    username: str | None = None
    password: str | None = None
    environments: tuple[str, ...] = ()
    verify_tls: bool = True
    ca_file: str | None = None
    client_cert: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything `[cesi]` can set, with the console's defaults."""

    database: str | None = None  # None: SQLite in the instance folder
    activity_log: str | None = None
    host: str = "0.0.0.0"
    port: int = 5000
    secret_key: str | None = None
    node_key: str | None = None  # Fernet key(s) sealing node passwords (newest first, a,b)
    node_key_file: str | None = None  # else keys in this file (default: beside the database)
    name: str = "cesi-like"
    admin_username: str = "admin"
    admin_password: str | None = None
    node_timeout: float = 3.0  # bounds every call to a node, in total
    poll_interval: float = 2.0  # how often the poller asks each node
    poll_concurrency: int = 32  # nodes polled at once (per poller process)
    poll_processes: int = 1  # poller processes `serve` starts: one core each
    node_max_bytes: int = 8 * 1024 * 1024  # the largest answer read from a node
    action_timeout: float = 60.0  # start/stop wait for startsecs/stopwaitsecs on the node
    remember_days: float = 14.0  # how long "Remember me" keeps a browser logged in
    trusted_proxies: int = 0  # reverse proxies whose X-Forwarded-* headers are believed
    login_limit: int = 5  # password checks per (user, address) per login_window
    login_limit_per_address: int = 20  # password checks per address per login_window
    login_window: float = 900.0  # seconds
    metrics_allow: str = ""  # addresses/networks that may read /metrics without a token
    history_days: float = 30.0  # state changes and finished jobs are kept this long
    smtp_host: str | None = None  # alert email: the SMTP server (none: no email)
    smtp_port: int = 25
    smtp_from: str = "cesi-like@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: str = "false"
    smtp_allow_plaintext: str = "false"  # log in to the SMTP server without TLS (in clear)
    login_backoff: float = 1.0  # seconds before a pair's retry, doubling per failure
    external_url: str | None = None  # the console's public URL: links in alerts
    stats_interval: float = 10.0  # how often agent nodes' CPU and memory are sampled
    confirm_over: int = 10  # stop/restart/signal of more processes needs a name typed
    login_methods: str = ""  # local, ldap, oidc (empty: local and every one configured)
    sso_recheck_minutes: float = 15.0  # how long an SSO session goes unconfirmed
    ldap: LdapSettings | None = None
    oidc: OidcSettings | None = None
    nodes: tuple[NodeSpec, ...] = ()
    environments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    path: str | None = None


_CESI_KEYS = {"database", "activity_log", "host", "port", "secret_key", "node_key",
              "node_key_file", "name",
              "admin_username", "admin_password", "node_timeout", "poll_interval",
              "poll_concurrency", "poll_processes", "node_max_bytes", "action_timeout",
              "remember_days", "trusted_proxies", "login_limit", "login_limit_per_address",
              "login_window", "login_backoff", "metrics_allow",
              "history_days", "smtp_host", "smtp_port", "smtp_from", "smtp_username",
              "smtp_password", "smtp_starttls", "smtp_allow_plaintext", "login_methods",
              "confirm_over", "external_url", "stats_interval",
              "sso_recheck_minutes"}
_FLOATS = {"node_timeout", "poll_interval", "action_timeout", "remember_days", "login_window",
           "login_backoff", "history_days", "sso_recheck_minutes", "stats_interval"}
_FLAGS = {"smtp_starttls", "smtp_allow_plaintext"}
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
_INTS = {"poll_concurrency", "poll_processes", "node_max_bytes", "trusted_proxies",
         "login_limit", "login_limit_per_address", "confirm_over"}


METHODS = ("local", "ldap", "oidc")


def login_methods(settings: Settings) -> frozenset[str]:
    """The sign-in methods on: `login_methods`, else local and every one configured. With
    local off, local admins still log in with their password (the break-glass account)."""
    listed = settings.login_methods.replace(",", " ").split()
    configured = {"local", *(m for m in ("ldap", "oidc") if getattr(settings, m) is not None)}
    return frozenset(listed or configured)


SectionErrors = Callable[[str, str, str], ConfigError]  # (section, key, reason) -> error


def _env_error(section: str, key: str, reason: str) -> ConfigError:
    return ConfigError(reason, key=f"CESI_LIKE_{section.upper()}_{key.upper()}")


def _with_sso(settings: Settings, sections: Mapping[str, Mapping[str, str]],
              environ: Mapping[str, str], error: SectionErrors = _env_error) -> Settings:
    """`[ldap]` and `[oidc]` from the file's `sections` and `CESI_LIKE_LDAP_*` /
    `CESI_LIKE_OIDC_*`, checked; `error` points into the file (a key the environment gave
    is named by its variable)."""
    changes: dict[str, object] = {}
    for name, reader in (("ldap", read_ldap), ("oidc", read_oidc)):
        values = gather(name, sections.get(name), environ)
        if values is None:
            continue

        def fail(key: str, reason: str, name: str = name) -> ConfigError:
            if f"CESI_LIKE_{name.upper()}_{key.upper()}" in environ:
                return _env_error(name, key, reason)
            return error(name, key, reason)

        changes[name] = reader(values, fail)
    return replace(settings, **changes)  # type: ignore[arg-type]


def _check_methods(settings: Settings) -> Settings:
    for method in settings.login_methods.replace(",", " ").split():
        if method != "local" and getattr(settings, method) is None:
            raise ConfigError(f"{method} is not configured (no [{method}] section)",
                              path=settings.path or "", section="cesi", key="login_methods")
    return settings


def flag(value: str) -> bool:
    """A yes/no setting as checked on reading (true, yes, 1, on)."""
    return value.strip().lower() in _TRUE


def find_config(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """--config, else $CESI_LIKE_CONFIG, else ./cesi.conf, else /etc/cesi.conf, else none."""
    if explicit:
        return explicit
    if environ.get("CESI_LIKE_CONFIG"):
        return environ["CESI_LIKE_CONFIG"]
    return next((path for path in DEFAULT_PATHS if os.path.exists(path)), None)


def load(path: str | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `path` (INI or, by its `.toml` suffix, CESI v2 TOML), then the
    environment. Raises ConfigError naming the file, line and key."""
    env = os.environ if environ is None else environ
    settings = Settings()
    if path is not None:
        settings = (read_toml(path, env) if path.endswith(".toml")
                    else read_cesi_ini(path, env))
    else:
        settings = _with_sso(settings, {}, env)
    return _check_methods(apply_environment(settings, env))


def apply_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """`CESI_LIKE_<KEY>` beats the file for every `[cesi]` key."""
    changes: dict[str, object] = {}
    for key in _CESI_KEYS:
        value = environ.get(f"CESI_LIKE_{key.upper()}")
        if value is not None:
            changes[key] = _convert(key, value, ConfigError, f"CESI_LIKE_{key.upper()}")
    return replace(settings, **changes)  # type: ignore[arg-type]


def _convert(key: str, value: str, error: type[ConfigError], where: str) -> object:
    try:
        if key in ("port", "smtp_port"):
            port = int(value)
            if not 0 <= port < 65536:
                raise ValueError
            return port
        if key in _FLOATS or key in _INTS:
            number = float(value) if key in _FLOATS else int(value)
            # no proxy, and no backoff, are valid answers
            lowest = 0 if key in ("trusted_proxies", "login_backoff", "confirm_over") else 1e-9
            highest = 16 if key == "poll_processes" else 10**9  # the poller's SHARDS
            if not lowest <= number <= highest:
                raise ValueError
            return number
        if key in _FLAGS and value.strip().lower() not in (*_TRUE, *_FALSE):
            raise ValueError
        if key == "external_url" and not value.startswith(("http://", "https://")):
            raise ValueError
        if key == "login_methods":
            methods = [m.strip() for m in value.replace(",", " ").split()]
            if any(m not in METHODS for m in methods):
                raise ValueError
        if key == "metrics_allow":
            from .api.metrics import parse_allow

            parse_allow(value)
    except ValueError:
        raise error(f"not a valid {key}: {value!r}", key=where) from None
    return value


def node_url(name: str, url: str | None, host: str | None, port: object) -> str:
    """A node's URL: `url=` as given (http, https, unix), else http://host:port; checked the
    way the node client will use it (no credentials in it, a real port). ValueError says why."""
    from ..supervisor_rpc.node import endpoint

    if not url:
        if not host:
            raise ValueError(f"node {name}: needs host (and port) or url")
        try:
            number = int(port or 9001)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            number = -1
        if isinstance(port, bool) or not 0 < number < 65536:
            raise ValueError(f"node {name}: not a valid port: {str(port)[:20]!r}")
        url = f"http://{host}:{number}"
    if len(url) > 512:
        raise ValueError(f"node {name}: the URL is longer than 512 characters")
    try:
        endpoint(url)
    except ValueError as exc:
        raise ValueError(f"node {name}: {exc}") from None
    return url


def read_cesi_ini(path: str, environ: Mapping[str, str]) -> Settings:
    """CESI v1's INI: `[cesi]`, `[node:NAME]`, `[environment:NAME] members = a, b`."""
    ini = read_ini(path, {})
    settings = Settings(path=ini.path)
    cesi = ini.get("cesi")
    if cesi is not None:
        changes: dict[str, object] = {}
        for key, value in cesi.values.items():
            if key not in _CESI_KEYS:
                raise cesi.error(key, "unknown setting")
            changes[key] = _section_value(cesi, key, value.text)
        settings = replace(settings, **changes)  # type: ignore[arg-type]
    nodes = [_ini_node(ini.sections[name], environ) for name in ini.names("node:")]
    environments = _ini_environments(ini, {node.name for node in nodes})
    nodes = [replace(node, environments=tuple(sorted(
        env for env, members in environments.items() if node.name in members)))
        for node in nodes]
    sso: dict[str, Mapping[str, str]] = {
        name: {key: value.text for key, value in ini.sections[name].values.items()}
        for name in ("ldap", "oidc") if name in ini.sections}
    settings = _with_sso(settings, sso, environ,
                         lambda name, key, why: ini.sections[name].error(key, why))
    return replace(settings, nodes=tuple(nodes), environments=environments)


def _section_value(section: Section, key: str, text: str) -> object:
    try:
        return _convert(key, text, ConfigError, key)
    except ConfigError as exc:
        raise section.error(key, exc.reason) from None


NODE_KEYS = ("host", "port", "username", "password", "password_env", "url", "environment",
             "verify", "ca_file", "client_cert")


def _node_values(name: str, values: Mapping[str, Any], environ: Mapping[str, str],
                 fail: Callable[[str, str], ConfigError]) -> tuple[str, dict[str, str]]:
    """A node's name and text values through the console's one validation (the forms' and
    the API's); `fail(key, reason)` makes the error that points into the file.

    `password_env = NAME` takes the password from that environment variable, so a config
    file that is mounted or committed (docker-compose, systemd) need not hold the secret."""
    from .services import validate

    if values.get("password_env") is not None:
        if values.get("password") is not None:
            raise fail("password_env", "give password or password_env, not both")
        variable = str(values["password_env"]).strip()
        if variable not in environ:
            raise fail("password_env", f"environment variable {variable} is not set")
        values = {**values, "password": environ[variable]}
    try:
        checked_name = validate.name(name, "node name")
    except ValueError as exc:
        raise fail("name", str(exc)) from None
    clean = {}
    for key in ("username", "password", "url", "host", "ca_file", "client_cert"):
        if values.get(key) is not None:
            check = validate.tls_file if key in ("ca_file", "client_cert") else validate.text
            try:
                clean[key] = check(str(values[key]), key)
            except ValueError as exc:
                raise fail(key, str(exc)) from None
    return checked_name, clean


def _ini_node(section: Section, environ: Mapping[str, str]) -> NodeSpec:
    values = {key: value.text for key, value in section.values.items()}
    for key in values:
        if key not in NODE_KEYS:
            raise section.error(key, "unknown node setting")
    name, checked = _node_values(section.name.split(":", 1)[1].strip(), values, environ,
                                 section.error)
    values.update(checked)
    verify = values.get("verify", "true").strip().lower()
    if verify not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        raise section.error("verify", "expected true or false")
    try:
        url = node_url(name, values.get("url"), values.get("host"), values.get("port"))
    except ValueError as exc:
        key = "url" if "url" in values else ("port" if "valid port" in str(exc) else "host")
        raise section.error(key, str(exc)) from None
    return NodeSpec(name, url, values.get("username") or None, values.get("password") or None,
                    verify_tls=verify in ("true", "yes", "1", "on"),
                    ca_file=values.get("ca_file") or None,
                    client_cert=values.get("client_cert") or None)


def _ini_environments(ini: IniFile, known: set[str]) -> dict[str, tuple[str, ...]]:
    environments: dict[str, tuple[str, ...]] = {}
    from .services import validate

    for name in ini.names("environment:"):
        section = ini.sections[name]
        try:
            validate.name(name.split(":", 1)[1].strip(), "environment name")
        except ValueError as exc:
            raise section.error("name", str(exc)) from None
        raw = section.values.get("members")
        members = tuple(m.strip() for m in (raw.text if raw else "").split(",") if m.strip())
        for member in members:
            if member not in known:
                raise section.error("members", f"unknown node {member!r}")
        environments[name.split(":", 1)[1].strip()] = members
    return environments


def read_toml(path: str, environ: Mapping[str, str]) -> Settings:
    """CESI v2's TOML: `[cesi]` and `[[nodes]]` with name, environment, username, password,
    host, port."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"could not read config file: {exc.strerror}", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    cesi = data.get("cesi", {})
    changes: dict[str, object] = {}
    for key, value in cesi.items():
        if key not in _CESI_KEYS:
            raise ConfigError("unknown setting", path=path, section="cesi", key=key)
        if key not in ("port", *_FLOATS, *_INTS) and not isinstance(value, str):
            raise ConfigError("must be a string", path=path, section="cesi", key=key)
        changes[key] = _convert(key, str(value), ConfigError, key)
    nodes: list[NodeSpec] = []
    environments: dict[str, list[str]] = {}
    for index, entry in enumerate(data.get("nodes", [])):
        where = f"nodes[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError("expected a table", path=path, section=where)

        def fail(key: str, reason: str, where: str = where) -> ConfigError:
            return ConfigError(reason, path=path, section=where, key=key)

        name, checked = _node_values(str(entry.get("name", "")), entry, environ, fail)
        entry = {**entry, **checked}
        try:
            url = node_url(name, entry.get("url"), entry.get("host"), entry.get("port"))
        except ValueError as exc:
            raise ConfigError(str(exc), path=path, section=where, key="host") from None
        env = str(entry.get("environment", "")).strip()
        if env:
            environments.setdefault(env, []).append(name)
        nodes.append(NodeSpec(name, url, entry.get("username") or None,
                              entry.get("password") or None, (env,) if env else ()))
    sso: dict[str, Mapping[str, str]] = {}
    for name in ("ldap", "oidc"):
        table = data.get(name)
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError("expected a table", path=path, section=name)
            sso[name] = {key: value if isinstance(value, str) else str(value)
                         for key, value in table.items()}
    settings = replace(Settings(path=str(Path(path).resolve())), **changes,  # type: ignore[arg-type]
                       nodes=tuple(nodes),
                       environments={k: tuple(v) for k, v in environments.items()})
    return _with_sso(settings, sso, environ, lambda name, key, why: ConfigError(
        why, path=path, section=name, key=key))
