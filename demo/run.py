"""`make run`: a local cesi-agentd with a few demo programs, in the foreground.

Everything lives in ./run/ (config, sockets, logs). Ctrl-C stops the agent and its programs.
Until the console lands (issue #4) this is the whole demo; cesi-agentctl / supervisorctl can
drive the agent meanwhile (the command to use is printed).
"""

from __future__ import annotations

import os
import sys
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

[inet_http_server]
port=127.0.0.1:9001

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


def main() -> None:
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    conf = RUN / "agent.conf"
    conf.write_text(CONFIG.format(py=sys.executable, demo=ROOT / "demo"))
    print(f"cesi-agentd demo: config {conf}")
    print(f"  control it:  {sys.executable} -m supervisor.supervisorctl -c {conf} status")
    print("  XML-RPC:     http://127.0.0.1:9001/RPC2 and unix://" + str(RUN / "agent.sock"))
    print("  Ctrl-C stops everything.\n", flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "cesi_like.agent.main", "-c", str(conf)])


if __name__ == "__main__":
    main()
