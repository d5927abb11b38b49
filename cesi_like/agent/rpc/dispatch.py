"""XML-RPC over our HTTP transport: safe parsing, dispatch, faults, and the `system.*` namespace.

Requests are parsed by `supervisor_rpc.wire` (no DTDs, no entities, a nesting limit); the body
size is capped by the transport. Responses are written by a small
marshaller of our own (the stdlib's is the bottleneck of getAllProcessInfo on a big host).
Methods are coroutines so that `wait=True` calls park only their caller while the loop keeps
serving everyone else.
"""

from __future__ import annotations

import inspect
import re
import xmlrpc.client
from collections.abc import Awaitable, Callable
from typing import Any

from ...supervisor_rpc.states import Fault
from ...supervisor_rpc.wire import parse_request
from ..loglevel import LogLevel
from ..logs import MainLog

Method = Callable[..., Awaitable[Any]]


class ServerError(Exception):
    """A call supervisord answers with HTTP 500 rather than a fault (its method raised), and
    clients tell apart from a fault: a log window that cuts a UTF-8 character, say."""


class RPCError(Exception):
    """A Supervisor fault: `faultString` is `NAME` or `NAME: extra`."""

    def __init__(self, code: Fault, extra: object = None) -> None:
        self.code = code
        self.text = code.name if extra is None else f"{code.name}: {extra}"
        super().__init__(self.text)


_MAX_INT = 2**31 - 1


def _escape(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _marshal(value: Any, out: list[str]) -> None:
    """Append the XML-RPC <value> of `value`; the same XML the stdlib writes, several times
    faster, because getAllProcessInfo of a big host is thousands of values."""
    kind = type(value)
    if kind is str:
        out.append(f"<value><string>{_escape(value)}</string></value>")
    elif kind is bool:
        out.append("<value><boolean>1</boolean></value>" if value
                   else "<value><boolean>0</boolean></value>")
    elif kind is int:
        if not -_MAX_INT - 1 <= value <= _MAX_INT:
            raise OverflowError("int exceeds XML-RPC limits")
        out.append(f"<value><int>{value}</int></value>")
    elif kind is dict:
        # one string per struct: a big answer (getAllProcessInfo) keeps a few hundred strings
        # alive until the join instead of tens of thousands of small ones, whose memory the
        # allocator then keeps
        inner = ["<value><struct>"]
        for key, item in value.items():
            inner.append(f"<member><name>{_escape(key)}</name>")
            _marshal(item, inner)
            inner.append("</member>")
        inner.append("</struct></value>")
        out.append("".join(inner))
    elif kind is list or kind is tuple:
        out.append("<value><array><data>")
        for item in value:
            _marshal(item, out)
        out.append("</data></array></value>")
    elif kind is float:
        out.append(f"<value><double>{value!r}</double></value>")
    else:  # anything rarer (Binary, DateTime, subclasses): the stdlib knows how
        out.append(xmlrpc.client.dumps((value,)).split("<param>", 1)[1].rsplit("</param>", 1)[0])


def dump_response(value: Any) -> bytes:
    out = ["<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"]
    _marshal(value, out)
    out.append("\n</param>\n</params>\n</methodResponse>\n")
    return "".join(out).encode("utf-8")


def dump_fault(code: int, text: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(int(code), text)).encode("utf-8")


_TAG_RE = re.compile(r"@(param|return)\s+(\S+)(?:\s+(\S+))?")


def _signature(doc: str) -> list[str] | None:
    """[return type, param types...] from `@return type` / `@param type name` docstring tags."""
    params: list[str] = []
    returns: str | None = None
    for kind, type_name, _name in _TAG_RE.findall(doc):
        if kind == "param":
            params.append(type_name)
        else:
            returns = type_name
    if returns is None:
        return None
    return [returns, *params]


class Dispatcher:
    """Maps `namespace.method` names to coroutines and answers the `system.*` methods."""

    def __init__(self, log: MainLog | None = None) -> None:
        self.log = log  # for supervisord's trace lines, one per request
        self.methods: dict[str, Method] = {}
        self._unlisted: set[str] = set()
        self.register("system", self, only=("listMethods", "methodHelp", "methodSignature",
                                             "multicall"))

    def register(self, namespace: str, target: object, only: tuple[str, ...] = (),
                 listed: bool = True) -> None:
        """Expose every public coroutine method of `target` as `namespace.name`; unlisted
        ones answer but stay out of `system.listMethods`, which clients compare with
        supervisord's."""
        for attr in dir(target):
            if attr.startswith("_") or (only and attr not in only):
                continue
            member = getattr(target, attr)
            if inspect.iscoroutinefunction(member):
                self.methods[f"{namespace}.{attr}"] = member
                if not listed:
                    self._unlisted.add(f"{namespace}.{attr}")

    async def call(self, name: str, params: tuple[Any, ...]) -> Any:
        """Run one method; raises RPCError for unknown names and wrong argument counts."""
        method = self.methods.get(name)
        if method is None or any(part.startswith("_") for part in name.split(".")):
            raise RPCError(Fault.UNKNOWN_METHOD)
        try:
            inspect.signature(method).bind(*params)
        except TypeError:
            raise RPCError(Fault.INCORRECT_PARAMETERS) from None
        return await method(*params)

    async def handle(self, body: bytes) -> bytes:
        """A whole request body in, a whole response body out (faults included)."""
        try:
            name, params = parse_request(body)
        except ValueError as exc:
            return dump_fault(Fault.INCORRECT_PARAMETERS, f"INCORRECT_PARAMETERS: {exc}")
        trace = self.log if self.log is not None and self.log.level <= LogLevel.TRACE else None
        if trace:
            trace.trace(f"XML-RPC method called: {name}()")
        try:
            answer = dump_response(await self.call(name, params))
        except RPCError as exc:
            if trace:
                trace.trace(f"XML-RPC method {name}() returned fault: [{exc.code}] {exc.text}")
            return dump_fault(exc.code, exc.text)
        if trace:
            trace.trace(f"XML-RPC method {name}() returned successfully")
        return answer

    # -- system.* -------------------------------------------------------------------------

    async def listMethods(self) -> list[str]:
        """List every method this server answers, sorted.

        @return array result  method names
        """
        return sorted(set(self.methods) - self._unlisted)

    async def methodHelp(self, name: str) -> str:
        """The documentation of one method.

        @param string name  a method name
        @return string result  its documentation
        """
        method = self.methods.get(name)
        if method is None:
            raise RPCError(Fault.SIGNATURE_UNSUPPORTED)
        return inspect.getdoc(method) or ""

    async def methodSignature(self, name: str) -> list[str]:
        """The types of a method as [return type, parameter types...].

        @param string name  a method name
        @return array result  the signature
        """
        method = self.methods.get(name)
        if method is None:
            raise RPCError(Fault.SIGNATURE_UNSUPPORTED)
        signature = _signature(inspect.getdoc(method) or "")
        if signature is None:
            raise RPCError(Fault.SIGNATURE_UNSUPPORTED)
        return signature

    async def multicall(self, calls: list[Any]) -> list[Any]:
        """Run several calls in one round trip, in order. Each call is a struct
        {methodName, params}; each result is the call's value, or a struct
        {faultCode, faultString} when that call failed.

        @param array calls  the calls
        @return array result  one result per call
        """
        if not isinstance(calls, list):
            raise RPCError(Fault.INCORRECT_PARAMETERS)
        results: list[Any] = []
        for call in calls:
            try:
                if not isinstance(call, dict):
                    raise RPCError(Fault.INCORRECT_PARAMETERS)
                name = call.get("methodName")
                params = call.get("params", [])
                if not isinstance(name, str):
                    raise RPCError(Fault.INCORRECT_PARAMETERS, "No methodName")
                if name == "system.multicall":
                    raise RPCError(
                        Fault.INCORRECT_PARAMETERS, "Recursive system.multicall forbidden"
                    )
                if not isinstance(params, list):
                    raise RPCError(Fault.INCORRECT_PARAMETERS, "params must be an array")
                results.append(await self.call(name, tuple(params)))
            except RPCError as exc:
                results.append({"faultCode": int(exc.code), "faultString": exc.text})
            except Exception as exc:
                results.append(
                    {"faultCode": int(Fault.FAILED), "faultString": f"FAILED: {exc!r}"}
                )
        return results
