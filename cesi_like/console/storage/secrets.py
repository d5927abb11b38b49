"""Node passwords (and the other secrets the console must send on: alert channel URLs and
webhook secrets, OpenID refresh tokens) encrypted at rest (Fernet, from `cryptography`).

The console must present each node's password to the node, so it cannot hash it; it encrypts
it with a key that lives outside the database: `node_key` in the settings (or
`CESI_LIKE_NODE_KEY`), else a file generated once beside the database (`node_key_file`,
mode 0600). A copy of the database alone does not reveal a node password.

The key file may hold several keys, one per line, the newest first: values are encrypted with
the first and decrypted with any (`MultiFernet`), which is how `cesi-like nodes rotate-key`
changes the key without a moment where a stored password cannot be read.

Stored values are sealed ("fernet:..."); the node client opens them only to send them to the
node (`NodeClient(reveal=...)`), so the rest of the console never holds a node password.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

PREFIX = "fernet:"  # stored values start with it; anything else is a legacy plaintext value


class NodeKeyError(ValueError):
    """The key cannot be used: missing, malformed, or not the one that encrypted a value."""


class NodeSecrets:
    """Encrypts and decrypts node passwords with a list of keys (newest first). Keys read
    from a file are read again when the file changes, so running consoles follow a
    `rotate-key` made by another process."""

    def __init__(self, keys: Sequence[str], path: str | None = None) -> None:
        self.path = path
        self._stamp = self._mtime()
        self._use(keys)

    @classmethod
    def from_file(cls, path: str) -> NodeSecrets:
        return cls(read_key_file(path), path)

    def _use(self, keys: Sequence[str]) -> None:
        if not keys:
            raise NodeKeyError("no node key")
        try:
            self.keys = [key.strip() for key in keys]
            self._box = MultiFernet([Fernet(key.encode()) for key in self.keys])
        except ValueError:
            raise NodeKeyError("a node key is not a Fernet key (32 url-safe base64 bytes)"
                               ) from None

    def _mtime(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns if self.path else 0
        except OSError:
            return 0

    def _current(self) -> MultiFernet:
        if self.path and self._mtime() != self._stamp:
            self._stamp = self._mtime()
            self._use(read_key_file(self.path, create=False))
        return self._box

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._current().encrypt(plain.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before encryption existed; the console seals these
        try:
            return self._current().decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise NodeKeyError("a stored secret was encrypted with a key the console does not "
                            "have (node_key / node_key_file)") from None

    def rotate(self, stored: str) -> str:
        """The value encrypted with the newest key."""
        return self.encrypt(self.decrypt(stored))


def key_file_for(database_url: str, instance_path: str) -> str:
    """Where the key lives by default: beside a SQLite database, else in the instance folder;
    never inside the database."""
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        folder = os.path.dirname(os.path.abspath(database_url[len("sqlite:///"):]))
        return os.path.join(folder, "cesi-like.node-key")
    return os.path.join(instance_path, "cesi-like.node-key")


def new_key() -> str:
    return Fernet.generate_key().decode()


def read_key_file(path: str, create: bool = True) -> list[str]:
    """The keys in `path`, newest first; a new file with one fresh key if there is none."""
    try:
        with open(path, encoding="ascii") as handle:
            keys = [line.strip() for line in handle if line.strip()]
    except FileNotFoundError:
        if not create:
            raise
        keys = [new_key()]
        write_key_file(path, keys)
    return keys


def write_key_file(path: str, keys: Sequence[str]) -> None:
    """Replace `path` atomically, readable by its owner only."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.new"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write("".join(f"{key}\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def sealed_columns() -> list[tuple[Any, str]]:
    """Every column sealed with the node key, with what a message calls its values: the node
    passwords, the alert rules' channel URLs and webhook secrets (they hold tokens), and the
    OpenID accounts' refresh tokens."""
    from .models import AlertRule, Node, User

    return [(Node.password, "node password"), (AlertRule.notify, "alert channel list"),
            (AlertRule.webhook_secret, "alert webhook secret"),
            (User.sso_refresh, "OpenID refresh token")]


def _rows(db: Session, column: Any) -> Iterator[tuple[Any, str]]:
    """(row, its stored value) of every row of `column`'s table that has a value."""
    for row in db.scalars(select(column.class_).where(column.is_not(None))):
        yield row, getattr(row, column.key)


def seal_plaintext(db: Session, secrets: NodeSecrets) -> int:
    """Seal every node password still stored in the clear (from before encryption existed,
    or written by hand); check that every sealed value opens with the key. Returns how many
    were sealed; NodeKeyError names the rows whose value the key cannot open."""
    sealed, unreadable = 0, []
    for column, what in sealed_columns():
        for row, value in _rows(db, column):
            if not value.startswith(PREFIX):
                setattr(row, column.key, secrets.encrypt(value))
                sealed += 1
                continue
            try:
                secrets.decrypt(value)
            except NodeKeyError:
                unreadable.append(f"the {what} of {getattr(row, 'name', None) or row.username}")
    if unreadable:
        db.rollback()
        raise NodeKeyError(f"the node key does not open {', '.join(unreadable[:10])}: set "
                           "node_key or node_key_file to the key they were sealed with")
    db.commit()
    return sealed


def reseal(db: Session, secrets: NodeSecrets) -> Counter[str]:
    """Seal every stored secret again with the newest key (not committed); how many of each
    kind (`sealed_columns`). A rotation that left one out would lose it with the old key."""
    count: Counter[str] = Counter()
    for column, what in sealed_columns():
        for row, value in _rows(db, column):
            setattr(row, column.key, secrets.rotate(value))
            count[what] += 1
    return count


def resealed(count: Counter[str]) -> str:
    """What `reseal` did, for a person: "2 node passwords, 1 alert channel list"."""
    return ", ".join(f"{number} {what}{'' if number == 1 else 's'}"
                     for what, number in count.items()) or "no stored secrets"
