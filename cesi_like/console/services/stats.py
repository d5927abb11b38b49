"""Per-process CPU and memory, live from the node: cesi-agentd answers
`cesi.getProcessStats`; a supervisord cannot, and the answer says so instead of failing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ...supervisor_rpc.node import NodeClient, NodeError
from . import Conflict, NodeFailed, access
from .activity import Actor
from .snapshot import address

NOT_AVAILABLE = ("n/a: this node does not report CPU and memory per process (supervisord); "
                 "cesi-agentd does")


def process_stats(db: Session, client: NodeClient, actor: Actor, node_name: str
                  ) -> dict[str, Any]:
    """`{available, now, processes: [{group, name, pid, cpu_seconds, rss_kb, processes}]}`
    for a node the actor may see, or `{available: false, reason}`."""
    node = access.node(db, actor, node_name)
    if not node.enabled:
        raise Conflict(f"node {node.name} is disabled")
    peer = address(node)
    db.commit()  # no transaction held while the node answers
    try:
        stats = client.process_stats(peer)
    except NodeError as exc:
        raise NodeFailed(f"node {node.name} is {exc.state}: {exc.reason}") from None
    if stats is None:
        return {"available": False, "reason": NOT_AVAILABLE}
    return {"available": True, **stats}
