"""`cesi-like serve` as deployed: the poller runs as its own process beside the gunicorn
workers, holds the lease, and a worker takes over when that process dies."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

from tests.agent.conftest import wait_for
from tests.e2e.conftest import serve_console


def lease_owner(db: Path) -> str | None:
    with sqlite3.connect(db) as connection:
        row = connection.execute("SELECT owner FROM leases WHERE name = 'poller'").fetchone()
    return row[0] if row else None


def test_poller_process_holds_the_lease_and_a_worker_takes_over(tmp_path: Path) -> None:
    config = "[cesi]\npoll_interval = 0.3\n"
    with serve_console(tmp_path, "serve admin pw", config):
        db = tmp_path / "e2e.db"
        owner = wait_for(lambda: lease_owner(db), what="a poller to take the lease")
        pid = int(owner.split(":")[1])
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            assert handle.read().split(b"\0")[-2] == b"poll"  # the dedicated process
        os.kill(pid, signal.SIGKILL)
        taken = wait_for(lambda: (o := lease_owner(db)) and o != owner and o, timeout=15,
                         what="a worker to take the lease over")
        assert int(taken.split(":")[1]) != pid
