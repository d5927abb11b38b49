"""The job runner: each console process that polls (poller processes, and the web workers'
standby pollers) also runs durable jobs (`services/jobs.py`), one at a time.

It asks for a job a few times per poll interval; holding one, it renews the claim from a
heartbeat thread while the job works (a restart may wait a minute on a node), so a live
runner keeps its job and a dead one loses it within `LEASE_INTERVALS` poll intervals, after
which any other runner, on this host or another, resumes it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ...supervisor_rpc.node import NodeClient
from ..services import bulk, jobs, rollouts
from .loop import Background
from .poller import CLAIMS_PER_INTERVAL, LEASE_INTERVALS

log = logging.getLogger("cesi_like.jobs")

KINDS = {rollouts.KIND: rollouts.run, bulk.KIND: bulk.run}


class JobRunner(Background):
    thread_name = "jobs"

    def __init__(self, sessions: sessionmaker[Session], client: NodeClient, interval: float,
                 action_timeout: float, activity_file: str | None = None) -> None:
        self.sessions = sessions
        self.client = client
        self.interval = interval
        self.lease = LEASE_INTERVALS * interval
        self.action_timeout = action_timeout
        self.activity_file = activity_file
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = threading.Event()
        super().__init__()

    def wake(self) -> None:
        """A job was just queued here: ask for it now rather than at the next round."""
        self._wake.set()

    def _wake_up(self) -> None:
        """Stop between steps; a job under way is left to be resumed elsewhere."""
        self._wake.set()

    def _run(self, delay: float) -> None:
        if self._stop.wait(delay):
            return
        while not self._stop.is_set():
            try:
                self.run_once()
            except OperationalError as exc:
                log.warning("job runner: database error, retrying: %s", exc)
            except Exception:
                log.exception("job runner: unexpected error")
            self._wake.wait(self.interval / CLAIMS_PER_INTERVAL)
            self._wake.clear()

    def run_once(self) -> int | None:
        """Claim one job and run it to its end (or until it is lost); its id, or None."""
        with self.sessions() as db:
            job = jobs.claim(db, self.owner, self.lease)
            if job is None:
                return None
            job_id, kind = job.id, job.kind
        log.info("job runner %s: runs job %d (%s)", self.owner, job_id, kind)
        lost = threading.Event()
        done = threading.Event()
        heartbeat = threading.Thread(target=self._renew, args=(job_id, lost, done),
                                     name=f"job-{job_id}-heartbeat", daemon=True)
        heartbeat.start()
        try:
            KINDS[kind](job_id, jobs.Context(
                self.sessions, self.client, self.owner, self.action_timeout,
                self.activity_file, lost.is_set, self._stop))
        except Exception as exc:  # failed for good, not handed from runner to runner
            log.exception("job runner: job %d failed", job_id)
            with self.sessions() as db:
                jobs.save(db, job_id, self.owner, state=jobs.JobState.FAILED.value,
                          message=f"the console failed running it: {exc!r:.300}")
        finally:
            done.set()
            heartbeat.join()
        return job_id

    def _renew(self, job_id: int, lost: threading.Event, done: threading.Event) -> None:
        while not done.wait(self.interval / CLAIMS_PER_INTERVAL):
            try:
                with self.sessions() as db:
                    if not jobs.renew(db, job_id, self.owner, self.lease):
                        lost.set()
                        log.warning("job runner %s: job %d was taken over", self.owner, job_id)
                        return
            except OperationalError as exc:  # keep trying: the claim lasts a while
                log.warning("job runner: could not renew job %d: %s", job_id, exc)
