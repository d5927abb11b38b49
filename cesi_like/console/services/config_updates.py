"""Config updates from the console, as `supervisorctl reread` and `update` do them: the node
rereads its config (`reloadConfig`, which changes nothing yet) and says which groups were
added, changed and removed; the user applies all or some: a removed group is stopped and
removed (kept if a process would not stop), a changed one stopped, removed and added again,
an added one added (and started, if autostart). Same order and the same calls as
supervisorctl, so the node ends where `supervisorctl update` would leave it.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

from sqlalchemy.orm import Session

from ...supervisor_rpc import schema
from ...supervisor_rpc.node import NodeAddress, NodeClient, NodeError
from ...supervisor_rpc.states import Fault
from . import Invalid, NodeFailed, access, redact
from .access import Permission
from .actions import fault_text
from .activity import Actor, Result, record
from .snapshot import address, refresh


def preview(db: Session, client: NodeClient, actor: Actor, node_name: str
            ) -> dict[str, list[str]]:
    """`{added, changed, removed}` group names, as the node's config now reads."""
    node = access.node(db, actor, node_name, Permission.CONFIG, "config.reread")
    peer = address(node)
    db.commit()
    try:
        return _diff(client.call(peer, "supervisor.reloadConfig"))
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == Fault.CANT_REREAD:  # a broken config: say why, change nothing
            raise Invalid(f"node {node.name} cannot reread its config: "
                          f"{redact.quoted(str(fault.faultString)[:1000])}") from None
        raise NodeFailed(f"node {node.name}: {fault_text(fault)}") from None
    except NodeError as exc:
        raise NodeFailed(f"node {node.name} is {exc.state}: {exc.reason}") from None


def apply(db: Session, client: NodeClient, actor: Actor, node_name: str,
          groups: Any = None, recorded: bool = True) -> list[dict[str, Any]]:
    """Apply the reread diff: every change when `groups` is None, else only those groups
    (at least one); `[{group, change, ok, error}]`."""
    node = access.node(db, actor, node_name, Permission.CONFIG, "config.update")
    if groups is not None and (not isinstance(groups, list) or not groups or not all(
            isinstance(group, str) for group in groups)):
        raise Invalid("groups: a list of at least one group name (or leave groups out to "
                      "apply every change)", "groups")
    diff = preview(db, client, actor, node_name)
    wanted = set(groups or ())
    known = {name for names in diff.values() for name in names}
    if wanted - known:
        raise Invalid(f"not added, changed or removed on {node.name}: "
                      f"{', '.join(sorted(wanted - known))[:300]}")
    peer = address(node)
    results: list[dict[str, Any]] = []
    try:
        for change, calls in (("removed", ("stop", "remove")),
                              ("changed", ("stop", "remove", "add")), ("added", ("add",))):
            for group in diff[change]:
                if not wanted or group in wanted:
                    results.append(_change(client, peer, group, change, calls))
    except NodeError as exc:
        results.append({"group": "*", "change": "", "ok": False,
                        "error": f"{exc.state}: {exc.reason}"})
    failed = [f"{r['group']}: {r['error']}" for r in results if not r["ok"]]
    if recorded:
        record(db, actor, "config.update", node.name, Result.FAILED if failed else Result.OK,
               "; ".join([f"{r['change']} {r['group']}" for r in results if r["ok"]]
                         + failed)[:4000])
    refresh(db, client, node)
    db.commit()
    return results


def _change(client: NodeClient, peer: NodeAddress, group: str, change: str,
            calls: tuple[str, ...]) -> dict[str, Any]:
    result = {"group": group, "change": change, "ok": True, "error": None}
    try:
        for call in calls:
            if call == "stop":
                answer = client.call(peer, "supervisor.stopProcessGroup", group, True)
                stuck = [item for item in schema.action_results(answer, "stopProcessGroup")
                         if item["status"] == Fault.FAILED]
                if stuck and change == "removed":  # supervisorctl keeps it too
                    return {**result, "ok": False, "error": "has problems; not removing"}
            elif call == "remove":
                client.call(peer, "supervisor.removeProcessGroup", group)
            else:
                client.call(peer, "supervisor.addProcessGroup", group)
    except xmlrpc.client.Fault as fault:
        return {**result, "ok": False, "error": fault_text(fault)}
    except schema.BadAnswer as bad:
        return {**result, "ok": False, "error": str(bad)}
    return result


def _diff(answer: Any) -> dict[str, list[str]]:
    """reloadConfig's `[[added, changed, removed]]`, checked."""
    if not (isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], list)
            and len(answer[0]) == 3 and all(isinstance(names, list) and all(
                isinstance(name, str) and 0 < len(name) <= schema.MAX_NAME for name in names)
                for names in answer[0])):
        raise NodeFailed("reloadConfig: expected [[added, changed, removed]] group names")
    added, changed, removed = answer[0]
    return {"added": sorted(added), "changed": sorted(changed), "removed": sorted(removed)}

