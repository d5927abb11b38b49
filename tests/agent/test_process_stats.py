"""`cesi.getProcessStats`: what each program costs, its descendants included, read from
/proc; unlisted, like the rest of the cesi namespace, so Supervisor clients see
supervisord's method list."""

from __future__ import annotations

from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy
from tests.support.daemons import StartDaemon, program
from tests.support.procfs import alive, cpu_seconds, descendants
from tests.support.waiting import wait_for

PROGRAMS = f"""
[program:spinner]
command=/bin/sh -c '{program("spin.py")} & exec sleep 1000'
startsecs=0
stopasgroup=true

[program:idle]
command=sleep 1000
startsecs=0

[program:off]
command=sleep 1000
autostart=false
"""


def test_cpu_and_memory_with_descendants(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(PROGRAMS)
    rpc = server_proxy(daemon.url)
    spinner = daemon.info("spinner")["pid"]
    wait_for(lambda: len(descendants(spinner)) >= 1, what="the spinner's child")
    child = next(iter(descendants(spinner)))
    # how much CPU the child gets depends on the machine's load: compare with what it used
    wait_for(lambda: cpu_seconds(child) >= 0.2, what="the spinner's child to use some CPU")
    used_by_child = cpu_seconds(child)
    first = rpc.cesi.getProcessStats()
    # a second of the node's own clock between the two answers
    second = wait_for(lambda: (answer := rpc.cesi.getProcessStats())["now"] - first["now"]
                      >= 1.0 and answer, what="a second on the node's clock")
    rows = {p["name"]: p for p in second["processes"]}
    assert set(rows) == {"spinner", "idle"}  # nothing for a process that is not running
    before = {p["name"]: p for p in first["processes"]}
    # the child's time counts for the program: at least what it had used before the first
    # answer, and more by the second (the shell itself only waits)
    assert before["spinner"]["cpu_seconds"] >= used_by_child
    assert rows["spinner"]["cpu_seconds"] > before["spinner"]["cpu_seconds"]
    assert rows["idle"]["cpu_seconds"] < used_by_child
    assert rows["spinner"]["processes"] == 2 and rows["idle"]["processes"] == 1
    assert rows["idle"]["rss_kb"] > 0 and rows["spinner"]["pid"] == spinner
    assert "cesi.getProcessStats" not in rpc.system.listMethods()
    daemon.rpc().stopProcess("spinner")  # stopasgroup: the busy child goes with it
    wait_for(lambda: not alive(child), what="the spinner's child to stop")
