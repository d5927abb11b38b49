"""`cesi-like serve` as deployed: `poll_processes` poller processes beside the gunicorn
workers, each holding the leases of its share of the nodes; a worker takes a share over when
the process polling it dies."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

from cesi_like.console.workers.poller import SHARDS
from tests.support.served import serve_console
from tests.support.waiting import wait_for


def lease_owners(db: Path) -> dict[str, str]:
    """Shard lease -> owner, for the leases held now."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT name, owner FROM leases WHERE name LIKE 'poller:%' "
                                  "AND expires > datetime('now')").fetchall()
    return dict(rows)


def pid_of(owner: str) -> int:
    return int(owner.split(":")[1])


def command_of(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().split(b"\0")


def test_poller_processes_share_the_nodes_and_a_worker_takes_over(tmp_path: Path) -> None:
    config = "[cesi]\npoll_interval = 0.3\npoll_processes = 2\n"
    with serve_console(tmp_path, "serve admin pw", config):
        db = tmp_path / "e2e.db"
        # a worker's standby poller may claim first on a slow machine: the poller processes
        # take their shares from it
        owners = wait_for(lambda: (o := lease_owners(db)) and len(o) == SHARDS
                          and len(set(o.values())) == 2
                          and not any(v.endswith(":standby") for v in o.values()) and o,
                          timeout=30, what="two poller processes to hold every share")
        pollers = {pid_of(owner) for owner in owners.values()}
        for pid in pollers:  # the dedicated processes, "poll --share N/2"
            assert command_of(pid)[-4:-2] == [b"poll", b"--share"]
        shares = {pid: sorted(int(name.split(":")[1]) for name, owner in owners.items()
                              if pid_of(owner) == pid) for pid in pollers}
        assert sorted(shares.values()) == [list(range(0, SHARDS, 2)), list(range(1, SHARDS, 2))]
        victim, survivor = sorted(pollers)
        os.kill(victim, signal.SIGKILL)

        def taken_over() -> dict[str, str] | None:
            now = lease_owners(db)
            moved = [now.get(f"poller:{shard}") for shard in shares[victim]]
            return now if all(o and pid_of(o) not in pollers for o in moved) else None

        after = wait_for(taken_over, timeout=15, what="a worker to take the dead share over")
        takers = {pid_of(after[f"poller:{shard}"]) for shard in shares[victim]}
        assert all(b"poll" not in command_of(pid) for pid in takers)  # gunicorn workers
        assert all(after[f"poller:{shard}"].endswith(":standby") for shard in shares[victim])
        assert all(pid_of(after[f"poller:{shard}"]) == survivor for shard in shares[survivor])
    # no control socket at the per-user path another console on the host would take over
    assert "Control socket listening" not in (tmp_path / "gunicorn.log").read_text()
