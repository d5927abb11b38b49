"""#11.1: what docker-compose.yml starts is known to work, though Docker cannot run here.

`docker-compose config` (Debian's docker-compose, which `.ci/run` installs) validates the file
and resolves it. Then every service of ours runs with its exact command line, environment,
health check and mounted configs, outside a container: the container's world is mapped onto
this host (mount targets to temporary folders, `service:port` to a free loopback port, the
`db` service to the throwaway PostgreSQL of `.ci/run`). The stack must come up healthy and the
console must show both agents' programs RUNNING.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from tests.console.test_sessions_http import log_in
from tests.support.ports import free_port
from tests.support.postgres import fresh_database
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")
OURS = ("console", "agent1", "agent2")  # `db` is PostgreSQL's own image

needs_compose = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose not installed (.ci/run installs Debian's package)")


def make_secrets() -> dict[str, str]:
    return {"CESI_DB_PASSWORD": "dbpw" + os.urandom(6).hex(),
            "CESI_ADMIN_PASSWORD": "admin pw " + os.urandom(4).hex(),
            "CESI_AGENT_PASSWORD": "agent-pw-" + os.urandom(4).hex(),
            "CESI_NODE_KEY": Fernet.generate_key().decode()}


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    clean = {key: value for key, value in os.environ.items() if not key.startswith("CESI_")}
    return subprocess.run([COMPOSE, "--project-directory", str(ROOT), "--file",
                           str(ROOT / "docker-compose.yml"), *args],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def resolved(secrets: dict[str, str]) -> dict[str, Any]:
    done = compose("config", env=secrets)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@needs_compose
def test_compose_file_is_valid_and_publishes_only_the_console() -> None:
    secrets = make_secrets()
    config = resolved(secrets)
    services = config["services"]
    assert set(services) == {"db", *OURS}
    assert [name for name, service in services.items() if service.get("ports")] == ["console"]
    assert all("healthcheck" in service for service in services.values())
    assert "db-data:/var/lib/postgresql/data:rw" in services["db"]["volumes"]
    console = services["console"]["environment"]
    assert console["CESI_LIKE_DATABASE"].startswith(
        f"postgresql+psycopg://cesi:{secrets['CESI_DB_PASSWORD']}@db:5432/")
    # the secrets come from the environment only: no file of the repository holds one
    for path in [ROOT / "docker-compose.yml", *(ROOT / "deploy").rglob("*")]:
        if path.is_file():
            text = path.read_text()
            assert not any(secret in text for secret in secrets.values()), path


@needs_compose
def test_compose_refuses_to_run_without_its_secrets() -> None:
    secrets = make_secrets()
    for missing in secrets:
        done = compose("config", env={k: v for k, v in secrets.items() if k != missing})
        assert done.returncode != 0
        assert f"set {missing}" in done.stderr


def test_dockerfile_runs_what_compose_runs() -> None:
    """The image's default command is the console's, and it installs the PostgreSQL driver."""
    text = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(next(line for line in text.splitlines()
                          if line.startswith("CMD "))[4:])
    compose_file = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose_file["services"]["console"]["command"][:len(cmd)] == cmd
    assert "'/src[postgres]'" in text and "\nUSER cesi\n" in text


class Host:
    """Runs compose services on this host, with the container's paths and names mapped."""

    def __init__(self, config: dict[str, Any], root: Path, database: str) -> None:
        self.config = config
        self.root = root
        self.ports = {name: free_port() for name in OURS}
        self.database = make_url(database)
        self.workdir = next(line.split()[1] for line in
                            (ROOT / "Dockerfile").read_text().splitlines()
                            if line.startswith("WORKDIR "))
        self.running: list[subprocess.Popen[bytes]] = []

    def container_port(self, name: str) -> str:
        service = self.config["services"][name]
        if service.get("ports"):
            return str(service["ports"][0]["target"])
        return str(service["expose"][0])

    def rules(self, name: str) -> list[tuple[str, str]]:
        """Text replacements from the container's view to this host's, longest first."""
        db = self.database
        rules = [("@db:5432/cesi", f"@{db.host}:{db.port}/{db.database}")]
        for other in OURS:
            rules.append((f"{other}:{self.container_port(other)}",
                          f"127.0.0.1:{self.ports[other]}"))
        own = self.container_port(name)
        rules += [(f"0.0.0.0:{own}", f"127.0.0.1:{self.ports[name]}"),
                  (f"127.0.0.1:{own}", f"127.0.0.1:{self.ports[name]}")]
        service = self.config["services"][name]
        folder = self.root / name
        mounts: dict[str, Path] = {self.workdir: folder / "work"}
        for index, entry in enumerate(service.get("tmpfs", [])):
            mounts[entry.split(":")[0]] = folder / f"tmpfs{index}"
        for entry in service.get("volumes", []):
            source, target = entry.split(":")[:2]
            if source.startswith("/"):  # a bind mount of one of our files: copied, mapped
                mounts[target] = folder / "files" / Path(target).name
            else:
                mounts[target] = folder / "volumes" / source
        rules += [(target, str(path)) for target, path in mounts.items()]
        rules.sort(key=lambda rule: -len(rule[0]))
        for path in mounts.values():
            if path.parent.name != "files":
                path.mkdir(parents=True, exist_ok=True)
        for entry in service.get("volumes", []):
            source, target = entry.split(":")[:2]
            if source.startswith("/"):
                copy = mounts[target]
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_text(self.mapped(Path(source).read_text(), rules))
        return rules

    @staticmethod
    def mapped(text: str, rules: list[tuple[str, str]]) -> str:
        for container, host in rules:
            text = text.replace(container, host)
        return text

    def environment(self, name: str, rules: list[tuple[str, str]]) -> dict[str, str]:
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
               "HOME": str(self.root / name / "work"), "LANG": "C.UTF-8"}
        for key, value in self.config["services"][name].get("environment", {}).items():
            env[key] = self.mapped(str(value), rules)
        return env

    def start(self, name: str) -> None:
        rules = self.rules(name)
        service = self.config["services"][name]
        argv = [self.mapped(arg, rules) for arg in service["command"]]
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        self.running.append(subprocess.Popen(
            argv, env=self.environment(name, rules), cwd=self.root / name / "work",
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        log.close()

    def healthy(self, name: str) -> bool:
        """The service's own health check, run as Docker would run it (CMD form)."""
        rules = self.rules(name)
        test = self.config["services"][name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        done = subprocess.run([self.mapped(arg, rules) for arg in test[1:]],
                              env=self.environment(name, rules), cwd=self.root / name / "work",
                              capture_output=True, timeout=30)
        return done.returncode == 0

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[Host, dict[str, str]]]:
    if COMPOSE is None:
        pytest.skip("docker-compose not installed (.ci/run installs Debian's package)")
    secrets = make_secrets()
    config = resolved(secrets)
    with fresh_database("cesi", secrets["CESI_DB_PASSWORD"]) as database:
        running = Host(config, tmp_path, database)
        try:
            yield running, secrets
        finally:
            running.stop()


def test_each_service_command_runs_outside_a_container(
        host: tuple[Host, dict[str, str]]) -> None:
    stack, secrets = host
    for agent in ("agent1", "agent2"):
        stack.start(agent)
    for agent in ("agent1", "agent2"):
        wait_for(lambda agent=agent: stack.healthy(agent), 30, f"{agent} healthy")  # type: ignore[misc]
    stack.start("console")
    try:
        wait_for(lambda: stack.healthy("console"), 60, "console healthy")
    except AssertionError:
        raise AssertionError(stack.log("console")) from None
    base = f"http://127.0.0.1:{stack.ports['console']}"
    browser = log_in(base, "admin", secrets["CESI_ADMIN_PASSWORD"])

    def both_running() -> list[dict[str, Any]] | None:
        nodes = browser.get(f"{base}/api/v1/nodes", timeout=10).json()
        ready = [node for node in nodes if node["counts"] == {"RUNNING": 4}]
        return nodes if len(ready) == 2 else None

    try:
        nodes = wait_for(both_running, 30, "both agents' programs RUNNING in the console")
    except AssertionError as exc:
        seen = browser.get(f"{base}/api/v1/nodes", timeout=10).json()
        raise AssertionError(f"{exc}: {seen}\n{stack.log('console')}") from None
    assert sorted(node["name"] for node in nodes) == ["agent1", "agent2"]
    processes = browser.get(f"{base}/api/v1/processes?node=agent1", timeout=10).json()
    names = sorted(process["name"] for process in processes)
    assert names == ["beat", "flaky", "worker_0", "worker_1"], processes
    # the agents' logs and sockets went where the compose file mounts them
    assert (stack.root / "agent1" / "volumes" / "agent1-logs" / "cesi-agentd.log").exists()
    socket_file = stack.root / "agent1" / "tmpfs0" / "agent.sock"
    assert socket_file.is_socket() and socket_file.stat().st_mode & 0o777 == 0o700
    assert requests.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}


# -- deploy/: the systemd units and the nginx site ------------------------------------------

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)


def unit(name: str) -> dict[str, list[str]]:
    """The [Service] settings of a unit in deploy/systemd (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in (ROOT / "deploy" / "systemd" / name).read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def venv_units(tmp_path: Path) -> list[Path]:
    """The units with /opt/cesi-like/bin pointing at this interpreter's scripts."""
    copies = []
    for source in sorted((ROOT / "deploy" / "systemd").glob("*.service")):
        copy = tmp_path / source.name
        copy.write_text(source.read_text().replace("/opt/cesi-like/bin",
                                                   str(Path(sys.executable).parent)))
        copies.append(copy)
    return copies


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_systemd_units_are_valid_and_hardened(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    units = venv_units(tmp_path)
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", *map(str, units)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # it warns on stderr only
    exposure = {}
    for path in units:
        done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", "--man=no",
                               str(path)], capture_output=True, text=True, timeout=60)
        found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
        assert found is not None, done.stdout + done.stderr
        exposure[path.name] = float(found.group(1))
    bare = tmp_path / "bare.service"  # what a unit without hardening scores, as a yardstick
    bare.write_text("[Service]\nExecStart=/bin/true\n")
    done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", "--man=no",
                           str(bare)], capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert found is not None
    # the console needs nothing of the host: systemd's "OK"; the agent runs as root to start
    # programs as their users, and its sandbox is theirs, so it is hardened only where no
    # program should mind
    assert exposure["cesi-like.service"] <= 2.0, exposure
    assert exposure["cesi-agentd.service"] < float(found.group(1)) - 2, exposure


@pytest.mark.skipif(NGINX is None, reason="nginx not installed (.ci/run installs it)")
def test_units_commands_behind_the_nginx_site(tmp_path: Path) -> None:
    """The units' exact commands (paths mapped into tmp_path), nginx with the sample site in
    front over TLS: health, a Secure session cookie, the client's address in the activity log
    and a process log streamed through."""
    import trustme

    assert NGINX is not None
    agent_port, console_port, http_port, https_port = (free_port() for _ in range(4))
    password = "agent pw " + os.urandom(4).hex()
    agent_rules = [("/var/log/cesi-agent", str(tmp_path / "agent-logs")),
                   ("/run/cesi-agent", str(tmp_path / "agent-run")),
                   ("0.0.0.0:9001", f"127.0.0.1:{agent_port}"),
                   ("/etc/supervisor/supervisord.conf", str(tmp_path / "supervisord.conf")),
                   ("/opt/cesi-like/bin", str(Path(sys.executable).parent))]
    for folder in ("agent-logs", "agent-run", "state", "logs"):
        (tmp_path / folder).mkdir()
    (tmp_path / "supervisord.conf").write_text(
        Host.mapped((ROOT / "deploy" / "compose" / "agent.conf").read_text(), agent_rules))
    (tmp_path / "cesi.conf").write_text(
        "[cesi]\ndatabase = sqlite:////var/lib/cesi-like/console.db\n"
        "activity_log = /var/log/cesi-like/activity.log\ntrusted_proxies = 1\n"
        f"[node:web1]\nurl = http://127.0.0.1:{agent_port}\nusername = cesi\n"
        "password_env = AGENT_PASSWORD\n")
    console_rules = [("/etc/cesi-like/cesi.conf", str(tmp_path / "cesi.conf")),
                     ("/etc/cesi-like", str(tmp_path)),
                     ("/var/lib/cesi-like", str(tmp_path / "state")),
                     ("/var/log/cesi-like", str(tmp_path / "logs")),
                     ("127.0.0.1:5000", f"127.0.0.1:{console_port}"),
                     ("/opt/cesi-like/bin", str(Path(sys.executable).parent))]
    (tmp_path / "cesi.conf").write_text(Host.mapped((tmp_path / "cesi.conf").read_text(),
                                                    console_rules))
    secrets_env = {"CESI_LIKE_ADMIN_PASSWORD": "admin pw " + os.urandom(4).hex(),
                   "AGENT_PASSWORD": password}
    running: list[subprocess.Popen[bytes]] = []

    def service(name: str, rules: list[tuple[str, str]], extra: dict[str, str]) -> None:
        settings = unit(name)
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
               **extra}
        for assignment in settings.get("Environment", []):
            key, value = assignment.split("=", 1)
            env[key] = Host.mapped(value, rules)
        cwd = Host.mapped(settings.get("WorkingDirectory", [str(tmp_path)])[0], rules)
        for command in settings.get("ExecStartPre", []):
            subprocess.run(Host.mapped(command, rules).split(), env=env, cwd=cwd, check=True,
                           capture_output=True, timeout=60)
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        running.append(subprocess.Popen(Host.mapped(settings["ExecStart"][0], rules).split(),
                                        env=env, cwd=cwd, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True))
        log.close()

    authority = trustme.CA()
    certificate = authority.issue_cert("localhost")
    certificate.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "site.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    site = Host.mapped((ROOT / "deploy" / "nginx" / "cesi-like.conf").read_text(), [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("/etc/ssl/certs/cesi.example.com.pem", str(tmp_path / "site.pem")),
        ("/etc/ssl/private/cesi.example.com.key", str(tmp_path / "site.pem")),
        ("127.0.0.1:5000", f"127.0.0.1:{console_port}")])
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "nginx-temp"
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/nginx-error.log;\nevents {{}}\nhttp {{\n"
        f"access_log {tmp_path}/nginx-access.log;\n"
        + "".join(f"{kind}_temp_path {temp}/{kind};\n"
                  for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + f"include {tmp_path}/site.conf;\n}}\n")
    temp.mkdir()
    checked = subprocess.run([NGINX, "-t", "-q", "-c", str(tmp_path / "nginx.conf")],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    try:
        service("cesi-agentd.service", agent_rules, {"CESI_AGENT_PASSWORD": password})
        service("cesi-like.service", console_rules, secrets_env)
        running.append(subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf")],
                                        start_new_session=True))
        base = f"https://localhost:{https_port}"
        ca = str(tmp_path / "ca.pem")

        def healthy() -> bool:
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{base}/healthz", verify=ca, timeout=5).status_code == 200
            return False

        try:
            wait_for(healthy, 60, "the console through nginx")
        except AssertionError:
            raise AssertionError((tmp_path / "cesi-like.service.log").read_text()) from None
        plain = requests.get(f"http://127.0.0.1:{http_port}/login", allow_redirects=False,
                             timeout=10)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        browser = requests.Session()
        browser.verify, browser.trust_env = ca, False  # not REQUESTS_CA_BUNDLE's CAs
        page = browser.get(f"{base}/login", timeout=10)
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        assert token is not None
        answer = browser.post(f"{base}/login", allow_redirects=False, timeout=10,
                              headers={"Referer": f"{base}/login"}, data={  # as browsers do
            "csrf_token": token.group(1), "username": "admin",
            "password": secrets_env["CESI_LIKE_ADMIN_PASSWORD"]})
        assert answer.status_code == 302, answer.text
        assert "Secure" in answer.headers["Set-Cookie"]  # X-Forwarded-Proto believed

        def beating() -> bool:
            log = browser.get(f"{base}/api/v1/nodes/web1/processes/beat/log/download",
                              timeout=10)
            return log.status_code == 200 and "beat 0" in log.text

        wait_for(beating, 30, "the beat program's log streamed through nginx")
        activity = (tmp_path / "logs" / "activity.log").read_text()
        assert "127.0.0.1" in activity and "login" in activity
    finally:
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
