"""`make run`: a small fleet on this machine, and the console on :5000 watching it.

Three cesi-agentd nodes (web-1, web-2, jobs-1) and, when the `supervisor` package is
installed, a stock supervisord node (legacy-1), in two environments: production (web-1,
jobs-1) and staging (web-2, legacy-1). Their programs are what a console is for: a web pool and
queue workers in groups that span nodes, a cron-like report, one that logs a lot, one that
flaps (crashes every few seconds and is restarted) and one that stays FATAL (its command does
not exist). On the first run the console gets two alert rules (FATAL, flapping), made
through its API before the nodes start, so both programs show up on the Alerts page; their
webhook is web-1's first web server, which writes what it receives to its log.

Everything lives in ./run/ (configs, database, sockets, logs). The admin password is generated
on the first run and kept in run/admin-password. Ctrl-C, or SIGTERM to this runner (as `kill`,
`timeout` or systemd send it), stops the console, the nodes and their programs.
CESI_DEMO_DIR, CESI_DEMO_PORT and CESI_DEMO_WEB_PORT (the web pool's first port of four) move
it (the tests run it elsewhere).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RUN = Path(os.environ.get("CESI_DEMO_DIR") or ROOT / "run")
PORT = int(os.environ.get("CESI_DEMO_PORT") or 5000)
WEB_PORT = int(os.environ.get("CESI_DEMO_WEB_PORT") or 8089)
HAS_SUPERVISOR = importlib.util.find_spec("supervisor") is not None

DAEMON = """\
[supervisord]
logfile=%(here)s/daemon.log
pidfile=%(here)s/daemon.pid
childlogdir=%(here)s/logs
nodaemon=true

[unix_http_server]
file=%(here)s/node.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/node.sock
"""

WEB_POOL = """
[program:web]
command={py} {demo}/web.py {web_port} %(process_num)d
process_name=%(program_name)s_%(process_num)d
numprocs=2
numprocs_start={first}
redirect_stderr=true
"""

WORKERS = """
[program:worker]
command={py} {demo}/worker.py
process_name=%(program_name)s_%(process_num)d
numprocs={count}
"""

# node -> (environment, kind, programs)
NODES: dict[str, tuple[str, str, str]] = {
    "web-1": ("production", "cesi-agentd", WEB_POOL.replace("{first}", "0") + """
[program:api]
command={py} {demo}/chatty.py
stdout_logfile_maxbytes=1MB
stderr_logfile_maxbytes=1MB
"""),
    "web-2": ("staging", "cesi-agentd",
              WEB_POOL.replace("{first}", "2") + WORKERS.replace("{count}", "1")),
    "jobs-1": ("production", "cesi-agentd", WORKERS.replace("{count}", "2") + """
[program:report]
command={py} {demo}/cron.py

[program:flaky]
command=/bin/sh -c "echo starting; sleep 3; echo 'lost the database connection' >&2; exit 3"
startsecs=1
autorestart=true

[program:exporter]
command=/opt/legacy/bin/exporter --nightly
startretries=2
"""),
    "legacy-1": ("staging", "supervisord", WORKERS.replace("{count}", "1") + """
[program:billing]
command={py} {demo}/cron.py
"""),
}

CONSOLE = """\
[cesi]
database = sqlite:///{run}/console.db
activity_log = {run}/activity.log
admin_username = admin
admin_password = {password}
name = cesi-like demo
stats_interval = 2
"""


# made on the first run; their webhook is web-1's first web server (demo/web.py logs it)
ALERT_RULES = [
    {"name": "fatal", "kind": "fatal", "webhook_url": f"http://127.0.0.1:{WEB_PORT}/alerts"},
    {"name": "flapping", "kind": "flapping", "threshold": 3, "window_minutes": 10,
     "webhook_url": f"http://127.0.0.1:{WEB_PORT}/alerts"},
]


def nodes() -> dict[str, tuple[str, str, str]]:
    """The demo's nodes: legacy-1 only when supervisord can run here."""
    return {name: spec for name, spec in NODES.items()
            if spec[1] != "supervisord" or HAS_SUPERVISOR}


def console_config(password: str) -> str:
    text = CONSOLE.format(run=RUN, password=password)
    environments: dict[str, list[str]] = {}
    for name, (environment, _kind, _programs) in nodes().items():
        text += f"\n[node:{name}]\nurl = unix://{RUN / name / 'node.sock'}\n"
        environments.setdefault(environment, []).append(name)
    for environment, members in environments.items():
        text += f"\n[environment:{environment}]\nmembers = {', '.join(members)}\n"
    return text


def start_node(name: str, kind: str, programs: str) -> subprocess.Popen[bytes]:
    folder = RUN / name
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    conf = folder / "node.conf"
    conf.write_text(DAEMON + programs.format(py=sys.executable, demo=ROOT / "demo",
                                             web_port=WEB_PORT))
    if kind == "supervisord":
        command = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)]
    else:
        command = [sys.executable, "-m", "cesi_like.agent.main", "-c", str(conf), "-s"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cli(console_conf: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "cesi_like.console.cli", "--config",
                           str(console_conf), *args], capture_output=True, text=True,
                          check=True).stdout


def wait_for_console(deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/login", timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def add_alert_rules(console_conf: Path) -> None:
    """ALERT_RULES, through the API with a token that expires in a day."""
    token = cli(console_conf, "tokens", "create", "admin", "--label", "demo alert rules",
                "--expires-days", "1").split()[-1]
    for rule in ALERT_RULES:
        answer = requests.post(f"http://127.0.0.1:{PORT}/api/v1/alerts", json=rule, timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
        if answer.status_code not in (201, 409):  # 409: made on an earlier run
            print(f"demo: alert rule {rule['name']}: HTTP {answer.status_code} "
                  f"{answer.text[:200]}", file=sys.stderr)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the demo as Ctrl-C does: through `finally`


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    RUN.mkdir(parents=True, exist_ok=True)
    secret = RUN / "admin-password"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(12))
        secret.chmod(0o600)
    password = secret.read_text().strip()
    first_run = not (RUN / "console.db").exists()
    console_conf = RUN / "cesi.conf"
    console_conf.write_text(console_config(password))
    console: list[subprocess.Popen[bytes]] = []
    fleet: list[subprocess.Popen[bytes]] = []
    try:
        # the console first: on the first run its alert rules are there before anything fails
        console.append(subprocess.Popen([sys.executable, "-m", "cesi_like.console.cli",
                                         "--config", str(console_conf), "serve", "--bind",
                                         f"0.0.0.0:{PORT}"]))
        if first_run and wait_for_console(time.monotonic() + 60):
            add_alert_rules(console_conf)
        for name, (_environment, kind, programs) in nodes().items():
            fleet.append(start_node(name, kind, programs))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                (RUN / name / "node.sock").exists() for name in nodes()):
            time.sleep(0.05)
        print("\ncesi-like demo")
        print(f"  console:  http://localhost:{PORT}/   (login: admin / {password})")
        for name, (environment, kind, _programs) in nodes().items():
            print(f"  {name:9} {environment:11} {kind:12} {RUN / name / 'node.conf'}")
        if not HAS_SUPERVISOR:
            print("  (pip install supervisor to add legacy-1, a stock supervisord node)")
        print("  Ctrl-C stops everything.\n", flush=True)
        console[0].wait()
    except KeyboardInterrupt:
        pass
    finally:
        # the console first (gunicorn stops its workers and pollers), then every node at
        # once (each stops its programs); a Ctrl-C in a terminal already reached them: no harm
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for group in (console, fleet):
            for child in group:
                if child.poll() is None:
                    child.terminate()
            for child in group:
                try:
                    child.wait(60)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


if __name__ == "__main__":
    main()
