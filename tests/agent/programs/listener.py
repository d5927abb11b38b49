"""An event listener speaking supervisord's protocol; writes each event it gets to a file.

usage: listener.py OUT [fail-first|garbage]
  fail-first  answer FAIL to the first event (it must come again), OK after
  garbage     answer the first event with something that is not a RESULT
"""

import sys

out_path = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else ""
count = 0
while True:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    header = sys.stdin.readline()
    if not header:
        break
    fields = dict(item.split(":", 1) for item in header.split())
    payload = sys.stdin.read(int(fields["len"]))
    with open(out_path, "a") as out:
        out.write(f"{fields['eventname']}|{fields['serial']}|{fields['pool']}|"
                  f"{fields['poolserial']}|{fields['ver']}|{payload!r}\n")
    count += 1
    if count == 1 and mode == "fail-first":
        sys.stdout.write("RESULT 4\nFAIL")
    elif count == 1 and mode == "garbage":
        sys.stdout.write("what protocol?\n")
    else:
        sys.stdout.write("RESULT 2\nOK")
    sys.stdout.flush()
