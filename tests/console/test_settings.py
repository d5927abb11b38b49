"""cesi.conf (CESI v1 INI) and CESI v2 TOML: the same nodes and environments; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cesi_like.console.settings import NodeSpec, load
from cesi_like.inifile import ConfigError

V1 = """\
[cesi]
database = sqlite:///users.db
activity_log = activity.log
admin_username = boss
admin_password = from-the-file

[node:local]
username = user
password = 123
host = localhost
port = 9001

[node:remote]
host = 10.0.0.5

[environment:server]
members = local, remote
"""

V2 = """\
[cesi]
database = "sqlite:///users.db"
activity_log = "activity.log"
admin_username = "boss"
admin_password = "from-the-file"

[[nodes]]
name = "local"
environment = "server"
username = "user"
password = "123"
host = "localhost"
port = "9001"

[[nodes]]
name = "remote"
environment = "server"
host = "10.0.0.5"
port = "9001"
"""


def test_v1_ini_and_v2_toml_describe_the_same_fleet(tmp_path: Path) -> None:
    ini, toml = tmp_path / "cesi.conf", tmp_path / "cesi.toml"
    ini.write_text(V1)
    toml.write_text(V2)
    one, two = load(str(ini), {}), load(str(toml), {})
    assert one.nodes == two.nodes == (
        NodeSpec("local", "http://localhost:9001", "user", "123", ("server",)),
        NodeSpec("remote", "http://10.0.0.5:9001", None, None, ("server",)))
    assert one.environments == two.environments == {"server": ("local", "remote")}
    for settings in (one, two):
        assert settings.admin_username == "boss" and settings.database == "sqlite:///users.db"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    ini = tmp_path / "cesi.conf"
    ini.write_text(V1)
    settings = load(str(ini), {"CESI_LIKE_DATABASE": "postgresql://db/cesi",
                               "CESI_LIKE_ADMIN_PASSWORD": "from-env",
                               "CESI_LIKE_NODE_TIMEOUT": "1.5"})
    assert settings.database == "postgresql://db/cesi"
    assert settings.admin_password == "from-env" and settings.node_timeout == 1.5
    with pytest.raises(ConfigError, match="CESI_LIKE_PORT"):
        load(str(ini), {"CESI_LIKE_PORT": "http"})


def test_a_node_password_from_the_environment(tmp_path: Path) -> None:
    """A mounted or committed cesi.conf need not hold the secret (docker-compose, systemd)."""
    ini, toml = tmp_path / "cesi.conf", tmp_path / "cesi.toml"
    ini.write_text("[node:a]\nhost = h\nusername = u\npassword_env = AGENT_PASSWORD\n")
    toml.write_text('[[nodes]]\nname = "a"\nhost = "h"\nusername = "u"\n'
                    'password_env = "AGENT_PASSWORD"\n')
    for path in (ini, toml):
        assert load(str(path), {"AGENT_PASSWORD": "s3cret"}).nodes == (
            NodeSpec("a", "http://h:9001", "u", "s3cret"),)


def test_no_file_means_defaults(tmp_path: Path) -> None:
    settings = load(None, {})
    assert (settings.port, settings.node_timeout, settings.nodes) == (5000, 3.0, ())


@pytest.mark.parametrize(("text", "line", "key", "reason"), [
    ("[cesi]\nport = web\n", 2, "port", "not a valid port"),
    ("[cesi]\nsecret = x\n", 2, "secret", "unknown setting"),
    ("[node:a]\nport = 9001\n", 1, "host", "needs host"),
    ("[node:a]\nurl = ftp://x\n", 2, "url", "url must start with"),
    ("[node:a]\nhost = h\nport = nine\n", 3, "port", "not a valid port"),
    ("[node:a]\nhost = h\n[environment:e]\nmembers = a, ghost\n", 4, "members",
     "unknown node 'ghost'"),
    ("[cesi]\ndatabase\n", 2, "", "cannot parse line"),
    ("[node:a]\nhost = h\npassword_env = NOT_SET_HERE\n", 3, "password_env",
     "environment variable NOT_SET_HERE is not set"),
    ("[node:a]\nhost = h\npassword = x\npassword_env = P\n", 4, "password_env",
     "not both"),
    # the same validation as the forms' and the API's
    ("[node:a b]\nhost = h\n", 1, "name", "node name: 1 to 64 letters"),
    ("[node:a]\nhost = h\nusername = " + "u" * 200 + "\n", 3, "username",
     "longer than 128"),
    ("[node:a]\nhost = h\n[environment:prod env]\nmembers = a\n", 3, "name",
     "environment name: 1 to 64"),
    ("[node:a]\nhost = h\nca_file = /nonexistent/ca.pem\n", 3, "ca_file",
     "no readable file at /nonexistent/ca.pem"),
])
def test_bad_ini_names_line_and_key(tmp_path: Path, text: str, line: int, key: str,
                                    reason: str) -> None:
    path = tmp_path / "cesi.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(str(path), {})
    assert (caught.value.line, caught.value.key) == (line, key), str(caught.value)
    assert reason in caught.value.reason and str(caught.value).startswith(f"{path}:{line}:")


def test_bad_toml_is_reported_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "cesi.toml"
    path.write_text('[cesi]\ndatabase = "x"\n[[nodes]]\nname = \n')
    with pytest.raises(ConfigError, match=r"line 4"):
        load(str(path), {})
    path.write_text('[[nodes]]\nhost = "h"\n')
    with pytest.raises(ConfigError, match=r"\[nodes\[0\]\] name: node name is required"):
        load(str(path), {})
