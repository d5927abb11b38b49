"""Write argv[1] bytes to stdout as lines of argv[2] bytes (a counter, padding, newline), then
write 'DONE\\n' and sleep. Each line is unique, so a test can check nothing was lost or doubled.
With argv[3] == 'stderr' the lines go to stderr instead."""

import os
import sys
import time

total = int(sys.argv[1])
size = int(sys.argv[2])
fd = 2 if len(sys.argv) > 3 and sys.argv[3] == "stderr" else 1
written = 0
number = 0
batch = []
while written < total:
    head = f"{number:010d} "
    line = (head + "x" * max(0, size - len(head) - 1))[: size - 1] + "\n"
    batch.append(line)
    written += len(line)
    number += 1
    if len(batch) >= 64:
        os.write(fd, "".join(batch).encode())
        batch = []
if batch:
    os.write(fd, "".join(batch).encode())
os.write(fd, b"DONE\n")
while True:
    time.sleep(60)
