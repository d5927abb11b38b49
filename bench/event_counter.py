"""An event listener for the benchmark (supervisor.childutils): counts events and writes the
count to argv[1] every 500 events."""

import sys

from supervisor import childutils

count = 0
while True:
    childutils.listener.wait(sys.stdin, sys.stdout)
    count += 1
    if count % 500 == 0:
        with open(sys.argv[1], "w") as out:
            out.write(str(count))
    childutils.listener.ok(sys.stdout)
