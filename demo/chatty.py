"""A demo service that logs a lot: request lines on stdout, warnings and errors on stderr."""

import itertools
import random
import sys
import time

PATHS = ("/api/orders", "/api/users/42", "/healthz", "/api/search?q=shoes", "/static/app.js")
for number in itertools.count():
    path = random.choice(PATHS)
    status = random.choices((200, 201, 304, 404, 500), (70, 8, 12, 7, 3))[0]
    print(f"{time.strftime('%H:%M:%S')} GET {path} {status} {random.randint(2, 400)}ms",
          flush=True)
    if status == 500:
        print(f"ERROR request {number}: upstream timed out for {path}", file=sys.stderr,
              flush=True)
    elif number % 25 == 0:
        print(f"WARN slow query on {path} ({random.randint(500, 2000)}ms)", file=sys.stderr,
              flush=True)
    time.sleep(0.2)
