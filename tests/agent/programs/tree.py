"""Start a grandchild (sleep), write its pid to argv[1], then sleep (tests stopasgroup)."""

import os
import subprocess
import sys
import time

child = subprocess.Popen(["sleep", "1000"])
with open(sys.argv[1] + ".tmp", "w") as handle:
    handle.write(str(child.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(60)
