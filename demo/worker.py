"""A demo queue consumer: prints a numbered job every two seconds."""

import itertools
import time

for number in itertools.count():
    print("job", number, flush=True)
    time.sleep(2)
