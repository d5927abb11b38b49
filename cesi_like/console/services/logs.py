"""Logs on a node: a process's stdout/stderr tailed by offset (the browser follows new bytes) or
downloaded whole (read in chunks, so the console never holds the file in memory), and the
node's own main log for admins."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from ...supervisor_rpc.node import NodeAddress, NodeClient, NodeError
from . import Invalid, NodeFailed, NotFound, access, validate
from .access import Permission
from .actions import Target, fault_text
from .activity import Actor
from .snapshot import address

STREAMS = ("stdout", "stderr")
MAX_TAIL = 1024 * 1024  # bytes one tail request may ask for
CHUNK = 256 * 1024  # bytes per read while downloading (less if the node answer cap is small)


def _process(spec: str) -> str:
    target = Target.parse(spec)
    if target.group is None or target.name is None:
        raise Invalid("logs belong to one process: use group:name")
    return target.spec


def _stream(stream: str) -> str:
    if stream not in STREAMS:
        raise Invalid("stream must be stdout or stderr")
    return stream.capitalize()


def locate(db: Session, actor: Actor, node_name: str,
           permission: Permission = Permission.FLEET) -> NodeAddress:
    """The node's address if the actor may read its process logs (every role may, within
    scope) or, with `Permission.MAIN_LOG`, its main log (admins: it names every program,
    command failure and path on the host; a refusal is recorded)."""
    node = access.node(db, actor, node_name, permission, "node.main-log"
                       if permission == Permission.MAIN_LOG else "denied")
    if not node.enabled:
        raise NotFound(f"node {node.name} is disabled")
    return address(node)


def main_tail(client: NodeClient, peer: NodeAddress, length: Any = 64 * 1024) -> dict[str, Any]:
    """`{data}`: the last `length` bytes of the node's main log (`readLog` from the end).
    Supervisor has no offset-following call for the main log, so a reader re-reads the tail."""
    size = validate.whole(length, "length", 1, MAX_TAIL)
    data = _window(client, peer, "supervisor.readLog", lambda more: (-(size + more), 0))
    if not isinstance(data, str):
        raise NodeFailed(f"node {peer.name} is error: supervisor.readLog: malformed answer")
    return {"data": data}


CUT = 3  # a UTF-8 character has at most 4 bytes: a window cuts one by at most 3


def _window(client: NodeClient, peer: NodeAddress, method: str,
            params: Callable[[int], tuple[Any, ...]]) -> Any:
    """A log method's answer for the window `params(0)` gives; its fault (no such process, no
    log file) is a NotFound. Supervisor answers HTTP 500 for a window that cuts a UTF-8
    character (rather than invent one): the window is tried again up to CUT bytes wider,
    `params(more)` saying which way it grows."""
    for more in range(CUT + 1):
        try:
            return client.call(peer, method, *params(more))
        except xmlrpc.client.Fault as fault:
            raise NotFound(fault_text(fault)) from None
        except NodeError as exc:
            if more == CUT or not exc.reason.startswith("HTTP 500"):
                raise NodeFailed(f"node {peer.name} is {exc.state}: {exc.reason}") from None
    raise AssertionError("not reached")


def tail(client: NodeClient, peer: NodeAddress, spec: str, stream: str = "stdout",
         offset: Any = 0, length: Any = 64 * 1024) -> dict[str, Any]:
    """`{data, offset, overflow}` as Supervisor's tailProcess*Log gives it: ask again with the
    returned offset to follow new bytes; overflow means bytes were skipped."""
    name = _process(spec)
    method = f"supervisor.tailProcess{_stream(stream)}Log"
    start = validate.whole(offset, "offset", 0, 2**31 - 1)
    size = validate.whole(length, "length", 1, MAX_TAIL)
    answer = _window(client, peer, method, lambda more: (name, start, size + more))
    if (not isinstance(answer, list) or len(answer) != 3 or not isinstance(answer[0], str)
            or not isinstance(answer[1], int) or isinstance(answer[1], bool)
            or not isinstance(answer[2], bool)):
        raise NodeFailed(f"node {peer.name} is error: {method}: malformed answer")
    data, end, overflow = answer
    if not overflow:
        # Supervisor answers with the last `length` bytes of the file even when some of them
        # precede `offset`; a follower wants only what came after it.
        raw = data.encode("utf-8", "surrogateescape")
        fresh = max(0, end - start)
        if fresh < len(raw):  # `start` is where the last answer ended: a character's start
            data = raw[len(raw) - fresh:].decode("utf-8", "replace")
    return {"data": data, "offset": end, "overflow": overflow}


def download(client: NodeClient, peer: NodeAddress, spec: str,
             stream: str = "stdout") -> Iterator[bytes]:
    """The whole current log file, chunk by chunk. The first chunk is read before this
    returns, so a missing process or a dead node is an error, not a truncated download."""
    name = _process(spec)
    method = f"supervisor.readProcess{_stream(stream)}Log"
    size = tail(client, peer, spec, stream, 0, 1)["offset"]
    # XML escaping can grow text (`&` -> `&amp;`): leave room under the answer cap
    chunk = max(1024, min(CHUNK, client.max_bytes // 8))

    def read(offset: int) -> str:  # the window ends where a character does
        data = _window(client, peer, method, lambda fewer: (name, offset, chunk - fewer))
        if not isinstance(data, str):
            raise NodeFailed(f"node {peer.name} is error: {method}: malformed answer")
        return data

    first = read(0)

    def chunks() -> Iterator[bytes]:
        data, offset = first, 0
        while data:
            encoded = data.encode("utf-8", "surrogateescape")
            yield encoded
            offset += len(encoded)
            if offset >= size:
                return
            try:
                data = read(offset)
            except (NotFound, NodeFailed):
                return  # the node went away mid-download: the file ends here

    return chunks()
