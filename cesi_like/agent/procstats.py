"""CPU and memory of the programs, from /proc, for the console's resource columns
(`cesi.getProcessStats`). A program counts with everything it started: a `sh -c` wrapper,
gunicorn's workers and a shell script's children are what the program costs."""

from __future__ import annotations

import os
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # user + system time, the process and its descendants
    rss_kb: int
    processes: int


def _table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, CPU ticks, resident pages) for every process, in one pass."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if fields[0] == b"Z":
            continue
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21]))
    return table


def usage(pids: list[int]) -> dict[int, Usage]:
    """Each pid's usage with its descendants' (pids that have exited are left out)."""
    table = _table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found = {}
    for root in pids:
        if root not in table:
            continue
        ticks = pages = count = 0
        todo = [root]
        while todo:
            pid = todo.pop()
            _, cpu, rss = table[pid]
            ticks, pages, count = ticks + cpu, pages + rss, count + 1
            todo.extend(children.get(pid, ()))
        found[root] = Usage(ticks / TICKS, pages * PAGE_KB, count)
    return found
