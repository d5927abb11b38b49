"""A bulk restart of one group on 100 node entries against restarting them one after another
(what CESI and its peers offer: a restart button per node), in one run.

Each entry is its own cesi-agentd (unix socket) running a group `web` of 2 processes with
startsecs=1, so a node's own restart takes a little over a second. The console runs as
`cesi-like serve` does; the bulk action is POSTed to its API and followed until it ends.
  own restart   each node's group restart on its own (stop, then start and wait): the
                slowest is the floor for a parallel bulk restart, the sum is the sequential
                anchor (measured, one node after another, through XML-RPC as CESI does)
  bulk          POST /api/v1/bulk to the job's end (the target: within 2x the slowest node)
  floor         every node's restart at once from this script's threads, no console: what
                this machine allows (its 2 cores run the agents, their programs and the
                console alike)

Usage: python bench/bulk.py [--nodes 100]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import PY, console

from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy

AGENT = """[supervisord]
logfile={here}/main.log
pidfile={here}/d.pid
[unix_http_server]
file={here}/d.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:web]
command=sleep 100000
process_name=%(program_name)s_%(process_num)d
numprocs=2
startsecs=1
"""


def restart(url: str) -> float:
    """One node's group restart as supervisorctl does it: stop, then start and wait."""
    rpc = server_proxy(url).supervisor
    began = time.monotonic()
    rpc.stopProcessGroup("web", True)
    rpc.startProcessGroup("web", True)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cesi-bulk-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        root = Path(tmp)
        urls = []
        for index in range(args.nodes):
            here = root / f"agent{index}"
            here.mkdir()
            (here / "d.conf").write_text(AGENT.format(here=here))
            proc = subprocess.Popen([PY, "-m", "cesi_like.agent.main", "-n", "-c",
                                     str(here / "d.conf")], cwd=here,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
            urls.append(f"unix://{here}/d.sock")
        for url in urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    infos = server_proxy(url).supervisor.getAllProcessInfo()
                    if all(info["statename"] == "RUNNING" for info in infos) and infos:
                        break
                except (OSError, xmlrpc.client.Error):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not start")
                time.sleep(0.1)
        sequential_began = time.monotonic()
        own = [restart(url) for url in urls]
        sequential = time.monotonic() - sequential_began
        floor_began = time.monotonic()  # every node at once, straight from this script
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            list(pool.map(restart, urls))
        floor = time.monotonic() - floor_began
        base, token, _ = stack.enter_context(console(root / "console", urls))
        headers = {"Authorization": f"Bearer {token}"}
        nodes = [f"n{index:04d}" for index in range(args.nodes)]
        deadline = time.monotonic() + 60
        while len([n for n in requests.get(f"{base}/api/v1/nodes", headers=headers,
                                           timeout=30).json() if n["state"] == "online"]) \
                < args.nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("the console did not see every node online")
            time.sleep(0.2)
        began = time.monotonic()
        answer = requests.post(f"{base}/api/v1/bulk", headers=headers, timeout=30, json={
            "action": "restart", "spec": "web:*", "nodes": nodes})
        answer.raise_for_status()
        job_id = answer.json()["id"]
        while (job := requests.get(f"{base}/api/v1/jobs/{job_id}", headers=headers,
                                   timeout=30).json())["state"] in ("queued", "running"):
            time.sleep(0.05)
        bulk = time.monotonic() - began
        if job["state"] != "succeeded":
            raise RuntimeError(f"the bulk restart ended {job['state']}: {job['message']}")
    slowest = max(own)
    print(f"\n{args.nodes} nodes, group of 2 processes, startsecs=1 "
          f"(a node's own restart: median {sorted(own)[len(own) // 2]:.2f} s, "
          f"slowest {slowest:.2f} s)")
    rows = [("bulk restart vs one node after another", f"{sequential:.1f} s",
             f"{bulk:.2f} s", f"{sequential / bulk:.0f}x"),
            ("bulk restart vs the slowest node's own restart (target <= 2x)",
             f"{slowest:.2f} s", f"{bulk:.2f} s", f"{bulk / slowest:.2f}x"),
            ("floor: all nodes at once from a bare XML-RPC script, vs the slowest",
             f"{slowest:.2f} s", f"{floor:.2f} s", f"{floor / slowest:.2f}x")]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'anchor':>10}  {'cesi-like':>10}  ratio")
    for name, anchor, ours, ratio in rows:
        print(f"{name:<{width}}  {anchor:>10}  {ours:>10}  {ratio}")


if __name__ == "__main__":
    main()
