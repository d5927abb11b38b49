"""Benchmark load: write TOTAL bytes to stdout, then `DONE\\n`, then sleep.

Modes: `lines` writes numbered 100-byte lines, one write(2) each, as a line-buffered program
does; `64k` writes numbered 64 KiB blocks. The content is deterministic so the benchmark can
check that every byte landed exactly once. The start time goes to argv[3] just before the first
write.
"""

import os
import sys
import time

mode, total, stamp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
size = 100 if mode == "lines" else 65536


def block(number: int) -> bytes:
    head = f"{number:09d} "
    return (head + "x" * (size - len(head) - 1) + "\n").encode()


blocks = [block(n) for n in range(total // size)]
with open(stamp, "w") as handle:
    handle.write(repr(time.time()))
write = os.write
for data in blocks:
    write(1, data)
write(1, b"DONE\n")
while True:
    time.sleep(60)
