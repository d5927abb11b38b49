"""The console's client for one Supervisor node (cesi-agentd or supervisord 3.x/4.x).

Every node is untrusted: each call has a total deadline (connect + send + receive), the answer
is size-capped and never decompressed, the XML is parsed without DTDs and with a depth limit,
and every value is type-checked (`schema`). Whatever goes wrong becomes a `NodeError` with a
node state and a reason a person can act on; a Supervisor fault is raised as the
`xmlrpc.client.Fault` it is, since the node did answer.

One `NodeClient` is shared by all threads: its `requests` session keeps TLS contexts and unix
socket connections pooled, and is safe for this use (each call passes its own settings; none
are changed after start).
"""

from __future__ import annotations

import enum
import urllib.parse
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from . import schema
from .deadline import WATCH
from .states import Fault
from .transport import UNIX_SCHEME, UnixAdapter, WatchedAdapter, unix_url
from .wire import dumps_call, parse_response

DEFAULT_MAX_BYTES = 8 * 1024 * 1024

# `verify = false` is an admin's explicit choice for one node, shown on its page; a warning per
# call would only flood the log.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


class NodeState(enum.StrEnum):
    """What the console knows of a node; every state but ONLINE comes with a reason."""

    ONLINE = "online"
    UNREACHABLE = "unreachable"  # refused, no route, unknown host, connect timeout
    AUTH_FAILED = "auth-failed"  # HTTP 401
    NO_RPC = "no-rpc-interface"  # answers, but without the supervisor.* namespace
    HUNG = "hung"  # connected, but no complete answer within the deadline
    ERROR = "error"  # answered something that is not Supervisor's protocol
    DISABLED = "disabled"  # an admin turned polling off (never a network outcome)
    UNKNOWN = "unknown"  # not polled yet (the console's word, never a network outcome)


class NodeError(Exception):
    """A call that produced no usable answer: the node's state and why."""

    def __init__(self, state: NodeState, reason: str) -> None:
        super().__init__(f"{state}: {reason}")
        self.state = state
        self.reason = reason


@dataclass(frozen=True)
class NodeAddress:
    """Where a node is and how to present ourselves; built from the database row."""

    name: str
    url: str
    username: str | None = None
    password: str | None = None
    verify: bool | str = True  # True (system CAs), False (opt-out), or a CA file
    cert: str | None = None  # client certificate (PEM holding cert and key)


@dataclass(frozen=True)
class Snapshot:
    """One poll's worth of a node: what the console shows."""

    version: str
    supervisor_state: int
    processes: list[schema.ProcessInfo]
    token: str = ""  # the change feed's, for the next poll; "" from supervisord
    # the feed's process state changes since the last poll, when the node kept them all
    # (None from supervisord, on a first poll, or when the node forgot some)
    transitions: list[schema.Transition] | None = None
    now: int | None = None  # the node's clock, with transitions (their times are on it)


@dataclass(frozen=True)
class Unchanged:
    """A change-feed answer: since the poll that returned `token`, only the clock moved."""

    version: str
    supervisor_state: int
    now: int
    token: str


def endpoint(url: str) -> str:
    """The /RPC2 URL of a node URL (`http://h:p`, `https://h/prefix/`, `unix:///sock`).
    ValueError with the reason for a URL we must not or cannot use."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path.startswith("/"):
            raise ValueError("unix:// URLs need an absolute socket path")
        return unix_url(path)
    if parts.scheme not in ("http", "https"):
        raise ValueError("url must start with http://, https:// or unix://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL: use the node's username and password")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the URL's port is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the URL's port is not a number from 1 to 65535")
    netloc = parts.netloc if parts.port else f"{parts.netloc}:9001"
    if parts.scheme == "https" and not parts.port:
        netloc = parts.netloc
    base = parts.path.rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, netloc, f"{base}/RPC2", "", ""))


class NodeClient:
    """Calls into nodes, bounded in time and size; shared by every thread of a process."""

    def __init__(self, timeout: float = 3.0, max_bytes: int = DEFAULT_MAX_BYTES,
                 pool_size: int = 4, reveal: Callable[[str], str] | None = None) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        # opens a stored (sealed) password just before it is sent; ValueError if it cannot
        self._reveal = reveal or (lambda stored: stored)
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc from the environment: nodes only
        watched = WatchedAdapter(pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", watched)
        session.mount("https://", watched)
        session.mount(f"{UNIX_SCHEME}://", UnixAdapter(pool_maxsize=pool_size))
        self._session = session

    def close(self) -> None:
        self._session.close()

    def call(self, node: NodeAddress, method: str, *params: Any,
             timeout: float | None = None) -> Any:
        """`method` (e.g. `supervisor.getState`) on `node`. Raises NodeError, or Fault."""
        try:
            url = endpoint(node.url)
        except ValueError as exc:
            raise NodeError(NodeState.ERROR, f"bad URL: {exc}") from None
        body = dumps_call(method, params)
        limit = self.timeout if timeout is None else timeout
        with WATCH.call(limit) as bound:
            try:
                data = self._post(node, url, body, bound.remaining)
            except NodeError:
                if bound.expired:
                    raise NodeError(NodeState.HUNG, f"no answer within {limit:g}s") from None
                raise
            if bound.expired:  # the watch cut the answer short
                raise NodeError(NodeState.HUNG, f"no answer within {limit:g}s")
        try:
            return parse_response(data)
        except ValueError as exc:
            raise NodeError(NodeState.ERROR, str(exc)[:300]) from None

    def _post(self, node: NodeAddress, url: str, body: bytes,
              remaining: Callable[[], float]) -> bytes:
        try:
            password = self._reveal(node.password) if node.password else ""
        except ValueError as exc:
            raise NodeError(NodeState.ERROR, f"the node's password: {exc}") from None
        auth = (node.username, password) if node.username else None
        try:
            response = self._session.post(
                url, data=body, auth=auth, stream=True, allow_redirects=False,
                timeout=(max(remaining(), 0.01), max(remaining(), 0.01)),
                verify=node.verify, cert=node.cert,
                headers={"Content-Type": "text/xml", "Accept-Encoding": "identity",
                         "User-Agent": "cesi-like",
                         # TCP connections serve one call (see transport._OneShot); unix
                         # sockets have no Nagle stall and stay pooled
                         "Connection": "keep-alive" if url.startswith(UNIX_SCHEME) else "close"})
        except requests.exceptions.SSLError as exc:
            raise NodeError(NodeState.ERROR, f"TLS: {_root_cause(exc)}") from None
        except requests.exceptions.ConnectTimeout:
            raise NodeError(NodeState.UNREACHABLE, "no connection within the timeout") from None
        except requests.exceptions.ReadTimeout:
            raise NodeError(NodeState.HUNG, "no answer within the timeout") from None
        except requests.exceptions.ConnectionError as exc:
            raise NodeError(NodeState.UNREACHABLE, _root_cause(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise NodeError(NodeState.ERROR, _root_cause(exc)) from None
        except ValueError as exc:  # urllib3 refuses some URLs itself
            raise NodeError(NodeState.ERROR, f"bad URL: {exc}") from None
        except OSError as exc:  # requests' own check of the CA and certificate files
            raise NodeError(NodeState.ERROR, f"TLS files: {exc}"[:300]) from None
        complete = False
        try:
            data = self._read(response)
            complete = True
            return data
        finally:
            if complete:
                response.raw.release_conn()  # back to its pool (which closes TCP ones)
            else:
                response.close()  # a half-read answer: the connection is useless now

    def _read(self, response: requests.Response) -> bytes:
        if response.status_code == 401:
            raise NodeError(NodeState.AUTH_FAILED, "the node refused our credentials (HTTP 401)")
        if response.status_code != 200:
            reason = (response.reason or "")[:80]
            raise NodeError(NodeState.ERROR, f"HTTP {response.status_code} {reason}".strip())
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise NodeError(NodeState.ERROR, f"refused a {encoding[:20]}-compressed answer")
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise NodeError(NodeState.ERROR, f"answer of {length} bytes is over the "
                            f"{self.max_bytes}-byte limit")
        try:
            data: bytes = response.raw.read(self.max_bytes + 1, decode_content=False)
        except Exception as exc:  # urllib3 wraps socket errors in several of its own
            raise NodeError(NodeState.UNREACHABLE, f"connection lost: {_root_cause(exc)}"
                            ) from None
        if len(data) > self.max_bytes:
            raise NodeError(NodeState.ERROR, f"answer over the {self.max_bytes}-byte limit")
        return data

    # -- what the console asks -------------------------------------------------------------

    def snapshot(self, node: NodeAddress) -> Snapshot:
        """State, version and every process in one round trip (`system.multicall`)."""
        methods = ("getState", "getSupervisorVersion", "getAllProcessInfo")
        calls = [{"methodName": f"supervisor.{name}", "params": []} for name in methods]
        try:
            answers = self.call(node, "system.multicall", calls)
        except xmlrpc.client.Fault as fault:
            raise fault_state(fault) from None
        if not isinstance(answers, list) or len(answers) != 3:
            raise NodeError(NodeState.ERROR, "system.multicall: expected three answers")
        # supervisord answers each call with its bare value, or a fault struct in its place
        for method, answer in zip(methods, answers, strict=True):
            if isinstance(answer, dict) and "faultCode" in answer:
                code = answer["faultCode"] if isinstance(answer["faultCode"], int) else -1
                raise fault_state(xmlrpc.client.Fault(
                    code, str(answer.get("faultString"))[:200]), f"supervisor.{method}")
        values = answers
        try:
            return Snapshot(version=schema.text(values[1], "getSupervisorVersion", 64),
                            supervisor_state=schema.state_code(values[0]),
                            processes=schema.process_list(values[2]))
        except schema.BadAnswer as exc:
            raise NodeError(NodeState.ERROR, str(exc)) from None


    def changes(self, node: NodeAddress, token: str = "") -> Snapshot | Unchanged | None:
        """A poll through cesi-agentd's change feed (`cesi.getChangesSince`): a full
        Snapshot, or Unchanged if nothing but the clock moved since the answer that carried
        `token`. None from a node without the feed (supervisord): poll it with snapshot()."""
        method = "cesi.getChangesSince"
        try:
            answer = self.call(node, method, token)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == Fault.UNKNOWN_METHOD:
                return None
            raise fault_state(fault, method) from None
        try:
            if not isinstance(answer, dict):
                raise schema.BadAnswer(f"{method}: expected a struct")
            current = schema.text(answer.get("token"), f"{method}.token", 64)
            version = schema.text(answer.get("version"), f"{method}.version", 64)
            state = schema.state_code(answer, method)
            now = schema.integer(answer.get("now"), f"{method}.now")
            if token and current == token:
                return Unchanged(version, state, now, current)
            processes = schema.process_list(answer.get("processes"), f"{method}.processes")
            transitions = None if "transitions" not in answer else schema.transitions(
                answer["transitions"], f"{method}.transitions")
        except schema.BadAnswer as exc:
            raise NodeError(NodeState.ERROR, str(exc)) from None
        return Snapshot(version, state, processes, current, transitions, now)


    def process_stats(self, node: NodeAddress) -> dict[str, Any] | None:
        """CPU time and memory per process from cesi-agentd (`cesi.getProcessStats`):
        `{now, processes: [{group, name, pid, cpu_seconds, rss_kb, processes}]}`, checked.
        None from a node without it (supervisord)."""
        method = "cesi.getProcessStats"
        try:
            answer = self.call(node, method)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == Fault.UNKNOWN_METHOD:
                return None
            raise fault_state(fault, method) from None
        try:
            return schema.process_stats(answer, method)
        except schema.BadAnswer as exc:
            raise NodeError(NodeState.ERROR, str(exc)) from None


def fault_state(fault: xmlrpc.client.Fault, method: str = "system.multicall") -> NodeError:
    """A fault where a working node answers with a value: UNKNOWN_METHOD means no supervisor
    interface; anything else is an error state with the fault's words."""
    if fault.faultCode == Fault.UNKNOWN_METHOD:
        return NodeError(NodeState.NO_RPC, "the node has no supervisor RPC interface "
                         f"({method}: UNKNOWN_METHOD)")
    return NodeError(NodeState.ERROR, f"{method}: fault {fault.faultCode} "
                     f"{str(fault.faultString)[:200]}")


def _root_cause(exc: BaseException) -> str:
    """The innermost error's message, short: what a person can act on."""
    seen = exc
    while True:
        inner = seen.__cause__ or seen.__context__
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if inner is None or inner is seen:
            break
        seen = inner
    text = getattr(seen, "strerror", None) or getattr(seen, "reason", None) or str(seen)
    return str(text)[:200] or type(seen).__name__
