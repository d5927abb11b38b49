"""`make run`: a local cesi-agentd with demo programs, and the console on :5000 watching it.

Everything lives in ./run/ (configs, database, sockets, logs). The admin password is generated
on the first run and kept in run/admin-password. Ctrl-C stops the console, the agent and its
programs.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "run"

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
command={py} -m http.server 8089 --bind 127.0.0.1
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


def main() -> None:
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    agent_conf = RUN / "agent.conf"
    agent_conf.write_text(CONFIG.format(py=sys.executable, demo=ROOT / "demo"))
    secret = RUN / "admin-password"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(12))
        secret.chmod(0o600)
    password = secret.read_text().strip()
    console_conf = RUN / "cesi.conf"
    console_conf.write_text(CONSOLE.format(run=RUN, password=password))
    agent = subprocess.Popen([sys.executable, "-m", "cesi_like.agent.main", "-c",
                              str(agent_conf), "-s"])
    try:
        deadline = time.monotonic() + 30
        while not (RUN / "agent.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        print("\ncesi-like demo")
        print("  console:  http://localhost:5000/   (login: admin / " + password + ")")
        print(f"  agent:    {sys.executable} -m cesi_like.agent.ctl -c {agent_conf} status")
        print("  Ctrl-C stops everything.\n", flush=True)
        subprocess.run([sys.executable, "-m", "cesi_like.console.cli", "--config",
                        str(console_conf), "serve", "--bind", "0.0.0.0:5000"], check=False)
    except KeyboardInterrupt:
        pass
    finally:
        agent.terminate()
        agent.wait(60)


if __name__ == "__main__":
    main()
