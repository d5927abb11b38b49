"""Ignore SIGTERM and sleep: only SIGKILL ends it (tests stopwaitsecs)."""

import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(60)
