"""Samples the CPU and memory of every process on the cesi-agentd nodes this process polls
(`cesi.getProcessStats`, every `stats_interval`), keeps them as history
(`services/samples.py`), judges the memory and CPU rules on each sample
(`services/thresholds.py`), and makes the restarts they ask for, recorded as the rule's
doing. It runs beside the poller, on the nodes of the poller's shards, so each node is sampled
by one console process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ...supervisor_rpc.node import NodeAddress, NodeClient, NodeError
from ..services import actions, samples, thresholds
from ..services.activity import Actor, Result, record
from ..storage.models import Node, utcnow
from .loop import Background

log = logging.getLogger("cesi_like.sampler")
ROLLUP_EVERY = 60.0  # seconds between two rollups of the history


class Sampler(Background):
    thread_name = "sampler"

    def __init__(self, sessions: sessionmaker[Session], client: NodeClient,
                 nodes: Callable[[], list[tuple[int, NodeAddress]]], interval: float = 10.0,
                 action_timeout: float = 60.0, activity_file: str | None = None,
                 concurrency: int = 8, leads: Callable[[], bool] = lambda: True,
                 history_days: float = 30.0) -> None:
        self.sessions = sessions
        self.client = client
        self.nodes = nodes  # the agent nodes to sample now: (id, address)
        self.interval = interval
        self.action_timeout = action_timeout
        self.activity_file = activity_file
        self.watch = thresholds.Watch()
        self.series = samples.Series()
        self.leads = leads  # whether this process rolls the history up (one of them does)
        self.history_days = history_days
        self._rolled = 0.0
        self._last: dict[int, dict[str, Any]] = {}
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sample")
        self.rounds = 0
        super().__init__()

    def _stopped(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, delay: float) -> None:
        if self._stop.wait(delay):
            return
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.sample_now()
                if self.leads() and began - self._rolled >= ROLLUP_EVERY:
                    self._rolled = began
                    self.rollup()
            except Exception:
                log.exception("sampler: unexpected error")
            self._stop.wait(max(self.interval - (time.monotonic() - began), 0.05))

    def sample_now(self) -> int:
        """Sample every agent node once: the calls in parallel, then one transaction that
        stores every sample and judges the rules on it; then the restarts they ask for."""
        targets = self.nodes()
        answers = [(node_id, where, future.result()) for (node_id, where), future in zip(
            targets, [self._pool.submit(self._ask, where) for _, where in targets],
            strict=True)]
        restarts: list[tuple[NodeAddress, thresholds.Restart]] = []
        when = utcnow()
        batch: list[dict[str, Any]] = []
        with self.sessions() as db:
            rules = thresholds.rules(db)
            nodes = {node.id: node for node in db.scalars(select(Node).where(
                Node.id.in_([node_id for node_id, _, stats in answers if stats is not None])))}
            for node_id, where, stats in answers:
                if stats is None:
                    continue
                before, self._last[node_id] = self._last.get(node_id), stats
                node = nodes.get(node_id)
                if node is None:
                    continue
                found = thresholds.readings(before, stats)
                restarts += [(where, r) for r in thresholds.judge(
                    db, node, found, self.watch, time.monotonic(), when, rules)]
                batch += samples.rows(db, self.series, node.name, found, when)
            samples.store(db, batch)
            db.commit()  # the alerts go out; then the remedies
        for where, restart in restarts:
            self._restart(where, restart)
        self.rounds += 1
        return len(targets)

    def rollup(self) -> dict[str, int]:
        """Minute and ten-minute means of the history, and its pruning."""
        with self.sessions() as db:
            return samples.rollup(db, self.history_days)

    def _ask(self, where: NodeAddress) -> dict[str, Any] | None:
        """The node's stats; None from a supervisord or a node in trouble (the poller says
        what is wrong with it)."""
        try:
            return self.client.process_stats(where)
        except NodeError:
            return None

    def _restart(self, where: NodeAddress, restart: thresholds.Restart) -> None:
        target = actions.Target(restart.group, restart.name)
        try:
            outcome = actions.act_on(self.client, where, target, "restart", None,
                                     self.action_timeout)
            result, detail = (Result.OK if outcome.ok else Result.FAILED), "; ".join(
                f"{r['name']}: {r['error']}" for r in outcome.results if not r["ok"])
        except NodeError as exc:
            result, detail = Result.FAILED, f"{exc.state}: {exc.reason}"
        with self.sessions() as db:
            record(db, Actor(None, "", self.activity_file), "process.restart",
                   f"{restart.node}/{target.spec}", result,
                   f"by alert rule {restart.rule}: {restart.why}" + (f"; {detail}" if detail
                                                                     else ""),
                   username=f"(rule {restart.rule})"[:64])
            db.commit()
