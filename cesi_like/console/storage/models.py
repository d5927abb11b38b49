"""The console's database: users, environments, nodes, activity, API tokens, settings.

Typed SQLAlchemy 2 models. The MetaData naming convention gives every constraint a stable name,
so Alembic migrations can alter them (SQLite needs batch mode for that).
"""

from __future__ import annotations

import datetime
import enum
import secrets

from flask_login import UserMixin
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    false as sa_false,
)
from sqlalchemy import (
    true as sa_true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Source(enum.StrEnum):
    """Where an account signs in."""

    LOCAL = "local"  # a password hash here
    LDAP = "ldap"
    OIDC = "oidc"


class Role(enum.StrEnum):
    """What a user may do; each role includes the ones below it."""

    VIEWER = "viewer"  # read everything in scope, logs included
    OPERATOR = "operator"  # + process actions, clear logs
    ADMIN = "admin"  # + users, nodes, environments, activity log


def _environments_of(owner: str) -> Table:
    """The link of a node or a user to its environments (gone with either side)."""
    return Table(f"{owner}_environments", Base.metadata,
                 Column(f"{owner}_id", ForeignKey(f"{owner}s.id", ondelete="CASCADE"),
                        primary_key=True),
                 Column("environment_id", ForeignKey("environments.id", ondelete="CASCADE"),
                        primary_key=True))


node_environments = _environments_of("node")
user_environments = _environments_of("user")


class User(UserMixin, Base):
    """A console account. `scope` empty means every environment (see services.access)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=Role.VIEWER.value)
    active: Mapped[bool] = mapped_column(default=True)
    # local (a password here), ldap or oidc: an SSO account has no usable password here and
    # its role, environments and active flag follow the directory or provider (services.sso)
    source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    sso_checked_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    # an OpenID account's refresh token (offline_access), sealed with the node key: how the
    # console asks the provider about the user again without them (services.sso.recheck)
    sso_refresh: Mapped[str | None] = mapped_column(Text, nullable=True)
    # "admin" (sticks) or the SSO source that refused the user (its next yes enables again)
    disabled_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    last_login: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    # in every session and remember cookie; a new random value on logout, password or role
    # change and disable ends every session issued before. Random, never a counter: a new user
    # that gets a deleted user's id (SQLite reuses ids) must not inherit its cookies.
    session_token: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(16))
    scope: Mapped[list[Environment]] = relationship(
        secondary=user_environments, lazy="selectin", order_by="Environment.name")
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True)

    def get_id(self) -> str:
        return f"{self.id}.{self.session_token}"

    def end_sessions(self) -> None:
        """Invalidate every session and remember cookie of this user, in every worker."""
        self.session_token = secrets.token_hex(16)

    @property
    def is_active(self) -> bool:  # flask-login refuses inactive users
        return self.active

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class Environment(Base):
    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # a stop, restart or signal of any of its processes needs the name typed (services.confirm)
    protected: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    nodes: Mapped[list[Node]] = relationship(
        secondary=node_environments, back_populates="environments", order_by="Node.name")


class Node(Base):
    """A supervisord or cesi-agentd the console talks to. The password is stored because the
    console must present it to the node: sealed with the node key (`node_secrets`), opened
    only by the node client, never sent to a browser, the API or a log."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(512))
    username: Mapped[str | None] = mapped_column(String(128), nullable=True)
    password: Mapped[str | None] = mapped_column(Text, nullable=True)  # "fernet:..."
    enabled: Mapped[bool] = mapped_column(default=True)
    # in maintenance: shown on every page, no alerts, passed by rolling restarts
    maintenance: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    maintenance_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # https nodes: verify the certificate (against ca_file, else the system CAs) unless an
    # admin turned it off; client_cert is a PEM file holding a certificate and its key
    verify_tls: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    ca_file: Mapped[str | None] = mapped_column(String(512), nullable=True)
    client_cert: Mapped[str | None] = mapped_column(String(512), nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    environments: Mapped[list[Environment]] = relationship(
        secondary=node_environments, back_populates="nodes", lazy="selectin",
        order_by="Environment.name")


class ActivityLog(Base):
    """Who did what to which target, and how it went. The username is copied, not linked, so
    history survives the user's deletion."""

    __tablename__ = "activity_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(256), default="")
    result: Mapped[str] = mapped_column(String(16), default="ok")  # services.activity.Result
    detail: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")


class ApiToken(Base):
    """A bearer token for automation; only its SHA-256 is stored. It acts with its user's
    role (at most reading, if `read_only`) until it expires or is revoked; a password change
    or a disable of its user revokes it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    last_used: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    expires: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    read_only: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    user: Mapped[User] = relationship(back_populates="tokens", lazy="joined")


class Setting(Base):
    """Small persistent values shared by every worker (the generated secret key)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class NodeStatus(Base):
    """The poller's latest word on a node: its state and, from the last good answer, its
    processes (JSON, already checked by `supervisor_rpc.schema`). Pages and the API read this,
    never the node, so no request waits on a node and every worker sees the same picture."""

    __tablename__ = "node_status"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"),
                                         primary_key=True)
    state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime.datetime] = mapped_column(DateTime)  # when `state` began
    polled_at: Mapped[datetime.datetime] = mapped_column(DateTime)  # last attempt
    last_ok: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    supervisor_state: Mapped[int | None] = mapped_column(Integer, nullable=True)
    processes: Mapped[str] = mapped_column(Text, default="[]")
    process_count: Mapped[int] = mapped_column(Integer, default=0)
    poll_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # cesi-agentd's change-feed token for `processes`: whoever polls next (a poller, another
    # console host after a takeover, an action's re-poll) asks what changed since it
    feed_token: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ProcessEvent(Base):
    """A process state change the poller saw (history and alerts are built on these). Node and
    process are named, not linked, so history outlives a node's removal."""

    __tablename__ = "process_events"
    __table_args__ = (Index("ix_process_events_process", "node", "group", "name", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    node: Mapped[str] = mapped_column(String(64))
    group: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    from_state: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_state: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    exitstatus: Mapped[int] = mapped_column(Integer, default=0)


class LoginLimit(Base):
    """A login budget: attempts in the current window for one (user, address) pair or one
    address, and when the pair may try again (see services.logins)."""

    __tablename__ = "login_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime.datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class Lease(Base):
    """A named job only one console process may do at a time (the poller); whoever holds an
    unexpired lease does it, and renews it while alive."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires: Mapped[datetime.datetime] = mapped_column(DateTime)


class Job(Base):
    """Long work the console does for a user (a rolling restart), kept here so it outlives
    the process that runs it: one console process at a time holds it (`owner` until
    `expires`, renewed while it runs, as leases are); when the holder dies another takes it
    over and resumes it. `spec` is what was asked, `steps` how far it got (JSON text)."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # JobState
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    spec: Mapped[str] = mapped_column(Text)
    steps: Mapped[str] = mapped_column(Text, default="[]")
    message: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    expires: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    takeovers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    finished: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)

    user: Mapped[User | None] = relationship()


class NodeEvent(Base):
    """A change of a node's state as the poller saw it (online, unreachable, hung...): its
    reachability over time is built on these. Named, not linked, like ProcessEvent."""

    __tablename__ = "node_events"
    __table_args__ = (Index("ix_node_events_node_time", "node", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    node: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")


class AlertRule(Base):
    """When to tell someone: a process enters FATAL, crashes, restarts more than `threshold`
    times in `window_minutes` (flapping), uses more memory or CPU than `limit` for
    `duration_seconds`, or a node stays unreachable `unreachable_seconds`;
    for an environment, a group and/or a node (any, if unset). Delivered to a webhook (its
    secret sealed like node passwords), by email, and/or to Apprise URLs (sealed too)."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # fatal|crash|flapping|unreachable|memory|cpu
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    group: Mapped[str | None] = mapped_column(String(255), nullable=True)
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)
    threshold: Mapped[int] = mapped_column(Integer, default=3)
    window_minutes: Mapped[int] = mapped_column(Integer, default=10)
    unreachable_seconds: Mapped[int] = mapped_column(Integer, default=60)
    # memory (MB, the process with its children) or cpu (%) above `limit` for
    # `duration_seconds`, from cesi-agentd's stats; `action` restart: at most once a window
    limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_seconds: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    action: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    webhook_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed
    email_to: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # Apprise URLs (slack://, msteams://, ntfy://, mailto://...): a JSON list, sealed whole
    notify: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class AlertFiring(Base):
    """That a rule fired for a subject (a process or a node): at most once per window; open
    until its condition ends, which is announced once (`services.alerts`); pruned with the
    history once it ended."""

    __tablename__ = "alert_firings"
    __table_args__ = (Index("ix_alert_firings_rule_subject", "rule_id", "subject", "time"),
                      Index("ix_alert_firings_open", "resolved_at", "subject"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(600))
    time: Mapped[datetime.datetime] = mapped_column(DateTime)
    # when the condition ended (the process runs again, the node answers): None while open
    resolved_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    ack_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # acknowledged
    ack_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    ack_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Silence(Base):
    """No alerts for a node, an environment, a group or a rule (`target`: its name, or the
    rule's id) until a time, with a reason; ended early when `ended` is set."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # node | environment | group | rule
    target: Mapped[str] = mapped_column(String(255))
    until: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    ended: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)


class ProcessSeries(Base):
    """One process whose CPU and memory are kept (`ProcessSample`): named once, so a sample
    row is a few numbers."""

    __tablename__ = "process_series"
    __table_args__ = (UniqueConstraint("node", "group", "name",
                                       name="uq_process_series_process"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(64))
    group: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))


class ProcessSample(Base):
    """A process's CPU (% of a core) and memory (RSS with its children) at a time: a raw
    sample (`step` 0), or the mean of a minute (60) or of ten (600), made by
    `services.samples.rollup`; each resolution is kept as long as its charts need it."""

    __tablename__ = "process_samples"
    __table_args__ = (Index("ix_process_samples_step_time", "step", "time"),)

    series_id: Mapped[int] = mapped_column(
        ForeignKey("process_series.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime.datetime] = mapped_column(DateTime, primary_key=True)
    cpu: Mapped[float | None] = mapped_column(Float, nullable=True)
    rss_kb: Mapped[int] = mapped_column(Integer)
