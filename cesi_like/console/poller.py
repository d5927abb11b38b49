"""The poller: keeps every enabled node's snapshot fresh, so no page or API call waits on a node.

Every console process (each gunicorn worker, each `cesi-like poll`) runs one, but only the
holder of the `poller` lease in the database polls; the others wait and take over within a few
intervals if the holder dies. Each node runs on its own schedule: a healthy node is polled every
`poll_interval`; a failing one backs off (up to `MAX_BACKOFF` intervals) so hung nodes cannot
eat the thread pool that healthy nodes need. Results are written by the poller's own thread in
one transaction per batch, so SQLite sees one writer, not one per node.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..supervisor_rpc.node import NodeAddress, NodeClient, NodeError, Snapshot
from .models import Lease, Node, utcnow
from .services.fleet import address, store_poll

log = logging.getLogger("cesi_like.poller")

LEASE = "poller"
MAX_BACKOFF = 8  # intervals between polls of a node that keeps failing


def acquire_lease(db: Session, name: str, owner: str, seconds: float) -> bool:
    """Take or renew `name` for `seconds`: one atomic statement, so two workers (or hosts)
    racing for it cannot both win."""
    now = utcnow()
    expires = now + datetime.timedelta(seconds=seconds)
    taken = db.execute(update(Lease).where(
        Lease.name == name, (Lease.owner == owner) | (Lease.expires < now)
    ).values(owner=owner, expires=expires)).rowcount  # type: ignore[attr-defined]
    if not taken:
        if db.get(Lease, name) is not None:
            db.rollback()
            return False
        try:
            db.execute(insert(Lease).values(name=name, owner=owner, expires=expires))
        except IntegrityError:  # someone created it first: theirs
            db.rollback()
            return False
    db.commit()
    return True


def release_lease(db: Session, name: str, owner: str) -> None:
    db.execute(update(Lease).where(Lease.name == name, Lease.owner == owner)
               .values(expires=utcnow() - datetime.timedelta(seconds=1)))
    db.commit()


@dataclass
class _Schedule:
    address: NodeAddress
    due: float = 0.0
    failures: int = 0
    running: bool = False


@dataclass(frozen=True)
class _Result:
    node_id: int
    name: str
    outcome: Snapshot | NodeError
    finished: datetime.datetime
    milliseconds: int


class Poller:
    """Polls every enabled node on its own schedule while it holds the lease."""

    def __init__(self, sessions: sessionmaker[Session], client: NodeClient,
                 interval: float = 2.0, concurrency: int = 32) -> None:
        self.sessions = sessions
        self.client = client
        self.interval = interval
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._pool = ThreadPoolExecutor(max_workers=concurrency,
                                        thread_name_prefix="node-poll")
        self._results: queue.SimpleQueue[_Result] = queue.SimpleQueue()
        self._nodes: dict[int, _Schedule] = {}
        self._nodes_loaded = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.leader = False
        self.rounds = 0  # polls written, for tests and the log

    # -- running ---------------------------------------------------------------------------

    def start(self, delay: float = 0.0) -> None:
        """Poll in a background thread; try for the lease after `delay` seconds."""
        self._thread = threading.Thread(target=self._run, args=(delay,), name="poller",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.leader:
            with self.sessions() as db:
                release_lease(db, LEASE, self.owner)
            self.leader = False

    def _run(self, delay: float) -> None:
        lease_checked = 0.0
        if self._stop.wait(delay):
            return
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now - lease_checked >= self.interval:
                    lease_checked = now
                    self._claim()
                if self.leader:
                    self._tick(now)
                self._write()
            except OperationalError as exc:  # a busy or vanished database: try again
                log.warning("poller: database error, retrying: %s", exc)
            except Exception:
                log.exception("poller: unexpected error")
            self._stop.wait(self._sleep())

    def _claim(self) -> None:
        with self.sessions() as db:
            held = acquire_lease(db, LEASE, self.owner, 3 * self.interval + 1)
        if held != self.leader:
            log.info("poller %s: %s the lease", self.owner, "took" if held else "lost")
            self.leader = held
            self._nodes_loaded = 0.0

    def _sleep(self) -> float:
        if not self.leader:
            return self.interval
        waiting = [s.due for s in self._nodes.values() if not s.running]
        soonest = min(waiting, default=time.monotonic() + self.interval)
        return min(max(soonest - time.monotonic(), 0.02), 0.25)

    # -- polling ---------------------------------------------------------------------------

    def _load_nodes(self) -> None:
        with self.sessions() as db:
            rows = db.scalars(select(Node).where(Node.enabled.is_(True))).all()
            fresh = {node.id: address(node) for node in rows}
        for node_id in list(self._nodes):
            if node_id not in fresh:
                del self._nodes[node_id]
        for node_id, where in fresh.items():
            schedule = self._nodes.get(node_id)
            if schedule is None:
                self._nodes[node_id] = _Schedule(where)
            elif schedule.address != where:  # edited by an admin: poll the new address now
                schedule.address, schedule.due, schedule.failures = where, 0.0, 0

    def _tick(self, now: float) -> None:
        if now - self._nodes_loaded >= self.interval:
            self._nodes_loaded = now
            self._load_nodes()
        for node_id, schedule in self._nodes.items():
            if not schedule.running and schedule.due <= now:
                schedule.running = True
                future = self._pool.submit(self._poll, node_id, schedule.address)
                future.add_done_callback(self._done_callback(schedule))

    def _done_callback(self, schedule: _Schedule) -> Callable[[Future[_Result]], None]:
        def done(future: Future[_Result]) -> None:
            schedule.running = False
            if future.cancelled() or future.exception() is not None:
                schedule.due = time.monotonic() + self.interval
                return
            result = future.result()
            failed = isinstance(result.outcome, NodeError)
            schedule.failures = schedule.failures + 1 if failed else 0
            backoff = min(2 ** max(schedule.failures - 1, 0), MAX_BACKOFF) if failed else 1
            schedule.due = time.monotonic() + self.interval * backoff
            self._results.put(result)

        return done

    def _poll(self, node_id: int, where: NodeAddress) -> _Result:
        began = time.monotonic()
        outcome: Snapshot | NodeError
        try:
            outcome = self.client.snapshot(where)
        except NodeError as exc:
            outcome = exc
        elapsed = int((time.monotonic() - began) * 1000)
        return _Result(node_id, where.name, outcome, utcnow(), elapsed)

    def _write(self) -> None:
        batch: list[_Result] = []
        while True:
            try:
                batch.append(self._results.get_nowait())
            except queue.Empty:
                break
        if batch:
            write_results(self.sessions, batch)
            self.rounds += len(batch)

    def poll_now(self) -> int:
        """Poll every enabled node once, in parallel, and store the results (CLI, tests)."""
        self._load_nodes()
        futures = [self._pool.submit(self._poll, node_id, s.address)
                   for node_id, s in self._nodes.items()]
        results = [future.result() for future in futures]
        write_results(self.sessions, results)
        return len(results)


def write_results(sessions: sessionmaker[Session], batch: list[_Result]) -> None:
    """Store a batch in one transaction; a node deleted meanwhile is skipped."""
    for attempt in range(5):
        try:
            with sessions() as db:
                alive = set(db.scalars(select(Node.id).where(
                    Node.id.in_([r.node_id for r in batch]))))
                for result in batch:
                    if result.node_id in alive:
                        store_poll(db, result.node_id, result.name, result.outcome,
                                   result.finished, result.milliseconds)
                db.commit()
            return
        except OperationalError:  # SQLite: another writer got in between; go again
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
