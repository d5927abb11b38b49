"""Print `tick N` every 0.1 s, flushed, forever: a log that grows while a test watches it."""

import time

number = 0
while True:
    print(f"tick {number}", flush=True)
    number += 1
    time.sleep(0.1)
