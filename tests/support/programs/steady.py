"""Write numbered 100-byte lines to stdout at argv[1] bytes a second, in batches every 10 ms,
forever: a log whose lines say whether a reader lost or doubled any."""

import os
import sys
import time

rate = int(sys.argv[1])
per_batch = max(1, rate // 100 // 100)  # lines per 10 ms
number = 0
next_batch = time.monotonic()
while True:
    lines = []
    for _ in range(per_batch):
        lines.append(f"{number:010d} ".encode() + b"y" * 88 + b"\n")
        number += 1
    os.write(1, b"".join(lines))
    next_batch += 0.01
    time.sleep(max(0.0, next_batch - time.monotonic()))
