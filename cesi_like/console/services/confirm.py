"""Typed confirmation of the actions that can hurt: a stop, restart or signal that touches more
than `confirm_over` processes, or any process of an environment marked protected, goes ahead
only with the right name typed (the page asks for it; the API takes `"confirm": NAME` and
answers 428 without it).

The name is the node's when everything touched is on one node, else the environment's that
all the nodes share (a protected one first), else the number of processes. What is touched
is counted from the snapshot, per node, and said in the question."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..storage.models import Node, NodeStatus
from . import ServiceError

GUARDED = frozenset({"stop", "restart", "signal"})


@dataclass(frozen=True)
class Confirmation:
    """What the caller typed (None: nothing), and `confirm_over`."""

    given: str | None
    over: int


@dataclass(frozen=True)
class Question:
    """What an action touches and the name that confirms it."""

    action: str
    touches: dict[str, int]  # node -> processes, as of the last poll
    protected: tuple[str, ...]  # protected environments among the nodes'
    word: str

    @property
    def total(self) -> int:
        return sum(self.touches.values())

    def describe(self) -> str:
        nodes = ", ".join(f"{name}: {count}" for name, count in self.touches.items())
        why = (f" in protected {', '.join(self.protected)}" if self.protected else "")
        return (f"{self.action} touches {self.total} process{'es' * (self.total != 1)}{why} "
                f"({nodes})")


class ConfirmationNeeded(ServiceError):
    """428: the action waits for `question.word` to be typed."""

    status = 428

    def __init__(self, question: Question, given: str | None) -> None:
        wrong = f"{given[:64]!r} is not it. " if given else ""
        super().__init__(f"{wrong}This {question.describe()}: type {question.word} to "
                         f"confirm.", "confirm")
        self.question = question


def _count(status: NodeStatus | None, spec: str) -> int:
    """How many processes `spec` names on a node, from its snapshot (at least one: a process
    the poll has not seen yet is still one)."""
    group, _, name = spec.partition(":")  # *, group:* or group:name (checked by the caller)
    if name and name != "*":
        return 1
    processes = json.loads(status.processes) if status is not None else []
    matched = sum(1 for p in processes if spec == "*" or p["group"] == group)
    return max(matched, 1)


def question(db: Session, action: str, targets: Iterable[tuple[Node, str]],
             over: int) -> Question | None:
    """The question `action` on `targets` must answer first, or None when it needs none."""
    if action not in GUARDED:
        return None
    touches: dict[str, int] = {}
    nodes: dict[str, Node] = {}
    for node, spec in targets:
        nodes[node.name] = node
        touches[node.name] = touches.get(node.name, 0) + _count(db.get(NodeStatus, node.id),
                                                                  spec)
    protected = tuple(sorted({env.name for node in nodes.values()
                              for env in node.environments if env.protected}))
    if not touches or (sum(touches.values()) <= over and not protected):
        return None
    shared = set.intersection(*({env.name for env in node.environments}
                                for node in nodes.values()))
    if len(nodes) == 1:
        word = next(iter(nodes))
    elif shared:
        word = sorted(shared, key=lambda name: (name not in protected, name))[0]
    else:
        word = str(sum(touches.values()))
    return Question(action, dict(sorted(touches.items())), protected, word)


def require(db: Session, action: str, targets: Iterable[tuple[Node, str]],
            confirmation: Confirmation | None) -> None:
    """Go on only when `action` needs no confirmation or the typed name is its name;
    ConfirmationNeeded otherwise. `confirmation` None: asked already (a job's steps)."""
    if confirmation is None:
        return
    asked = question(db, action, targets, confirmation.over)
    if asked is not None and (confirmation.given or "").strip() != asked.word:
        raise ConfirmationNeeded(asked, confirmation.given)
