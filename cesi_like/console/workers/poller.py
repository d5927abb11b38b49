"""The poller: keeps every enabled node's snapshot fresh, so no page or API call waits on a node.

Nodes are split by id into `SHARDS` shares, each with a lease in the database (`poller:K`).
Every console process (each gunicorn worker, each `cesi-like poll`) runs a poller, but a share
is polled only by the holder of its lease; the others wait and take a share over within a few
intervals if its holder dies. One poller may hold every share; several poller processes (on
one host, to use more than one core, or on several hosts) each hold some.

Each node runs on its own schedule: a healthy node is polled every `poll_interval`; a failing
one backs off (up to `MAX_BACKOFF` intervals) so hung nodes cannot eat the thread pool that
healthy nodes need. Results are written by the poller's own thread in one transaction per
batch, so SQLite sees one writer per poller, not one per node.

A cesi-agentd node is polled through its change feed: after the first full answer, a poll
sends the token of the last one and, when nothing but the clock moved, gets a few bytes back
instead of every process (most polls, and a third of the CPU of a full one). A node without the
feed (supervisord) is polled in full; after any failure a node is asked afresh which it is.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ...supervisor_rpc.node import NodeAddress, NodeClient, NodeError
from ..services import history, snapshot
from ..services.snapshot import Outcome, Poll, address
from ..storage.models import Lease, Node, NodeStatus, utcnow
from .loop import Background

log = logging.getLogger("cesi_like.poller")

SHARDS = 16  # fixed, so pollers configured differently still split the same shares
MAX_BACKOFF = 8  # intervals between polls of a node that keeps failing
# A lease lasts LEASE_INTERVALS poll intervals and every poller asks for its shares
# CLAIMS_PER_INTERVAL times an interval: the holder renews five times before its lease can
# lapse, and the shares of a poller (or a host) that died are taken over at most 1.75
# intervals after it died. A claim is two small statements, so this costs the database
# little.
LEASE_INTERVALS = 1.5
PRUNE_EVERY = 3600.0  # seconds between two prunes of old history
# ends the owner of a standby poller (a web worker's): a dedicated poller takes its shares
# from it, so one that started late, on a slow host, still gets them
STANDBY = ":standby"
CLAIMS_PER_INTERVAL = 4


def lease_name(shard: int) -> str:
    return f"poller:{shard}"


def shares(index: int, processes: int) -> frozenset[int]:
    """The shards the `index`-th of `processes` poller processes claims first."""
    if not 0 <= index < processes <= SHARDS:
        raise ValueError(f"poller {index} of {processes}: need 0 <= index < processes <= "
                         f"{SHARDS}")
    return frozenset(range(index, SHARDS, processes))


def acquire_leases(db: Session, names: list[str], owner: str, seconds: float,
                   over_standby: bool = False) -> set[str]:
    """Take or renew, for `seconds`, each of `names` that is free, expired or already ours
    (and, with `over_standby`, held by a standby poller); the names now held. One atomic
    UPDATE, so two pollers (or hosts) racing for a lease cannot both win it."""
    now = utcnow()
    known = set(db.scalars(select(Lease.name).where(Lease.name.in_(names))))
    for name in names:
        if name not in known:  # created once, already expired: free for the UPDATE below
            try:
                db.execute(insert(Lease).values(name=name, owner="",
                                                expires=now - datetime.timedelta(seconds=1)))
                db.commit()
            except IntegrityError:  # another poller created it first: fine
                db.rollback()
    free = (Lease.owner == owner) | (Lease.expires < now)
    if over_standby:
        free |= Lease.owner.like(f"%{STANDBY}")
    taken = db.scalars(update(Lease).where(Lease.name.in_(names), free).values(
        owner=owner, expires=now + datetime.timedelta(seconds=seconds)
    ).returning(Lease.name)).all()
    db.commit()
    return set(taken)


def release_leases(db: Session, owner: str) -> None:
    """Hand every lease of `owner` over at once (a clean exit)."""
    db.execute(update(Lease).where(Lease.owner == owner)
               .values(expires=utcnow() - datetime.timedelta(seconds=1)))
    db.commit()


@dataclass
class _Schedule:
    address: NodeAddress
    due: float = 0.0
    failures: int = 0
    running: bool = False
    feed: bool | None = None  # has the change feed; None: not known (ask on the next poll)
    token: str = ""  # the feed's token of the last stored answer

    def forget_feed(self) -> None:
        """The next poll asks afresh and gets a full answer."""
        self.feed, self.token = None, ""

    def remember(self, outcome: Outcome) -> None:
        """What the next poll asks, after this one's `outcome`."""
        if isinstance(outcome, NodeError):
            self.forget_feed()
        else:
            self.feed, self.token = bool(outcome.token), outcome.token


class Poller(Background):
    """Polls the enabled nodes of the shards whose leases it holds, each on its own schedule."""

    thread_name = "poller"

    def __init__(self, sessions: sessionmaker[Session], client: NodeClient,
                 interval: float = 2.0, concurrency: int = 32,
                 shards: frozenset[int] = frozenset(range(SHARDS)),
                 history_days: float = 30.0, standby: bool = False) -> None:
        self.sessions = sessions
        self.client = client
        self.interval = interval
        self.shards = shards  # the shares it may claim
        self.held: frozenset[int] = frozenset()
        self.owner = (f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
                      + (STANDBY if standby else ""))
        self.standby = standby
        self._pool = ThreadPoolExecutor(max_workers=concurrency,
                                        thread_name_prefix="node-poll")
        self._results: queue.SimpleQueue[Poll] = queue.SimpleQueue()
        self._nodes: dict[int, _Schedule] = {}
        self._nodes_loaded = 0.0
        self.rounds = 0  # polls written, for tests and the log
        self.history_days = history_days
        self._pruned = 0.0
        super().__init__()

    # -- running ---------------------------------------------------------------------------

    def _stopped(self) -> None:
        """The pool goes, and the leases are handed over at once on a clean exit."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.held:
            with self.sessions() as db:
                release_leases(db, self.owner)
            self.held = frozenset()

    @property
    def leader(self) -> bool:
        """Whether it polls anything now."""
        return bool(self.held)

    def _run(self, delay: float) -> None:
        lease_checked = 0.0
        if self._stop.wait(delay):
            return
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now - lease_checked >= self.interval / CLAIMS_PER_INTERVAL:
                    lease_checked = now
                    self._claim()
                if self.leader:
                    self._tick(now)
                self._write()
                if 0 in self.held and now - self._pruned >= PRUNE_EVERY:
                    self._pruned = now  # one poller prunes: the holder of share 0
                    self.prune()
            except OperationalError as exc:  # a busy or vanished database: try again
                log.warning("poller: database error, retrying: %s", exc)
            except Exception:
                log.exception("poller: unexpected error")
            self._stop.wait(self._sleep())

    def _claim(self) -> None:
        names = {lease_name(shard): shard for shard in sorted(self.shards)}
        with self.sessions() as db:
            taken = acquire_leases(db, list(names), self.owner,
                                   LEASE_INTERVALS * self.interval,
                                   over_standby=not self.standby)
        held = frozenset(names[name] for name in taken)
        if held != self.held:
            log.info("poller %s: polls shards %s of %d", self.owner,
                     ",".join(map(str, sorted(held))) or "none", SHARDS)
            # nodes of lost shards are dropped, those of new ones start afresh (full polls)
            self.held = held
            self._nodes_loaded = 0.0

    def _sleep(self) -> float:
        if not self.leader:
            return self.interval / CLAIMS_PER_INTERVAL
        waiting = [s.due for s in self._nodes.values() if not s.running]
        soonest = min(waiting, default=time.monotonic() + self.interval)
        return min(max(soonest - time.monotonic(), 0.02), 0.25)

    # -- polling ---------------------------------------------------------------------------

    def _load_nodes(self, every_shard: bool = False) -> None:
        query = select(Node).where(Node.enabled.is_(True))
        if not every_shard:
            query = query.where((Node.id % SHARDS).in_(sorted(self.held)))
        with self.sessions() as db:
            fresh = {node.id: address(node) for node in db.scalars(query)}
            new = [node_id for node_id in fresh if node_id not in self._nodes]
            # a node new to this poller (a start, a takeover) goes on from the stored token
            tokens = {node_id: token for node_id, token in db.execute(
                select(NodeStatus.node_id, NodeStatus.feed_token).where(
                    NodeStatus.feed_token.is_not(None)))} if new else {}
        for node_id in list(self._nodes):
            if node_id not in fresh:
                del self._nodes[node_id]
        for node_id, where in fresh.items():
            schedule = self._nodes.get(node_id)
            if schedule is None:
                self._nodes[node_id] = _Schedule(where, token=tokens.get(node_id) or "")
            elif schedule.address != where:  # edited by an admin: poll the new address now
                schedule.address, schedule.due, schedule.failures = where, 0.0, 0
                schedule.forget_feed()

    def _tick(self, now: float) -> None:
        if now - self._nodes_loaded >= self.interval:
            self._nodes_loaded = now
            self._load_nodes()
        for node_id, schedule in self._nodes.items():
            if not schedule.running and schedule.due <= now:
                schedule.running = True
                future = self._pool.submit(self._poll, node_id, schedule)
                future.add_done_callback(self._done_callback(schedule))

    def _done_callback(self, schedule: _Schedule) -> Callable[[Future[Poll]], None]:
        def done(future: Future[Poll]) -> None:
            schedule.running = False
            if future.cancelled() or future.exception() is not None:
                schedule.due = time.monotonic() + self.interval
                return
            result = future.result()
            failed = isinstance(result.outcome, NodeError)
            schedule.remember(result.outcome)  # taken back by _write if it cannot be stored
            schedule.failures = schedule.failures + 1 if failed else 0
            backoff = min(2 ** max(schedule.failures - 1, 0), MAX_BACKOFF) if failed else 1
            schedule.due = time.monotonic() + self.interval * backoff
            self._results.put(result)

        return done

    def _poll(self, node_id: int, schedule: _Schedule) -> Poll:
        return snapshot.ask(self.client, node_id, schedule.address, schedule.token,
                            schedule.feed)

    def _write(self) -> None:
        batch: list[Poll] = []
        while True:
            try:
                batch.append(self._results.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        renew: set[int] = set()
        try:
            renew = write_results(self.sessions, batch)
        except Exception:
            renew = {result.node_id for result in batch}
            raise
        finally:
            for node_id in renew:  # what the feed's token stands for is not stored
                if node_id in self._nodes:
                    self._nodes[node_id].forget_feed()
        self.rounds += len(batch)

    def prune(self) -> dict[str, int]:
        """Drop history older than `history_days` (state changes, finished jobs)."""
        with self.sessions() as db:
            removed = history.prune(db, self.history_days)
        if any(removed.values()):
            log.info("poller: pruned history older than %g days: %s", self.history_days,
                     removed)
        return removed

    def agent_nodes(self) -> list[tuple[int, NodeAddress]]:
        """The nodes this poller polls that answer cesi-agentd's change feed (so its stats
        too): what the sampler samples."""
        return [(node_id, schedule.address) for node_id, schedule in list(self._nodes.items())
                if schedule.feed]

    def uses_feed(self, node_id: int) -> bool | None:
        """Whether this poller polls the node through the change feed (None: not known)."""
        schedule = self._nodes.get(node_id)
        return None if schedule is None else schedule.feed

    def poll_now(self) -> int:
        """Poll every enabled node once, in parallel, and store the results (CLI, tests)."""
        self._load_nodes(every_shard=True)
        futures = [self._pool.submit(self._poll, node_id, schedule)
                   for node_id, schedule in self._nodes.items()]
        results = [future.result() for future in futures]
        for result in results:
            self._nodes[result.node_id].remember(result.outcome)
        for node_id in write_results(self.sessions, results):
            self._nodes[node_id].forget_feed()
        return len(results)


def write_results(sessions: sessionmaker[Session], batch: list[Poll]) -> set[int]:
    """Store a batch in one transaction through the one snapshot path (which judges the
    alert rules; they go out at the commit). Returns the nodes whose Unchanged answer found
    no stored snapshot to renew."""
    for attempt in range(4):
        try:
            return _store(sessions, batch)
        except OperationalError:  # SQLite: another writer got in between; go again
            time.sleep(0.05 * (attempt + 1))
    return _store(sessions, batch)  # the last try: its error goes to the caller


def _store(sessions: sessionmaker[Session], batch: list[Poll]) -> set[int]:
    with sessions() as db:
        renew = snapshot.store(db, batch)
        db.commit()
    return renew
