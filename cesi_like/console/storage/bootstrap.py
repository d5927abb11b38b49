"""What a console needs before it serves: where its database is, the keys that seal node
passwords, and the key that signs sessions (kept in the database, so every worker and every
restart agrees on it)."""

from __future__ import annotations

import os
import secrets

from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...inifile import ConfigError
from ..settings import Settings
from .models import Setting
from .secrets import NodeKeyError, NodeSecrets, key_file_for


def database_url(settings: Settings, instance_path: str | None = None) -> str:
    """The configured URL, else a SQLite file in the instance folder (created if needed)."""
    if settings.database:
        return settings.database
    folder = instance_path or Flask(__name__, instance_relative_config=True).instance_path
    os.makedirs(folder, exist_ok=True)
    return f"sqlite:///{os.path.join(folder, 'cesi-like.db')}"


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


def stable_secret_key(db: Session) -> str:
    """The key that signs sessions: generated once and kept in the database, so every worker
    and every restart agrees on it (CESI's changed at each start and broke multi-worker use)."""
    existing = db.get(Setting, "secret_key")
    if existing is not None:
        return existing.value
    db.add(Setting(key="secret_key", value=secrets.token_hex(32)))
    try:
        db.commit()
    except IntegrityError:  # another worker won the race: use its key
        db.rollback()
    stored = db.get(Setting, "secret_key")
    assert stored is not None
    return stored.value
