"""What every background worker of a console process shares: a daemon thread that runs the
worker's loop after a delay, and a stop that wakes it and waits for it."""

from __future__ import annotations

import threading


class Background:
    """Subclasses give `_run(delay)` (waiting on `self._stop` between rounds) and, when they
    hold more than the thread, `_stopped()` to let it go after the thread ended."""

    thread_name = "worker"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, delay: float = 0.0) -> None:
        """Run in a background thread, beginning after `delay` seconds."""
        self._thread = threading.Thread(target=self._run, args=(delay,),
                                        name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake_up()
        if self._thread is not None:
            self._thread.join(timeout)
        self._stopped()

    def _run(self, delay: float) -> None:
        raise NotImplementedError

    def _wake_up(self) -> None:
        """Cut short whatever the loop waits on besides `_stop`."""

    def _stopped(self) -> None:
        """Let go of what the worker holds once its thread has ended."""
