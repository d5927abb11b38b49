"""Several console hosts on one PostgreSQL: node polls per second with one and with two
`cesi-like serve` hosts for the same 1,000 node entries (equal: each node is polled by one
host), and how long after kill -9 of the host that polls the other has polled every node.

The entries point at three cesi-agentd at loglevel=trace, which log every XML-RPC call as
supervisord does: polls are counted where they arrive.

The poll interval is 5 s, not the default 2 s: on this 2-core machine, 1,000 entries every 2 s
is more than one host's pollers can do beside the agents, PostgreSQL and a second host (that
throughput is bench/fleet.py's subject), and a saturated poller would make "equal" meaningless.

Usage: python bench/scale_out.py [--postgres URL] [--entries 1000] [--interval 5] [--window 6]
(URL of a server where a database may be created; default $CESI_LIKE_TEST_POSTGRES)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import POLL_PROCESSES, PROGRAMS, console, start_daemon, wait_states

AGENTS = 3


@contextlib.contextmanager
def database(server: str) -> Iterator[str]:
    name = f"cesi_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def calls(logs: list[Path]) -> int:
    return sum(log.read_text().count("XML-RPC method called:") for log in logs)


def polls_per_second(logs: list[Path], seconds: float) -> float:
    before, began = calls(logs), time.monotonic()
    time.sleep(seconds)
    return (calls(logs) - before) / (time.monotonic() - began)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("CESI_LIKE_TEST_POSTGRES"))
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0, help="poll_interval")
    parser.add_argument("--window", type=int, default=6, help="poll intervals per count")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("needs a PostgreSQL server: --postgres URL or $CESI_LIKE_TEST_POSTGRES "
                     "(.ci/run shows how to start a throwaway one)")
    rows: list[tuple[str, str, str, str]] = []
    interval = args.interval
    with tempfile.TemporaryDirectory(prefix="cesi-scale-bench-") as tmp, \
            database(args.postgres) as url, contextlib.ExitStack() as stack:
        root = Path(tmp)
        urls, logs = [], []
        for index in range(AGENTS):
            proc, address = start_daemon("agent", root / f"agent{index}", loglevel="trace")
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
            urls.append(address)
            logs.append(root / f"agent{index}" / "main.log")
        entries = [urls[i % AGENTS] for i in range(args.entries)]
        extra = f"node_key = {Fernet.generate_key().decode()}\n"
        base, token, first = stack.enter_context(
            console(root / "host1", entries, extra, database=url, interval=interval))
        wait_states(base, token, {"online": args.entries})
        time.sleep(2 * interval)
        one = polls_per_second(logs, args.window * interval)
        _, _, second = stack.enter_context(
            console(root / "host2", entries, extra, database=url, interval=interval))
        time.sleep(3 * interval)  # its poller processes and workers ask for the shares
        two = polls_per_second(logs, args.window * interval)
        rows.append((f"{args.entries} nodes: node polls per second, 2 hosts vs 1",
                     f"{one:.0f}/s", f"{two:.0f}/s", f"{two / one:.2f}x"))
        rows.append(("expected: entries / poll_interval", "-",
                     f"{args.entries / interval:.0f}/s", "-"))
        engine = create_engine(url)
        stack.callback(engine.dispose)
        with engine.connect() as db:
            owners = [row[0] for row in db.execute(text("SELECT owner FROM leases"))]
        held = {}
        for server in (first, second):
            held[server] = 0
            for owner in owners:
                with contextlib.suppress(ProcessLookupError):
                    held[server] += os.getpgid(int(owner.split(":")[1])) == server.pid
        victim = max(held, key=lambda server: held[server])
        killed = utcnow()
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        first_seen = None
        while True:
            with engine.connect() as db:
                fresh = db.execute(text("SELECT count(*) FROM node_status WHERE polled_at > :t"),
                                   {"t": killed}).scalar() or 0
            if fresh and first_seen is None:
                first_seen = (utcnow() - killed).total_seconds()
            if fresh == args.entries:
                break
            if (utcnow() - killed).total_seconds() > 60:
                raise RuntimeError(f"only {fresh} nodes polled again a minute after the kill")
            time.sleep(0.05)
        took = (utcnow() - killed).total_seconds()
        rows.append(("kill -9: first node polled again (the leases lapse and are claimed)",
                     "-", f"{first_seen:.2f} s", f"{(first_seen or 0) / interval:.2f} intervals"))
        rows.append((f"kill -9 of the host holding {held[victim]} of 16 shares: every node "
                     "polled again", "-", f"{took:.2f} s", f"{took / interval:.2f} intervals"))
    print(f"\n{args.entries} entries on {AGENTS} agents x {PROGRAMS} programs, poll_interval "
          f"{interval:g} s, {POLL_PROCESSES} poller processes per host")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'1 host':>10}  {'2 hosts':>10}  ratio")
    for name, anchor, ours, ratio in rows:
        print(f"{name:<{width}}  {anchor:>10}  {ours:>10}  {ratio}")


if __name__ == "__main__":
    main()
