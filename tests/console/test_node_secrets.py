"""Node passwords sealed at rest (#8.8): never in the database in the clear, opened only to
call the node, legacy rows sealed at start, a wrong key refused at start, and key rotation."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from cesi_like.console.app import create_app, make_poller
from cesi_like.console.context import console
from cesi_like.console.settings import Settings
from cesi_like.console.storage.secrets import NodeSecrets
from cesi_like.inifile import ConfigError
from tests.support.console import fresh_database, token_for
from tests.support.daemons import daemons
from tests.support.ports import free_port

from .test_cli import cesi


def stored(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT name, password FROM nodes").fetchall())


def settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(database=fresh_database(tmp_path, "c.db"), admin_password="admin pw 12",
                    **extra)  # type: ignore[arg-type]


def test_a_node_password_is_sealed_and_still_opens_the_node(tmp_path: Path) -> None:
    port = free_port()
    with daemons(tmp_path) as start:
        start("[program:p]\ncommand=sleep 1000\n[inet_http_server]\n"
              f"port=127.0.0.1:{port}\nusername=alice\npassword=s3cret-pw\n",
              kind="supervisord")
        app = create_app({"CESI_SETTINGS": settings(tmp_path), "TESTING": True})
        try:
            made = app.test_client().post(
                "/api/v1/nodes", headers={"Authorization": f"Bearer {token_for(app, 'admin')}"},
                json={"name": "sup", "url": f"http://127.0.0.1:{port}", "username": "alice",
                      "password": "s3cret-pw"})
            assert made.status_code == 201 and "s3cret" not in made.get_data(as_text=True)
            value = stored(tmp_path / "c.db")["sup"]
            assert value is not None and value.startswith("fernet:") and "s3cret" not in value
            make_poller(app).poll_now()
            listed = app.test_client().get("/api/v1/nodes", headers={
                "Authorization": f"Bearer {token_for(app, 'admin')}"}).get_json()
            assert listed[0]["state"] == "online", listed
        finally:
            console(app).engine.dispose()
    key_file = tmp_path / "cesi-like.node-key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.read_text().strip() not in (tmp_path / "c.db").read_bytes().decode(
        "latin-1")


def test_plaintext_rows_are_sealed_at_start_and_a_wrong_key_is_refused(tmp_path: Path) -> None:
    console(create_app({"CESI_SETTINGS": settings(tmp_path)})).engine.dispose()
    with sqlite3.connect(tmp_path / "c.db") as connection:  # as an older console left it
        connection.execute("INSERT INTO nodes (name, url, password, enabled, verify_tls, notes,"
                           " created) VALUES ('old', 'http://h:9001', 'plain pw', 1, 1, '', "
                           "'2026-01-01')")
    app = create_app({"CESI_SETTINGS": settings(tmp_path)})
    value = stored(tmp_path / "c.db")["old"]
    assert value is not None and value.startswith("fernet:")
    assert console(app).secrets.decrypt(value) == "plain pw"
    console(app).engine.dispose()
    other = Fernet.generate_key().decode()
    with pytest.raises(ConfigError) as refused:
        create_app({"CESI_SETTINGS": settings(tmp_path, node_key=other)})
    assert "does not open the node password of old" in str(refused.value)
    assert "node_key" in str(refused.value)
    with pytest.raises(ConfigError, match="not a Fernet key"):
        create_app({"CESI_SETTINGS": settings(tmp_path, node_key="nope")})


def test_rotate_key_reseals_every_password(tmp_path: Path) -> None:
    assert cesi(tmp_path, "db", "upgrade").returncode == 0
    config = tmp_path / "n.conf"
    config.write_text("[node:a]\nhost = h1\nusername = u\npassword = first pw\n"
                      "[node:b]\nhost = h2\nusername = u\npassword = second pw\n")
    assert cesi(tmp_path, "import-config", str(config)).returncode == 0
    app = create_app({"CESI_SETTINGS": Settings(database=f"sqlite:///{tmp_path}/cli.db",
                                                admin_password="first admin pw")})
    made = app.test_client().post(
        "/api/v1/alerts", headers={"Authorization": f"Bearer {token_for(app, 'admin')}"},
        json={"name": "crashes", "kind": "crash", "notify": ["ntfy://ntfy.example.org/ops"],
              "webhook_url": "https://hooks.example.org/x", "webhook_secret": "hook secret"})
    assert made.status_code == 201, made.get_json()
    console(app).engine.dispose()
    key_file = tmp_path / "cesi-like.node-key"
    old_key, before = key_file.read_text().strip(), stored(tmp_path / "cli.db")
    rotated = cesi(tmp_path, "nodes", "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    assert ("2 node passwords, 1 alert channel list, 1 alert webhook secret sealed with the "
            "new key") in rotated.stdout
    new_key, after = key_file.read_text().strip(), stored(tmp_path / "cli.db")
    assert new_key != old_key and "\n" not in new_key
    assert all(after[name] != before[name] for name in ("a", "b"))
    fresh = NodeSecrets([new_key])
    assert {name: fresh.decrypt(str(value)) for name, value in after.items()} == {
        "a": "first pw", "b": "second pw"}
    with pytest.raises(ValueError):
        NodeSecrets([old_key]).decrypt(str(after["a"]))
    with sqlite3.connect(tmp_path / "cli.db") as connection:  # the alert's secrets too
        notify, secret = connection.execute(
            "SELECT notify, webhook_secret FROM alert_rules").fetchone()
    assert fresh.decrypt(notify) == '["ntfy://ntfy.example.org/ops"]'
    assert fresh.decrypt(secret) == "hook secret"
    with pytest.raises(ValueError):
        NodeSecrets([old_key]).decrypt(secret)
    # with the key in the settings, rotation is the admin's: refused with the steps
    env_key = cesi(tmp_path, "nodes", "new-key").stdout.strip()
    refused = cesi(tmp_path, "nodes", "rotate-key", env={"CESI_LIKE_NODE_KEY": new_key})
    assert refused.returncode == 1 and "reseal" in refused.stderr
    both = f"{env_key},{new_key}"
    resealed = cesi(tmp_path, "nodes", "reseal", env={"CESI_LIKE_NODE_KEY": both})
    assert resealed.returncode == 0 and "2 node passwords, 1 alert" in resealed.stdout
    assert NodeSecrets([env_key]).decrypt(str(stored(tmp_path / "cli.db")["a"])) == "first pw"
