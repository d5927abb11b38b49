"""The `cesi-like` command line against a real database file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cesi_like.console.app import create_app
from cesi_like.console.context import console
from cesi_like.console.settings import Settings
from cesi_like.console.storage import db as database

from .test_settings import V1


def cesi(tmp_path: Path, *args: str, stdin: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CESI_LIKE_DATABASE": f"sqlite:///{tmp_path}/cli.db",
           "CESI_LIKE_ADMIN_PASSWORD": "first admin pw", **(env or {})}
    env.pop("CESI_LIKE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "cesi_like.console.cli", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


def test_db_upgrade_and_users(tmp_path: Path) -> None:
    result = cesi(tmp_path, "db", "upgrade")
    assert result.returncode == 0
    assert f"at revision {database.head_revision()}" in result.stdout
    assert cesi(tmp_path, "users", "create", "ops", "--role", "operator",
                "--password", "ops password 1").returncode == 0
    assert cesi(tmp_path, "users", "create", "ops", "--password", "x" * 9).returncode == 1
    weak = cesi(tmp_path, "users", "create", "w", "--password", "short")
    assert weak.returncode == 1 and "at least 8" in weak.stderr
    piped = cesi(tmp_path, "users", "create", "piped", stdin="from stdin pw\n")
    assert piped.returncode == 0
    listing = cesi(tmp_path, "users", "list").stdout.split("\n")
    assert [line.split()[0] for line in listing if line] == ["admin", "ops", "piped"]
    assert cesi(tmp_path, "users", "set-password", "ops", "--password",
                "another pw 123").returncode == 0
    assert cesi(tmp_path, "users", "delete", "admin").returncode == 1  # the last admin
    assert cesi(tmp_path, "users", "delete", "ops").returncode == 0
    assert cesi(tmp_path, "users", "delete", "ghost").returncode == 1


def test_token_works_on_the_api(tmp_path: Path) -> None:
    token = cesi(tmp_path, "tokens", "create", "admin").stdout.strip()
    assert token.startswith("cesi_")
    app = create_app({"CESI_SETTINGS": Settings(database=f"sqlite:///{tmp_path}/cli.db")})
    response = app.test_client().get("/api/v1/users",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    console(app).engine.dispose()


def test_import_config_and_status(tmp_path: Path) -> None:
    (tmp_path / "old.conf").write_text(V1.replace("localhost", "127.0.0.1").replace(
        "port = 9001", "port = 1").replace("10.0.0.5", "127.0.0.1\nport = 1"))
    result = cesi(tmp_path, "import-config", "old.conf")
    assert result.returncode == 0 and "imported 2 new nodes" in result.stdout
    assert "imported 0 new nodes" in cesi(tmp_path, "import-config", "old.conf").stdout
    nodes = cesi(tmp_path, "nodes").stdout
    assert "local" in nodes and "server" in nodes
    status = cesi(tmp_path, "status")
    assert status.returncode == 1 and "unreachable" in status.stdout


def test_bad_config_file_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.conf").write_text("[cesi]\nport = web\n")
    result = cesi(tmp_path, "--config", "bad.conf", "users", "list")
    assert result.returncode == 2 and "bad.conf:2: [cesi] port: not a valid port" in result.stderr


def test_status_and_ctl_against_a_real_agent(tmp_path: Path) -> None:
    import json

    from tests.support.daemons import daemons

    with daemons(tmp_path) as start:
        agent = start("[program:web]\ncommand=sleep 1000\nstartsecs=0\n", name="agent")
        conf = tmp_path / "cesi.conf"
        conf.write_text(f"[node:local]\nurl = {agent.url}\n[node:gone]\n"
                        f"url = unix://{tmp_path}/nothing.sock\n")
        status = cesi(tmp_path, "--config", str(conf), "status", "--json")
        assert status.returncode == 1  # one node is down
        nodes = {n["node"]: n for n in json.loads(status.stdout)}
        assert nodes["local"]["state"] == "online" and nodes["gone"]["state"] == "unreachable"
        assert [p["statename"] for p in nodes["local"]["processes"]] == ["RUNNING"]
        stop = cesi(tmp_path, "--config", str(conf), "ctl", "local", "stop", "web:web")
        assert stop.returncode == 0 and stop.stdout.strip() == "web:web: ok"
        assert agent.state("web") == "STOPPED"
        again = cesi(tmp_path, "--config", str(conf), "ctl", "local", "stop", "web:web")
        assert again.returncode == 1 and "NOT_RUNNING" in again.stdout
        table = cesi(tmp_path, "--config", str(conf), "status", "--node", "local")
        assert table.returncode == 0 and "web:web" in table.stdout and "STOPPED" in table.stdout
