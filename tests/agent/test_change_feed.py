"""The change feed's ring of process state changes: complete or refused, never partial."""

from __future__ import annotations

import pytest

from cesi_like.agent.change_feed import TransitionLog
from cesi_like.supervisor_rpc import schema
from cesi_like.supervisor_rpc.states import ProcessState as S


def test_the_ring_says_when_it_forgot() -> None:
    log = TransitionLog(size=3)
    assert log.since(0) == []
    for change in range(1, 6):
        log.add(change, "g", "p", S.STARTING, S.RUNNING, change, None, True)
    assert log.since(1) is None  # change 2 fell off: a partial list would undercount
    assert [t.change for t in log.since(2) or []] == [3, 4, 5]
    assert log.since(5) == []
    assert log.since(4) is not None and log.since(4)[0].wire() == {  # type: ignore[index]
        "time": log.since(4)[0].time, "group": "g", "name": "p",  # type: ignore[index]
        "from_state": 10, "to_state": 20, "pid": 5, "exitstatus": 0, "expected": True}


GOOD = {"time": 1.5, "group": "g", "name": "p", "from_state": 20, "to_state": 100,
        "pid": 7, "exitstatus": 3, "expected": False}


@pytest.mark.parametrize("bad", [
    {"to_state": 55}, {"expected": 1}, {"pid": "7"}, {"time": -1}, {"group": "x" * 300},
    {"name": None}, {"name": "a:b"}, {"group": ""}])
def test_the_console_checks_every_transition(bad: dict[str, object]) -> None:
    assert schema.transitions([GOOD], "t")[0].exitstatus == 3
    with pytest.raises(schema.BadAnswer):
        schema.transitions([GOOD, {**GOOD, **bad}], "t")
    with pytest.raises(schema.BadAnswer):
        schema.transitions([GOOD] * (schema.MAX_TRANSITIONS + 1), "t")
