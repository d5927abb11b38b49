"""A demo cron-like job: a nightly report, run every 20 seconds here so it can be watched."""

import itertools
import random
import time

for run in itertools.count(1):
    print(f"report run {run}: started", flush=True)
    time.sleep(2)
    print(f"report run {run}: {random.randint(1000, 9000)} rows exported", flush=True)
    time.sleep(18)
