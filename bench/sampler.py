"""The CPU and memory sampler at fleet size: 1,000 cesi-agentd node entries x 20 processes,
sampled every stats_interval (10 s) into the console's store, in one run.

Four real cesi-agentd with 20 programs each serve the 1,000 node entries (250 each, over TCP);
the console's Sampler runs in this process on a SQLite database, as it runs beside a poller.
  round        wall time and CPU seconds of one sampling round of every node (stats calls
               in parallel, then one transaction: readings, rule judging, inserts); CPU
               share = CPU per round / stats_interval
  rows         rows stored per round and per day, bytes per row on disk (SQLite)
  rollup       CPU seconds of one minute's rollup (the minute means of 6 rounds of raw rows)
  growth       the store's size when full (raw 1 h, minute means 24 h, ten-minute means for
               history_days) and its growth per day until then
The anchor is the same stats calls made one node after another (what a CESI-style console
would do), for the wall time of a round.

Usage: python bench/sampler.py [--entries 1000] [--rounds 6] [--interval 10]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.fleet import PROGRAMS, start_daemon
from cesi_like.console.services import samples
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import Node, utcnow
from cesi_like.console.workers.sampler import Sampler
from cesi_like.supervisor_rpc.node import NodeAddress, NodeClient

DAEMONS = 4
HISTORY_DAYS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cesi-bench-sampler-") as folder:
        root = Path(folder)
        daemons = [start_daemon("agent", root / f"agent{i}") for i in range(DAEMONS)]
        try:
            run(root, [url for _, url in daemons], args.entries, args.rounds, args.interval)
        finally:
            for process, _ in daemons:
                process.terminate()
                process.wait(30)


def run(root: Path, urls: list[str], entries: int, rounds: int, interval: float) -> None:
    path = root / "console.db"
    url = f"sqlite:///{path}"
    database.upgrade(url)
    engine = database.make_engine(url)
    sessions = database.make_sessions(engine)
    with sessions() as db:
        nodes = [Node(name=f"node{i:04d}", url=urls[i % len(urls)]) for i in range(entries)]
        db.add_all(nodes)
        db.commit()
        targets = [(node.id, NodeAddress(node.name, node.url)) for node in nodes]
    client = NodeClient(3.0, 8 * 1024 * 1024)
    sampler = Sampler(sessions, client, lambda: targets, interval, concurrency=32)
    sampler.sample_now()  # the first round has no CPU figures yet (two samples make one)
    with sessions() as db:
        db.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    before = path.stat().st_size + _wal(path)
    walls, cpus = [], []
    for _ in range(rounds):
        began, cpu = time.monotonic(), time.process_time()
        sampler.sample_now()
        cpus.append(time.process_time() - cpu)
        walls.append(time.monotonic() - began)
    with sessions() as db:
        db.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    rows = entries * PROGRAMS * rounds
    per_row = (path.stat().st_size + _wal(path) - before) / rows
    # a minute of raw rows rolled up (6 rounds at 10 s): its CPU
    cpu = time.process_time()
    with sessions() as db:
        made = samples.rollup(db, HISTORY_DAYS, now=utcnow() + datetime.timedelta(minutes=2))
    rollup_cpu = time.process_time() - cpu
    sequential = sequential_round(client, targets[:50]) * entries / 50
    processes = entries * PROGRAMS
    per_day = {"raw": 86400 / interval, "minute": 1440, "ten": 144}
    full = processes * (3600 / interval + 1440 + 144 * HISTORY_DAYS) * per_row
    round_cpu = sorted(cpus)[len(cpus) // 2]
    round_wall = sorted(walls)[len(walls) // 2]
    print(f"sampler: {entries} node entries x {PROGRAMS} processes, stats_interval "
          f"{interval:g} s, {rounds} rounds, {os.cpu_count()} cores")
    print(f"  round: {round_wall:.2f} s wall (one node after another: {sequential:.1f} s, "
          f"{sequential / round_wall:.0f}x), {round_cpu:.2f} CPU s = "
          f"{round_cpu / interval * 100:.1f} % of a core at every {interval:g} s")
    print(f"  rows: {processes} a round, {processes * per_day['raw']:,.0f} raw a day "
          f"(kept 1 h), {per_row:.0f} bytes each on disk")
    print(f"  rollup of a minute ({made['minutes']} minute means): {rollup_cpu:.2f} CPU s "
          f"= {rollup_cpu / 60 * 100:.1f} % of a core")
    print(f"  store when full ({HISTORY_DAYS} days): {full / 2**30:.2f} GiB; growth until "
          f"then {processes * per_day['ten'] * per_row / 2**20:.0f} MiB a day (the "
          f"ten-minute means), the raw hour and minute day a fixed "
          f"{processes * (3600 / interval + 1440) * per_row / 2**20:.0f} MiB")


def sequential_round(client: NodeClient, targets: list[tuple[int, NodeAddress]]) -> float:
    began = time.monotonic()
    for _, where in targets:
        client.process_stats(where)
    return time.monotonic() - began


def _wal(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


if __name__ == "__main__":
    main()
