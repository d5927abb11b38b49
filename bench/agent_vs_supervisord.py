"""cesi-agentd against supervisord 4.3.0 on the same configs, in one run, with ratios.

Each daemon manages N programs (default 500) and is measured in turn, alone on the machine:
  startup      seconds from launch until all N are RUNNING (startsecs=1)
  rss          resident memory once all are RUNNING, and again after the rpc calls below
  idle cpu     CPU seconds the daemon uses over an idle window
  rpc          median getAllProcessInfo latency, and `supervisorctl status` wall time
  capture      MB/s of one noisy program (100-byte lines; 64 KiB writes) with N managed,
               rotating every 8 MB, checked byte for byte afterwards
  restart      seconds from SIGKILL of a child to RUNNING again (startsecs=0)
  memory       resident memory of N plain programs (`sleep`) alone, without child logs and
               with AUTO ones, once all are RUNNING and after 30 getAllProcessInfo calls

Usage: python bench/agent_vs_supervisord.py [--programs 500] [--idle 20] [--mb 100]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy

HERE = Path(__file__).resolve().parent
PY = sys.executable


def daemon_sections(directory: Path) -> str:
    """What both benchmark configs share: the daemon, its socket, its interface."""
    return f"""[supervisord]
logfile={directory}/main.log
pidfile={directory}/daemon.pid
childlogdir={directory}
minfds=16384
minprocs=2000

[unix_http_server]
file={directory}/daemon.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""


def config(directory: Path, programs: int, total: int) -> str:
    producer = HERE / "producer.py"
    text = daemon_sections(directory) + f"""
[supervisorctl]
serverurl=unix://{directory}/daemon.sock

[program:idle]
command=sleep 100000
process_name=%(program_name)s_%(process_num)03d
numprocs={programs - 1}
startsecs=1

[program:crashy]
command=sleep 100000
startsecs=0
"""
    text += f"""
[eventlistener:counter]
command={PY} {HERE / "event_counter.py"} {directory}/events.count
events=REMOTE_COMMUNICATION
buffer_size=100000
startsecs=0
"""
    for mode in ("lines", "64k"):
        text += f"""
[program:noisy_{mode}]
command={PY} {producer} {mode} {total} {directory}/{mode}.start
autostart=false
startsecs=0
stdout_logfile={directory}/{mode}.log
stdout_logfile_maxbytes=8MB
stdout_logfile_backups=1000
"""
    return text


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout}s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def safe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (OSError, xmlrpc.client.Error):
        return None


def wire_latency(sock_path: Path) -> float:
    """Median ms from sending getAllProcessInfo to the last byte of the answer, unparsed:
    the server's share of the call (a Python client then spends ~30 ms parsing 500 structs)."""
    body = xmlrpc.client.dumps((), "supervisor.getAllProcessInfo").encode()
    request = (b"POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    timings = []
    for _ in range(20):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(sock_path))
            begin = time.perf_counter()
            sock.sendall(request)
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            timings.append(time.perf_counter() - begin)
    return statistics.median(timings) * 1000


def verify(directory: Path, mode: str, total: int) -> int:
    """Bytes lost or duplicated across all rotated files (0 is the only good answer)."""
    base = directory / f"{mode}.log"
    files = [*sorted(directory.glob(f"{mode}.log.*"), key=lambda p: -int(p.suffix[1:])), base]
    data = b"".join(p.read_bytes() for p in files)
    size = 100 if mode == "lines" else 65536
    expected_blocks = total // size
    good = 0
    for number in range(expected_blocks):
        head = f"{number:09d} ".encode()
        chunk = data[number * size : (number + 1) * size]
        if chunk.startswith(head) and chunk.endswith(b"\n") and len(chunk) == size:
            good += 1
    expected_len = expected_blocks * size + len(b"DONE\n")
    return abs(len(data) - expected_len) + (expected_blocks - good) * size


def event_throughput(directory: Path, events: int = 10_000) -> float:
    """REMOTE_COMMUNICATION events (sendRemoteCommEvent, 500 per multicall) delivered to
    one listener (supervisor.childutils), per second, from the first send to the last one
    counted by the listener."""
    root = server_proxy(f"unix://{directory}/daemon.sock", timeout=120)
    counted = directory / "events.count"
    begin = time.perf_counter()
    for start in range(0, events, 500):
        root.system.multicall([{"methodName": "supervisor.sendRemoteCommEvent",
                                "params": ["bench", str(n)]}
                               for n in range(start, start + 500)])
    wait_for(lambda: counted.exists() and int(counted.read_text() or 0) >= events, 300, 0.005)
    return events / (time.perf_counter() - begin)


@contextlib.contextmanager
def running(kind: str, make_config: Callable[[Path], str]) -> Iterator[tuple[Any, Path]]:
    """The daemon of `kind` on the config made for a fresh directory; stopped and its
    directory removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    conf = directory / "daemon.conf"
    conf.write_text(make_config(directory))
    module = "cesi_like.agent.main" if kind == "agent" else "supervisor.supervisord"
    proc = subprocess.Popen([PY, "-m", module, "-c", str(conf), "-n", "-s"], cwd=directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc, directory
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["rm", "-rf", str(directory)], check=False)


def measure(kind: str, programs: int, idle_seconds: float, total: int) -> dict[str, float]:
    results: dict[str, float] = {}
    started = time.monotonic()
    with running(kind, lambda d: config(d, programs, total)) as (proc, directory):
        rpc = server_proxy(f"unix://{directory}/daemon.sock", timeout=60).supervisor
        main_log = directory / "main.log"

        def all_running() -> bool:
            # the log, not RPC: polling getAllProcessInfo would load the daemon being timed
            try:
                # the programs and the event listener
                return main_log.read_bytes().count(b" entered RUNNING state") >= programs + 1
            except FileNotFoundError:
                return False

        wait_for(all_running, 120, 0.01)
        results["startup s"] = time.monotonic() - started
        infos = rpc.getAllProcessInfo()
        assert sum(i["statename"] == "RUNNING" for i in infos) == programs + 1, "not RUNNING"
        time.sleep(1)
        results["rss MB"] = rss_mb(proc.pid)
        before = cpu_seconds(proc.pid)
        time.sleep(idle_seconds)
        results["idle cpu s"] = cpu_seconds(proc.pid) - before

        latencies = []
        for _ in range(20):
            begin = time.perf_counter()
            rpc.getAllProcessInfo()
            latencies.append(time.perf_counter() - begin)
        results["getAllProcessInfo ms"] = statistics.median(latencies) * 1000
        results["getAllProcessInfo wire ms"] = wire_latency(directory / "daemon.sock")
        # what the answers of a big host leave behind (the allocator keeps freed memory)
        results["rss after the getAllProcessInfo calls MB"] = rss_mb(proc.pid)
        walls = []
        for _ in range(5):
            begin = time.perf_counter()
            subprocess.run([PY, "-m", "supervisor.supervisorctl", "-c",
                            str(directory / "daemon.conf"), "status"],
                           stdout=subprocess.DEVNULL, check=False)
            walls.append(time.perf_counter() - begin)
        results["supervisorctl status s"] = statistics.median(walls)

        for mode in ("lines", "64k"):
            rpc.startProcess(f"noisy_{mode}")
            log = directory / f"{mode}.log"

            def done(log: Path = log) -> bool:
                try:
                    with open(log, "rb") as handle:
                        handle.seek(max(0, os.fstat(handle.fileno()).st_size - 5))
                        return handle.read() == b"DONE\n"
                except FileNotFoundError:
                    return False

            wait_for(done, 300, 0.002)
            finished = time.time()
            begin_at = float((directory / f"{mode}.start").read_text())
            results[f"capture {mode} MB/s"] = total / (finished - begin_at) / 1e6
            rpc.stopProcess(f"noisy_{mode}")
            results[f"lost bytes {mode}"] = verify(directory, mode, total)

        results["events/s to one listener"] = event_throughput(directory)

        restarts = []
        for _ in range(5):
            # a crash of a process that had been up a while: one that dies within a second
            # of its start is restarted a second after that start (a crash loop's pace)
            time.sleep(1.1)
            pid = rpc.getProcessInfo("crashy")["pid"]
            begin = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda pid=pid: (i := rpc.getProcessInfo("crashy"))["statename"] == "RUNNING"
                     and i["pid"] != pid, 30, 0.002)
            restarts.append(time.perf_counter() - begin)
        results["crash->RUNNING ms"] = statistics.median(restarts) * 1000
    return results


def plain_config(directory: Path, programs: int, logs: str) -> str:
    return daemon_sections(directory) + f"""
[program:idle]
command=sleep 100000
process_name=%(program_name)s_%(process_num)03d
numprocs={programs}
startsecs=1
stdout_logfile={logs}
stderr_logfile={logs}
"""


def plain_memory(kind: str, programs: int) -> dict[str, float]:
    """RSS with nothing but N idle programs, with and without child logs."""
    results: dict[str, float] = {}
    for logs, label in (("NONE", "no child logs"), ("AUTO", "AUTO child logs")):
        with running(kind, lambda d, logs=logs: plain_config(d, programs, logs)) as (
                proc, directory):
            main_log = directory / "main.log"
            wait_for(lambda log=main_log: log.exists()
                     and log.read_bytes().count(b" entered RUNNING state") >= programs, 120)
            time.sleep(1)
            results[f"rss, {label} MB"] = rss_mb(proc.pid)
            rpc = server_proxy(f"unix://{directory}/daemon.sock", timeout=60).supervisor
            for _ in range(30):
                rpc.getAllProcessInfo()
            results[f"rss after 30 getAllProcessInfo, {label} MB"] = rss_mb(proc.pid)
    return results


LOWER_IS_BETTER = ("startup s", "rss MB", "rss after the getAllProcessInfo calls MB",
                   "rss, no child logs MB", "rss after 30 getAllProcessInfo, no child logs MB",
                   "rss, AUTO child logs MB",
                   "rss after 30 getAllProcessInfo, AUTO child logs MB",
                   "idle cpu s", "getAllProcessInfo ms",
                   "getAllProcessInfo wire ms",
                   "supervisorctl status s", "crash->RUNNING ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=500)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--mb", type=int, default=100, help="MB written per capture test")
    args = parser.parse_args()
    total = args.mb * 1_000_000
    # supervisord comes from a wheel with compiled bytecode; give our package the same footing
    # (PYTHONDONTWRITEBYTECODE or an editable install would otherwise compile it at each start)
    subprocess.run([PY, "-m", "compileall", "-q", str(HERE.parent / "cesi_like")], check=True)
    print(f"{args.programs} programs, idle window {args.idle:.0f}s, {args.mb} MB per capture test",
          flush=True)
    reference = measure("supervisord", args.programs, args.idle, total)
    reference |= plain_memory("supervisord", args.programs)
    print("supervisord measured", flush=True)
    agent = measure("agent", args.programs, args.idle, total)
    agent |= plain_memory("agent", args.programs)
    print("\n| metric | supervisord 4.3.0 | cesi-agentd | ratio (better side) |")
    print("|---|---:|---:|---:|")
    for key in reference:
        ref, ours = reference[key], agent[key]
        if key.startswith("lost"):
            ratio = "-"
        elif key in LOWER_IS_BETTER:
            ratio = f"{ref / ours:.1f}x" if ours else "inf"
        else:
            ratio = f"{ours / ref:.1f}x" if ref else "inf"
        print(f"| {key} | {ref:.2f} | {ours:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
