"""Talking to nodes: XML-RPC calls with a bounded timeout, run concurrently across nodes.

A node answers or it does not within `node_timeout`; either way the caller gets a state and a
reason, never an exception and never a stalled page. Works against cesi-agentd and any
supervisord 3.x/4.x alike.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..agent.client import server_proxy
from .models import Node

ONLINE, UNREACHABLE, AUTH_FAILED, NO_RPC, HUNG, ERROR = (
    "online", "unreachable", "auth-failed", "no-rpc-interface", "hung", "error")


@dataclass(frozen=True)
class Target:
    """What a worker thread needs of a node (ORM objects stay in the request's thread)."""

    name: str
    url: str
    username: str | None
    password: str | None

    @classmethod
    def of(cls, node: Node) -> Target:
        return cls(node.name, node.url, node.username, node.password)


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str = ""
    value: Any = None


def call(target: Target, method: str, *args: Any, timeout: float) -> Outcome:
    """One supervisor.* call; the node's state and the value (or why there is none)."""
    proxy = server_proxy(target.url, target.username, target.password, timeout=timeout)
    try:
        value = getattr(proxy.supervisor, method)(*args)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == 1 and method in ("getState", "getAPIVersion"):
            return Outcome(NO_RPC, "the server has no supervisor RPC interface")
        return Outcome(ONLINE, fault.faultString, fault)
    except xmlrpc.client.ProtocolError as exc:
        if exc.errcode == 401:
            return Outcome(AUTH_FAILED, "the node refused our credentials (HTTP 401)")
        return Outcome(ERROR, f"HTTP {exc.errcode} {exc.errmsg}")
    except TimeoutError:
        return Outcome(HUNG, f"no answer within {timeout:g}s")
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        return Outcome(UNREACHABLE, exc.strerror or str(exc))
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, socket.gaierror):
            return Outcome(UNREACHABLE, f"unknown host: {exc.strerror}")
        return Outcome(UNREACHABLE, str(exc) or type(exc).__name__)
    except (xmlrpc.client.Error, ValueError) as exc:
        return Outcome(ERROR, f"{type(exc).__name__}: {exc}")
    return Outcome(ONLINE, "", value)


def probe(target: Target, timeout: float) -> Outcome:
    """Is the node there and speaking Supervisor's protocol? The value is its version."""
    state = call(target, "getState", timeout=timeout)
    if state.state != ONLINE or isinstance(state.value, xmlrpc.client.Fault):
        return state
    version = call(target, "getSupervisorVersion", timeout=timeout)
    return Outcome(ONLINE, "", version.value if version.state == ONLINE else None)


def probe_all(targets: Iterable[Target], timeout: float) -> dict[str, Outcome]:
    """Probe every node at once: the slowest node bounds the wait, not their sum."""
    items = list(targets)
    if not items:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(items))) as pool:
        outcomes = pool.map(lambda t: probe(t, timeout), items)
        return {target.name: outcome for target, outcome in zip(items, outcomes, strict=True)}
