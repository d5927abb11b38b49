"""Write numbered lines of 100 bytes forever, 30 lines every 10 ms, each line in two writes
(so the daemon's reads often end mid-line): a log whose every line can be checked whole."""

import os
import time

number = 0
while True:
    for _ in range(30):
        line = f"{number:08d} ".encode() + b"x" * 90 + b"\n"
        os.write(1, line[:37])
        os.write(1, line[37:])
        number += 1
    time.sleep(0.01)
