"""`make run`: a local cesi-agentd with demo programs, and the console on :5000 watching it.

Everything lives in ./run/ (configs, database, sockets, logs). The admin password is generated
on the first run and kept in run/admin-password. Ctrl-C, or SIGTERM to this runner (as `kill`,
`timeout` or systemd send it), stops the console, the agent and its programs.
CESI_DEMO_DIR, CESI_DEMO_PORT and CESI_DEMO_WEB_PORT move it (the tests run it elsewhere).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = Path(os.environ.get("CESI_DEMO_DIR") or ROOT / "run")
PORT = int(os.environ.get("CESI_DEMO_PORT") or 5000)
WEB_PORT = int(os.environ.get("CESI_DEMO_WEB_PORT") or 8089)

CONFIG = """\
[supervisord]
logfile=%(here)s/agent.log
pidfile=%(here)s/agent.pid
childlogdir=%(here)s/logs
nodaemon=true

[unix_http_server]
file=%(here)s/agent.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/agent.sock

[program:web]
command={py} -m http.server {web_port} --bind 127.0.0.1
directory=%(here)s
redirect_stderr=true

[program:worker]
command={py} {demo}/worker.py
process_name=%(program_name)s_%(process_num)d
numprocs=2

[program:flaky]
command=/bin/sh -c "echo starting; sleep 5; echo crashing >&2; exit 3"
autorestart=unexpected
"""


CONSOLE = """\
[cesi]
database = sqlite:///{run}/console.db
activity_log = {run}/activity.log
admin_username = admin
admin_password = {password}
name = cesi-like demo

[node:local]
url = unix://{run}/agent.sock

[environment:demo]
members = local
"""


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the demo as Ctrl-C does: through `finally`


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    agent_conf = RUN / "agent.conf"
    agent_conf.write_text(CONFIG.format(py=sys.executable, demo=ROOT / "demo",
                                        web_port=WEB_PORT))
    secret = RUN / "admin-password"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(12))
        secret.chmod(0o600)
    password = secret.read_text().strip()
    console_conf = RUN / "cesi.conf"
    console_conf.write_text(CONSOLE.format(run=RUN, password=password))
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(subprocess.Popen([sys.executable, "-m", "cesi_like.agent.main", "-c",
                                          str(agent_conf), "-s"]))
        deadline = time.monotonic() + 30
        while not (RUN / "agent.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        print("\ncesi-like demo")
        print(f"  console:  http://localhost:{PORT}/   (login: admin / {password})")
        print(f"  agent:    {sys.executable} -m cesi_like.agent.ctl -c {agent_conf} status")
        print("  Ctrl-C stops everything.\n", flush=True)
        children.append(subprocess.Popen([sys.executable, "-m", "cesi_like.console.cli",
                                          "--config", str(console_conf), "serve", "--bind",
                                          f"0.0.0.0:{PORT}"]))
        children[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        # the console first (gunicorn stops its workers and pollers), then the agent (which
        # stops its programs); a Ctrl-C in a terminal already reached them: no harm
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


if __name__ == "__main__":
    main()
