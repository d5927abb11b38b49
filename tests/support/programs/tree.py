"""Start a grandchild (sleep), write its pid to argv[1], then sleep (tests stopasgroup and
killasgroup). With argv[2] == "ignore-term" the parent ignores SIGTERM, so only the final
SIGKILL ends it."""

import os
import signal
import subprocess
import sys
import time

child = subprocess.Popen(["sleep", "1000"])
if len(sys.argv) > 2 and sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as handle:
    handle.write(str(child.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(60)
